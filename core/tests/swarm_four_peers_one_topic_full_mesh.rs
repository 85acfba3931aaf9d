//! Four swarms join one topic as server and client on a loopback testnet: after `flush` every
//! swarm holds exactly one connection to each other swarm (duplicates from both sides dialling
//! are resolved to one), peer info lists the topic, messages flow over every connection, and a
//! firewall-banned peer is never connected.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use p2pswarm::crypto::{KeyPair, PublicKey};
use p2pswarm::dht::Dht;
use p2pswarm::rpc::driver::DhtConfig;
use p2pswarm::swarm::{JoinOptions, Swarm, SwarmConnection, SwarmEvent, SwarmOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

async fn swarm(
    boot: SocketAddrV4,
    seed: u8,
    cfg: SwarmOptions,
) -> (Swarm, p2pswarm::swarm::SwarmEvents) {
    let dht = Dht::bind_with_key_pair(
        DhtConfig {
            bootstrap: vec![boot],
            host: HOST,
            ..DhtConfig::default()
        },
        KeyPair::from_seed(&[seed; 32]),
    )
    .await
    .expect("dht");
    tokio::time::timeout(Duration::from_secs(20), dht.ready())
        .await
        .expect("ready");
    Swarm::with_dht(dht.clone(), dht.key_pair().clone(), cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_peers_connect_once_each() {
    let (_net, boot) = common::net::rust_testnet(8).await;
    let topic = [0x70u8; 32];
    let mut swarms = Vec::new();
    for seed in 1..=4u8 {
        swarms.push(swarm(boot, seed, SwarmOptions::default()).await);
    }
    for (s, _) in &swarms {
        s.join(
            topic,
            JoinOptions {
                server: true,
                client: true,
                limit: None,
            },
        )
        .expect("join");
    }
    for (s, _) in &swarms {
        tokio::time::timeout(Duration::from_secs(30), s.flush())
            .await
            .expect("flush in time");
    }
    // Join a second time in order so that every earlier announcement is visible to later lookups.
    for (s, _) in &swarms {
        s.join(
            topic,
            JoinOptions {
                server: true,
                client: true,
                limit: None,
            },
        )
        .expect("join");
    }
    for (s, _) in &swarms {
        tokio::time::timeout(Duration::from_secs(30), s.flush())
            .await
            .expect("flush in time");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let keys: Vec<PublicKey> = swarms.iter().map(|(s, _)| *s.public_key()).collect();
    let mut conns: Vec<HashMap<PublicKey, Box<SwarmConnection>>> = Vec::new();
    for (i, (s, rx)) in swarms.iter_mut().enumerate() {
        let mut mine = HashMap::new();
        while let Some(ev) = rx.try_next() {
            if let SwarmEvent::Connection(c, info) = ev {
                assert_eq!(info.public_key, *c.remote_public_key());
                mine.insert(*c.remote_public_key(), c); // a later winner replaces a dropped duplicate
            }
        }
        assert_eq!(
            s.connections(),
            3,
            "swarm {i} holds {} connections",
            s.connections()
        );
        let expected: Vec<PublicKey> = keys
            .iter()
            .copied()
            .filter(|k| k != s.public_key())
            .collect();
        for k in &expected {
            assert!(mine.contains_key(k), "swarm {i} has no connection to {k}");
        }
        conns.push(mine);
    }
    // Messages over every pair.
    for i in 0..4 {
        for j in (i + 1)..4 {
            let ki = keys[i];
            let kj = keys[j];
            let a = conns[i].get_mut(&kj).expect("a");
            a.write_all(format!("hello from {i}").as_bytes())
                .await
                .expect("write");
            let b = conns[j].get_mut(&ki).expect("b");
            let mut buf = vec![0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(10), b.read(&mut buf))
                .await
                .expect("read in time")
                .expect("read");
            assert_eq!(&buf[..n], format!("hello from {i}").as_bytes());
        }
    }
    for (s, _) in &swarms {
        s.destroy().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewalled_peer_is_never_connected() {
    let (_net, boot) = common::net::rust_testnet(6).await;
    let topic = [0x71u8; 32];
    let banned = *KeyPair::from_seed(&[12; 32]).public_key();
    let cfg = SwarmOptions {
        firewall: Some(Arc::new(move |k: &PublicKey| *k == banned)),
        ..SwarmOptions::default()
    };
    let (a, _arx) = swarm(boot, 11, cfg).await;
    let (b, _brx) = swarm(boot, 12, SwarmOptions::default()).await;
    a.join(topic, JoinOptions::default()).expect("join");
    a.flush().await;
    b.join(topic, JoinOptions::default()).expect("join");
    b.flush().await;
    a.join(topic, JoinOptions::default()).expect("join");
    a.flush().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.connections(), 0);
    assert!(a.peers().iter().any(|p| p.public_key == banned && p.banned));
}
