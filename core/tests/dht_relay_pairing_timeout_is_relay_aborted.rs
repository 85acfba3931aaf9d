//! A relay that accepts connections but never pairs (a plain server on the relay key that
//! ignores the blind-relay channel): a client that may not hole-punch and names that relay gets
//! the typed `RelayAborted` error after the 15 s pairing timeout instead of hanging, and the
//! server hands out no connection.

#![allow(clippy::panic)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use p2pswarm::crypto::KeyPair;
use p2pswarm::dht::{ConnectError, ConnectOptions, Dht};
use p2pswarm::rpc::driver::DhtConfig;

async fn peer(boot: SocketAddrV4, seed: u8) -> Dht {
    let d = Dht::bind_with_key_pair(
        DhtConfig {
            bootstrap: vec![boot],
            host: Ipv4Addr::LOCALHOST,
            ..DhtConfig::default()
        },
        KeyPair::from_seed(&[seed; 32]),
    )
    .await
    .expect("peer");
    tokio::time::timeout(Duration::from_secs(20), d.ready())
        .await
        .expect("ready");
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_pairing_is_relay_aborted() {
    let (nodes, boot) = common::net::rust_testnet(5).await;
    let mute_kp = KeyPair::from_seed(&[0x3d; 32]);
    let mut mute = nodes[2].listen(mute_kp.clone(), None).await.expect("mute");
    // accept and hold relay connections, reading (and ignoring) whatever arrives
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(mut c) = mute.accept().await {
            let _ = tokio::time::timeout(Duration::from_millis(200), c.recv()).await;
            held.push(c);
        }
    });

    let server_dht = peer(boot, 1).await;
    let client_dht = peer(boot, 2).await;
    let server_kp = KeyPair::from_seed(&[0x5f; 32]);
    let mut server = server_dht
        .listen(server_kp.clone(), None)
        .await
        .expect("listen");
    let opts = ConnectOptions {
        relay_through: Some(*mute_kp.public_key()),
        holepunch: false,
    };
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        client_dht.connect_with_options(None, server_kp.public_key(), &opts),
    )
    .await
    .expect("connect returns (no hang)");
    println!("connect failed after {:?}", started.elapsed());
    assert!(matches!(r, Err(ConnectError::RelayAborted)), "{r:?}");
    // the server's own pairing attempt timed out as well: no connection was delivered
    let accepted = tokio::time::timeout(Duration::from_secs(3), server.accept()).await;
    assert!(accepted.is_err(), "server delivered a connection");
    holder.abort();
    for n in &nodes {
        n.destroy();
    }
}
