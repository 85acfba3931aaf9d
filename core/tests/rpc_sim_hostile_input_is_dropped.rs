//! Bad input to a dht-rpc node: garbage datagrams, truncated messages, requests with forged ids
//! (an id that does not belong to the source address), bad tokens, and a flood of requests
//! from one address. Nothing panics, forged ids never enter the routing table, bad tokens get
//! INVALID_TOKEN, and memory (table, requests in flight, queued output) stays bounded.

#![allow(clippy::panic, clippy::too_many_lines)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use p2pswarm::rpc::message::{commands, errors, node_id, Message, Request};
use p2pswarm::rpc::node::{Node, NodeConfig, SocketKind};
use p2pswarm::testing::Rng;

fn me() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 10_000)
}

fn request(
    tid: u16,
    id: Option<[u8; 32]>,
    token: Option<[u8; 32]>,
    internal: bool,
    command: u64,
    value: Option<Vec<u8>>,
) -> Vec<u8> {
    Message::Request(Request {
        tid,
        to: me(),
        id,
        token,
        internal,
        command,
        target: Some([9; 32]),
        value,
    })
    .encode()
}

fn responses(node: &mut Node) -> Vec<Message> {
    std::iter::from_fn(|| node.poll_transmit())
        .filter_map(|t| Message::decode(&t.data).ok())
        .collect()
}

#[test]
fn hostile_input_is_dropped_and_memory_stays_bounded() {
    let mut now = Instant::now();
    let mut node = Node::new(
        now,
        NodeConfig {
            public_addr: Some(me()),
            ephemeral: Some(false),
            ..NodeConfig::default()
        },
        10_000,
        5,
    );
    node.bootstrap(now);
    let mut rng = Rng::new(11);
    let attacker = SocketAddrV4::new(Ipv4Addr::new(10, 6, 6, 6), 6666);

    // 1. Garbage and truncated messages.
    let valid = request(1, None, None, true, commands::PING, None);
    for i in 0..20_000 {
        let mut buf = vec![0u8; (rng.next_u64() % 200) as usize];
        rng.fill(&mut buf);
        if i % 3 == 0 && !buf.is_empty() {
            buf[0] = if i % 2 == 0 { 0x03 } else { 0x13 };
        }
        node.handle_datagram(now, SocketKind::Server, attacker, &buf);
        let cut = (i % valid.len()).max(1);
        node.handle_datagram(now, SocketKind::Server, attacker, &valid[..cut]);
    }
    let _ = responses(&mut node);

    // 2. Forged ids: the attacker claims other nodes' ids; none may enter the table.
    for i in 0..500u16 {
        let victim = SocketAddrV4::new(Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8), 10_000);
        node.handle_datagram(
            now,
            SocketKind::Server,
            attacker,
            &request(i, Some(node_id(&victim)), None, true, commands::PING, None),
        );
        assert!(
            !node.table().has(&node_id(&victim)),
            "forged id entered the table"
        );
    }
    assert_eq!(node.table().len(), 0);
    // ...while an honest id is admitted.
    node.handle_datagram(
        now,
        SocketKind::Server,
        attacker,
        &request(
            7,
            Some(node_id(&attacker)),
            None,
            true,
            commands::PING,
            None,
        ),
    );
    assert!(node.table().has(&node_id(&attacker)));
    let _ = responses(&mut node);

    // 3. Bad tokens are refused with INVALID_TOKEN (and a fresh token).
    node.handle_datagram(
        now,
        SocketKind::Server,
        attacker,
        &request(8, None, Some([3; 32]), false, 42, Some(b"x".to_vec())),
    );
    let out = responses(&mut node);
    let Some(Message::Response(r)) = out.first() else {
        panic!("no reply to a bad token: {out:?}")
    };
    assert_eq!(r.error, errors::INVALID_TOKEN);
    assert!(r.token.is_some());
    assert!(
        node.poll_event()
            .is_none_or(|e| !matches!(e, p2pswarm::rpc::node::NodeEvent::Request(_))),
        "a bad-token request reached the application"
    );

    // 4. A flood from one address: requests of every command, delayed pings, down hints.
    for i in 0..100_000u32 {
        let cmd = u64::from(i % 6);
        let value = match cmd {
            commands::DELAYED_PING => Some(9_000u32.to_le_bytes().to_vec()),
            commands::DOWN_HINT => Some(vec![10, 1, 0, (i % 250) as u8, 0x10, 0x27]),
            commands::PING_NAT => Some(vec![1, 2]),
            _ => None,
        };
        node.handle_datagram(
            now,
            SocketKind::Server,
            attacker,
            &request(i as u16, None, None, true, cmd, value),
        );
        if i % 1000 == 0 {
            let sent = responses(&mut node).len();
            assert!(sent <= 2000, "{sent} datagrams queued by 1000 requests");
            while node.poll_event().is_some() {}
        }
    }
    assert!(
        node.inflight() <= 200,
        "{} requests in flight after the flood",
        node.inflight()
    );
    // Time passes: delayed replies drain, nothing accumulates.
    for _ in 0..30 {
        now += Duration::from_secs(1);
        node.handle_timeout(now);
        let _ = responses(&mut node);
        while node.poll_event().is_some() {}
    }
    assert!(node.table().len() <= 256 * 20);
    assert!(node.inflight() <= 200);
}
