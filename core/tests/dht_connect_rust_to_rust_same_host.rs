//! Key-addressed connections between two default (firewalled, ephemeral) Rust peers on one host,
//! through a loopback testnet: the client finds the server by its public key, the Noise IK
//! handshake travels through the DHT router, and a UDX stream carries the secret stream. Both
//! sides see the other's key and the same handshake hash; 4 MiB flows each way; a server
//! firewall that rejects the client's key makes connect fail with `Rejected`; an unknown key is
//! `PeerNotFound`.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use p2pswarm::crypto::KeyPair;
use p2pswarm::dht::{ConnectError, Dht};
use p2pswarm::rpc::driver::DhtConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
const N: usize = 4 << 20;

async fn peer(boot: SocketAddrV4, seed: u8) -> Dht {
    let d = Dht::bind_with_key_pair(
        DhtConfig {
            bootstrap: vec![boot],
            host: HOST,
            ..DhtConfig::default()
        },
        KeyPair::from_seed(&[seed; 32]),
    )
    .await
    .expect("peer");
    tokio::time::timeout(Duration::from_secs(20), d.ready())
        .await
        .expect("ready");
    assert!(d.rpc().is_ephemeral(), "default peers are ephemeral");
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_through_the_dht_and_exchange_data() {
    let (_net, boot) = common::net::rust_testnet(8).await;
    let server_dht = peer(boot, 1).await;
    let client_dht = peer(boot, 2).await;
    let server_kp = KeyPair::from_seed(&[0x5e; 32]);
    let client_pk = *client_dht.key_pair().public_key();
    let mut server = server_dht
        .listen(server_kp.clone(), None)
        .await
        .expect("listen");

    let connect = tokio::time::timeout(
        Duration::from_secs(20),
        client_dht.connect(server_kp.public_key()),
    );
    let accept = tokio::time::timeout(Duration::from_secs(20), server.accept());
    let (c, s) = tokio::join!(connect, accept);
    let mut c = c.expect("connect in time").expect("connect");
    let mut s = s.expect("accept in time").expect("a connection");
    assert_eq!(c.remote_public_key(), Some(server_kp.public_key()));
    assert_eq!(s.remote_public_key(), Some(&client_pk));
    assert_eq!(c.handshake_hash(), s.handshake_hash());

    let data: Vec<u8> = (0..N).map(|i| (i % 251) as u8).collect();
    let (d1, d2) = (data.clone(), data.clone());
    let (mut cr, mut cw) = tokio::io::split(c);
    let (mut sr, mut sw) = tokio::io::split(s);
    let t = tokio::time::timeout(Duration::from_secs(60), async {
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
    assert!(t.2 == data && t.3 == data, "data corrupted");
    c = cr.unsplit(cw);
    s = sr.unsplit(sw);
    drop((c, s));

    // A firewall that rejects this client.
    let other_kp = KeyPair::from_seed(&[0x6f; 32]);
    let reject = client_pk;
    let _guarded = server_dht
        .listen(
            other_kp.clone(),
            Some(Arc::new(
                move |pk: &p2pswarm::crypto::PublicKey, _: &_, _| *pk == reject,
            )),
        )
        .await
        .expect("listen");
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        client_dht.connect(other_kp.public_key()),
    )
    .await
    .expect("in time");
    assert!(matches!(r, Err(ConnectError::Rejected(1))), "{r:?}");

    // Nobody listens on this key.
    let nobody = KeyPair::from_seed(&[0x77; 32]);
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        client_dht.connect(nobody.public_key()),
    )
    .await
    .expect("in time");
    assert!(matches!(r, Err(ConnectError::PeerNotFound)), "{r:?}");
}
