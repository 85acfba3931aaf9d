//! A JS hyperdht 6.34 server that names a Rust `BlindRelayServer` (`relayThrough`) and a JS
//! client, neither allowed to hole-punch, connect through the Rust relay in a fresh network
//! namespace: the Rust relay matches exactly one pairing (JS blind-relay client ↔ Rust Protomux
//! and relay streams), and 256 KiB flows each way intact between the two JS peers.
//!
//! Why 256 KiB: with 4 MiB each way, two relayed JS peers running `hyperdht-connect.js` fail the
//! same way through the JS blind-relay server as through ours (one JS side closes once it has
//! read everything, before its own writes are acknowledged: "received X of N"), so the size is
//! kept where that JS-side race does not occur; the Rust↔JS relay tests move 4 MiB.

#![allow(clippy::panic)]

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::relay_interop::{js_testnet, line, node, runtime};

/// Bytes each way (see the module docs for why not more).
const N: usize = 256 << 10;
use p2pswarm::crypto::{to_hex, KeyPair};
use p2pswarm::dht::{BlindRelayServer, Dht};
use p2pswarm::rpc::driver::DhtConfig;

#[test]
fn js_peers_through_rust_relay() {
    if common::netns::run_inside("js_peers_through_rust_relay", 0) {
        return;
    }
    runtime().block_on(async {
        let (_tn, boot) = js_testnet().await;
        // a persistent (reachable) Rust node hosts the relay
        let relay_dht = Dht::bind(DhtConfig {
            bootstrap: vec![boot],
            host: Ipv4Addr::LOCALHOST,
            ephemeral: Some(false),
            ..DhtConfig::default()
        })
        .await
        .expect("bind");
        tokio::time::timeout(Duration::from_secs(30), relay_dht.ready())
            .await
            .expect("ready");
        let relay = BlindRelayServer::listen(&relay_dht, KeyPair::from_seed(&[0x73; 32]))
            .await
            .expect("relay listens");
        let relay_hex = relay.public_key().to_hex();

        let server_seed = [0x61u8; 32];
        let server_pk = *KeyPair::from_seed(&server_seed).public_key();
        let (_s, mut sout) = node(&[
            "hyperdht-connect.js",
            "server",
            "--bootstrap",
            &boot.to_string(),
            "--seed",
            &to_hex(&server_seed),
            "--bytes",
            &N.to_string(),
            "--relay",
            &relay_hex,
            "--no-holepunch",
        ]);
        assert_eq!(
            line(&mut sout).await,
            format!("listening {}", server_pk.to_hex())
        );
        let client_seed = [0x62u8; 32];
        let client_pk = KeyPair::from_seed(&client_seed).public_key().to_hex();
        let (_c, mut cout) = node(&[
            "hyperdht-connect.js",
            "client",
            "--bootstrap",
            &boot.to_string(),
            "--seed",
            &to_hex(&client_seed),
            "--connect",
            &server_pk.to_hex(),
            "--bytes",
            &N.to_string(),
            "--no-holepunch",
        ]);
        assert_eq!(line(&mut sout).await, format!("connection {client_pk}"));
        assert_eq!(
            line(&mut sout).await,
            format!("done received={N} remote={client_pk}")
        );
        let done = line(&mut cout).await;
        assert!(
            done.starts_with(&format!("done received={N} remote={}", server_pk.to_hex())),
            "{done}"
        );
        let stats = relay.stats();
        assert_eq!(stats.matched, 1, "{stats:?}");
        assert_eq!(stats.pair_requests, 2, "{stats:?}");
    });
}
