//! The swarm driver end to end on a loopback Rust testnet: hyperswarm checklist items 17
//! (stats), 18 (suspend/resume), 37 (the connection reaches the user untouched), 38/39 (peer
//! info owns its key and topics), 40 (the port option reaches the DHT), plus `leave`, discovery
//! `refresh`/`destroy`, `status` and `flush` through the public API.
#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use p2pswarm::crypto::KeyPair;
use p2pswarm::dht::Dht;
use p2pswarm::rpc::driver::DhtConfig;
use p2pswarm::swarm::{JoinOptions, Swarm, SwarmConnection, SwarmEvent, SwarmEvents, SwarmOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

async fn swarm(boot: SocketAddrV4, seed: u8) -> (Swarm, SwarmEvents) {
    let dht = Dht::bind_with_key_pair(
        DhtConfig {
            bootstrap: vec![boot],
            host: Ipv4Addr::LOCALHOST,
            ..DhtConfig::default()
        },
        KeyPair::from_seed(&[seed; 32]),
    )
    .await
    .expect("dht");
    tokio::time::timeout(Duration::from_secs(20), dht.ready())
        .await
        .expect("ready");
    Swarm::new(SwarmOptions {
        dht: Some(dht),
        seed: Some([seed; 32]),
        backoffs: Some([Duration::from_millis(100); 4]),
        jitter: Duration::ZERO,
        ..SwarmOptions::default()
    })
    .await
    .expect("swarm")
}

/// Forwards connections to a channel; everything else is dropped.
fn connections(mut ev: SwarmEvents) -> mpsc::UnboundedReceiver<Box<SwarmConnection>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(e) = ev.next().await {
            if let SwarmEvent::Connection(c, _) = e {
                let _ = tx.send(c);
            }
        }
    });
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Box<SwarmConnection>>) -> Box<SwarmConnection> {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a connection in time")
        .expect("events")
}

/// Reads until the swarm or the peer closes the connection, then drops it (as a user does).
fn hold(mut c: Box<SwarmConnection>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = c.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
}

/// Items 17 and 37: the first bytes the server writes reach the client's stream intact (the
/// swarm reads nothing of it), and the stats count both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reaches_the_user_untouched_and_is_counted() {
    let (_net, boot) = common::net::rust_testnet(6).await;
    let topic = [0x81; 32];
    let (s, sev) = swarm(boot, 1).await;
    let (c, cev) = swarm(boot, 2).await;
    let (mut srx, mut crx) = (connections(sev), connections(cev));
    s.join(topic, JoinOptions::server()).expect("join");
    assert!(s.flush().await);
    c.join(topic, JoinOptions::client()).expect("join");
    assert!(c.flush().await);
    let mut sc = next(&mut srx).await;
    let mut cc = next(&mut crx).await;
    assert_eq!(sc.remote_public_key(), c.public_key());
    assert_eq!(cc.remote_public_key(), s.public_key());
    assert!(cc.is_initiator() && !sc.is_initiator());
    assert_eq!(cc.handshake_hash(), sc.handshake_hash());
    sc.write_all(b"first bytes").await.expect("write");
    let mut got = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(10), cc.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(&got, b"first bytes");
    let (cs, ss) = (c.stats(), s.stats());
    assert_eq!(
        (cs.client_attempted, cs.client_opened, cs.client_closed),
        (1, 1, 0)
    );
    assert_eq!((ss.server_opened, ss.server_closed), (1, 0));
    c.ban(s.public_key(), true);
    drop(cc);
    drop(sc);
    assert_eq!(c.stats().client_closed, 1);
    assert_eq!(s.stats().server_closed, 1);
    assert_eq!((c.connections(), s.connections()), (0, 0));
    c.destroy().await;
    s.destroy().await;
}

