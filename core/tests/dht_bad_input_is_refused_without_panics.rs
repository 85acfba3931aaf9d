//! Bad input to hyperdht nodes: announces with forged signatures are not stored, a PEER_HANDSHAKE
//! encrypted for the wrong key and garbage payloads for every command get no answer (or an
//! error), an old round-trip token is refused with INVALID_TOKEN, invalid keys give typed
//! connect errors — and every node keeps serving afterwards.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use p2pswarm::crypto::{ns, KeyPair, PublicKey};
use p2pswarm::dht::messages::{commands, Announce, Handshake, Mode, PeerRecord};
use p2pswarm::dht::sign::{public_key_target, sign_announce};
use p2pswarm::dht::ConnectError;
use p2pswarm::encoding::to_vec;
use p2pswarm::noise::{Handshake as Noise, Pattern};
use p2pswarm::rpc::message::{errors, Message, Request};
use p2pswarm::rpc::node::{Node, NodeConfig, SocketKind};
use p2pswarm::testing::Rng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_wrong_key_and_garbage_input() {
    let (net, _boot) = common::net::rust_testnet(8).await;
    let client = &net[5];
    let topic = [0x3cu8; 32];

    // 1. Forged announce signatures (signed by another key, or for another node) are not stored.
    let victim = KeyPair::from_seed(&[1; 32]);
    let forger = KeyPair::from_seed(&[2; 32]);
    let (replies, done) = client
        .rpc()
        .query(topic, commands::LOOKUP, false, None, false);
    drop(replies);
    let closest = done.await.expect("done").expect("closest");
    let peer = PeerRecord {
        public_key: *victim.public_key(),
        relay_addresses: Vec::new(),
    };
    let mut tasks = Vec::new();
    for (i, r) in closest.iter().enumerate().take(6) {
        let token = r.token.expect("token");
        let sig = if i % 2 == 0 {
            sign_announce(&forger, &topic, &r.id, &token, &peer, None)
        } else {
            sign_announce(&victim, &topic, &[9; 32], &token, &peer, None) // for another node id
        };
        let value = to_vec(&Announce {
            peer: Some(peer.clone()),
            refresh: None,
            signature: Some(sig),
            bump: 0,
        });
        let rpc = client.rpc().clone();
        let from = r.from;
        tasks.push(tokio::spawn(async move {
            rpc.request(
                from,
                commands::ANNOUNCE,
                false,
                Some(topic),
                Some(value),
                Some(token),
            )
            .await
        }));
    }
    for t in tasks {
        assert!(
            t.await.expect("task").is_err(),
            "a forged announce was answered"
        );
    }
    let found = client.lookup(topic).await.expect("lookup");
    assert!(
        found.iter().all(|r| r.peers.is_empty()),
        "a forged announce was stored: {found:?}"
    );

    // 2. A handshake encrypted for the wrong key gets no reply; the server keeps working.
    let server_dht = &net[2];
    let server_kp = KeyPair::from_seed(&[3; 32]);
    let mut server = server_dht
        .listen(server_kp.clone(), None)
        .await
        .expect("listen");
    let wrong = KeyPair::from_seed(&[4; 32]);
    let mut noise = Noise::new(
        Pattern::IK,
        true,
        KeyPair::generate(),
        &ns::PEER_HANDSHAKE,
        Some(*wrong.public_key()),
    )
    .expect("noise");
    let msg1 = noise.write_message(b"not a payload").expect("msg1");
    let hs = to_vec(&Handshake {
        mode: Mode::FROM_CLIENT,
        noise: msg1,
        peer_address: None,
        relay_address: None,
    });
    let server_addr = match server_dht.rpc().client_socket().local_addr() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("ipv6"),
    };
    let target = public_key_target(server_kp.public_key());
    let r = client
        .rpc()
        .request(
            server_addr,
            commands::PEER_HANDSHAKE,
            false,
            Some(target),
            Some(hs),
            None,
        )
        .await;
    assert!(
        r.is_err(),
        "a handshake for the wrong key was answered: {r:?}"
    );

    // 3. Garbage values for every hyperdht command, and garbage datagrams: no answers that
    //    matter, no panics.
    let mut rng = Rng::new(5);
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let mut v = vec![0u8; (rng.next_u64() % 300) as usize];
        rng.fill(&mut v);
        let rpc = client.rpc().clone();
        let dest = match net[(i % 8) as usize].rpc().local_addr() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => panic!("ipv6"),
        };
        tasks.push(tokio::spawn(async move {
            rpc.request(dest, i % 11, false, Some(target), Some(v), None)
                .await
        }));
    }
    for t in tasks {
        let _ = t.await.expect("no panic");
    }
    for d in &net {
        let mut junk = vec![0u8; 200];
        rng.fill(&mut junk);
        junk[0] = 0x03;
        client
            .rpc()
            .server_socket()
            .send_raw(d.rpc().local_addr(), &junk, None);
    }

    // 4. Typed connect errors for bad keys; and the server still accepts a proper client.
    let bad = PublicKey([0xab; 32]);
    assert!(matches!(
        client.connect(&bad).await,
        Err(ConnectError::Handshake(_))
    ));
    let (c, s) = tokio::join!(client.connect(server_kp.public_key()), server.accept());
    assert!(
        c.is_ok() && s.is_some(),
        "the server stopped serving after bad input"
    );
}

#[test]
fn an_old_token_is_refused_with_invalid_token() {
    // The sans-IO node on a virtual clock: a token is valid for 7.5–15 s (two rotations).
    let mut now = Instant::now();
    let me = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 10_000);
    let peer = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 20_000);
    let mut node = Node::new(
        now,
        NodeConfig {
            public_addr: Some(me),
            ephemeral: Some(false),
            ..NodeConfig::default()
        },
        10_000,
        9,
    );
    node.bootstrap(now);
    let req = |tid: u16, token: Option<[u8; 32]>| {
        Message::Request(Request {
            tid,
            to: me,
            id: None,
            token,
            internal: false,
            command: 42,
            target: Some([1; 32]),
            value: None,
        })
        .encode()
    };
    // An application reply carries a fresh token.
    node.handle_datagram(now, SocketKind::Server, peer, &req(1, None));
    let Some(p2pswarm::rpc::node::NodeEvent::Request(inc)) =
        std::iter::from_fn(|| node.poll_event())
            .find(|e| matches!(e, p2pswarm::rpc::node::NodeEvent::Request(_)))
    else {
        panic!("no request event")
    };
    node.reply(inc.handle, None, true, false);
    let token = std::iter::from_fn(|| node.poll_transmit())
        .find_map(|t| match Message::decode(&t.data) {
            Ok(Message::Response(r)) => r.token,
            _ => None,
        })
        .expect("token");
    // Still good right away…
    node.handle_datagram(now, SocketKind::Server, peer, &req(2, Some(token)));
    assert!(std::iter::from_fn(|| node.poll_event())
        .any(|e| matches!(e, p2pswarm::rpc::node::NodeEvent::Request(r) if r.token_ok)));
    // …replayed after two rotations it is refused.
    for _ in 0..25 {
        now += Duration::from_secs(1);
        node.handle_timeout(now);
    }
    while node.poll_transmit().is_some() {}
    node.handle_datagram(now, SocketKind::Server, peer, &req(3, Some(token)));
    let answer =
        std::iter::from_fn(|| node.poll_transmit()).find_map(|t| match Message::decode(&t.data) {
            Ok(Message::Response(r)) if r.tid == 3 => Some(r),
            _ => None,
        });
    assert_eq!(answer.map(|r| r.error), Some(errors::INVALID_TOKEN));
}
