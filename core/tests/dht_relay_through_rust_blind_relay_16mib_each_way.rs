//! Two firewalled Rust peers on a loopback testnet that may not hole-punch (`holepunch: false`)
//! connect through a Rust blind-relay server named by the client (`relay_through`): both
//! connections run to the relay's address (the path is relayed), the relay matched exactly one
//! pairing, both sides see each other's key and the same handshake hash, and 16 MiB flows each
//! way intact end to end (the relay only forwards ciphertext).

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use p2pswarm::crypto::KeyPair;
use p2pswarm::dht::{BlindRelayServer, ConnectOptions, Dht};
use p2pswarm::rpc::driver::DhtConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const N: usize = 16 << 20;

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
async fn relayed_connection_carries_16mib_each_way() {
    let (nodes, boot) = common::net::rust_testnet(6).await;
    // the relay runs on a persistent (reachable) testnet node
    let relay_dht = nodes[3].clone();
    let relay = BlindRelayServer::listen(&relay_dht, KeyPair::from_seed(&[0x2e; 32]))
        .await
        .expect("relay listens");
    let relay_addr: SocketAddr = relay_dht.rpc().local_addr();

    let server_dht = peer(boot, 1).await;
    let client_dht = peer(boot, 2).await;
    assert!(server_dht.rpc().is_firewalled() && client_dht.rpc().is_firewalled());
    let server_kp = KeyPair::from_seed(&[0x5e; 32]);
    let mut server = server_dht
        .listen(server_kp.clone(), None)
        .await
        .expect("listen");

    let opts = ConnectOptions {
        relay_through: Some(*relay.public_key()),
        holepunch: false,
    };
    let connect = tokio::time::timeout(
        Duration::from_secs(30),
        client_dht.connect_with_options(None, server_kp.public_key(), &opts),
    );
    let accept = tokio::time::timeout(Duration::from_secs(30), server.accept());
    let (c, s) = tokio::join!(connect, accept);
    let c = c.expect("connect in time").expect("connect");
    let s = s.expect("accept in time").expect("a connection");
    assert_eq!(c.remote_public_key(), Some(server_kp.public_key()));
    assert_eq!(
        s.remote_public_key(),
        client_dht.key_pair().public_key().into()
    );
    assert_eq!(c.handshake_hash(), s.handshake_hash());
    let c_remote = c.get_ref().remote().expect("client stream connected").addr;
    let s_remote = s.get_ref().remote().expect("server stream connected").addr;
    assert_eq!(c_remote, relay_addr, "client path runs to the relay");
    assert_eq!(s_remote, relay_addr, "server path runs to the relay");
    assert_eq!(relay.stats().matched, 1, "{:?}", relay.stats());

    let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
    let (d1, d2) = (data.clone(), data.clone());
    let (mut cr, mut cw) = tokio::io::split(c);
    let (mut sr, mut sw) = tokio::io::split(s);
    let t = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(
            async {
                cw.write_all(&d1).await.expect("c write");
                cw.shutdown().await.expect("c end");
            },
            async {
                sw.write_all(&d2).await.expect("s write");
                sw.shutdown().await.expect("s end");
            },
            async {
                let mut v = Vec::new();
                cr.read_to_end(&mut v).await.expect("c read");
                v
            },
            async {
                let mut v = Vec::new();
                sr.read_to_end(&mut v).await.expect("s read");
                v
            },
        )
    })
    .await
    .expect("transfer in time");
    assert_eq!(t.2.len(), N);
    assert_eq!(t.3.len(), N);
    assert!(t.2 == data && t.3 == data, "data corrupted");
    for n in &nodes {
        n.destroy();
    }
}