/// Items 38/39: peer info and topics are owned copies (changing the caller's buffers later
/// changes nothing), and the PeerInfo of an event can ban the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_info_owns_its_key_and_topics() {
    let (_net, boot) = common::net::rust_testnet(6).await;
    let mut topic = [0x82; 32];
    let (s, _sev) = swarm(boot, 3).await;
    let (c, mut cev) = swarm(boot, 4).await;
    s.join(topic, JoinOptions::server()).expect("join");
    assert!(s.flush().await);
    c.join(topic, JoinOptions::client()).expect("join");
    let original = topic;
    topic[0] ^= 0xff;
    let info = loop {
        match tokio::time::timeout(Duration::from_secs(20), cev.next()).await {
            Ok(Some(SwarmEvent::Connection(conn, info))) => {
                std::mem::forget(conn);
                break info;
            }
            Ok(Some(_)) => {}
            other => panic!("no connection: {other:?}"),
        }
    };
    assert_eq!(info.topics, vec![original]);
    assert_ne!(info.topics[0], topic);
    assert_eq!(info.public_key, *s.public_key());
    info.ban(true);
    assert!(c.peer(s.public_key()).expect("peer").banned);
    c.destroy().await;
    s.destroy().await;
}

/// Item 40: the port option reaches the swarm's DHT node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_option_reaches_the_dht() {
    let (_net, boot) = common::net::rust_testnet(3).await;
    let free = std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("probe")
        .local_addr()
        .expect("addr")
        .port();
    let (s, _ev) = Swarm::new(SwarmOptions {
        bootstrap: Some(vec![boot]),
        port: Some(free),
        ..SwarmOptions::default()
    })
    .await
    .expect("swarm");
    let port = s.dht().rpc().local_addr().port();
    assert!(
        (free..free.saturating_add(5)).contains(&port),
        "asked {free}, bound {port}"
    );
    s.destroy().await;
}

/// Item 18 through the driver, with `leave`, `status` and discovery `refresh`/`destroy`:
/// suspending drops the connection on both sides, resuming reconnects; leaving unannounces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_resume_leave_and_discovery_sessions() {
    let (_net, boot) = common::net::rust_testnet(6).await;
    let topic = [0x83; 32];
    let (s, sev) = swarm(boot, 5).await;
    let (c, cev) = swarm(boot, 6).await;
    let (mut srx, mut crx) = (connections(sev), connections(cev));
    let sd = s.join(topic, JoinOptions::server()).expect("join");
    assert!(sd.flushed().await);
    assert!(s.status(&topic).expect("status").is_server);
    let cd = c.join(topic, JoinOptions::client()).expect("join");
    assert!(cd.flushed().await);
    let h1 = hold(next(&mut srx).await);
    let h2 = hold(next(&mut crx).await);
    c.suspend().await;
    tokio::time::timeout(Duration::from_secs(20), async {
        let _ = h2.await;
        let _ = h1.await;
    })
    .await
    .expect("both ends closed");
    assert_eq!(c.connections(), 0);
    c.resume().await;
    let h1 = hold(next(&mut srx).await);
    let h2 = hold(next(&mut crx).await);
    // A refresh that changes nothing resolves true; one with no role is refused.
    assert_eq!(cd.refresh(JoinOptions::client()).await, Ok(true));
    assert!(cd
        .refresh(JoinOptions {
            server: false,
            client: false,
            limit: None
        })
        .await
        .is_err());
    // The server leaves: its connection stays, a new client finds nobody.
    sd.destroy().await;
    assert!(s.status(&topic).is_none());
    assert_eq!(s.connections(), 1);
    let (c2, c2ev) = swarm(boot, 7).await;
    let mut c2rx = connections(c2ev);
    c2.join(topic, JoinOptions::client()).expect("join");
    assert!(c2.flush().await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(c2rx.try_recv().is_err(), "found an unannounced server");
    h1.abort();
    h2.abort();
    for x in [&c, &s, &c2] {
        x.destroy().await;
    }
}
