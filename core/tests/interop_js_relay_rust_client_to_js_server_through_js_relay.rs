//! A Rust client that may not hole-punch connects to a JS hyperdht 6.34 server through a JS
//! blind-relay 1.6.1 server it names (`relay_through`), in a fresh network namespace: the Rust
//! stream runs to the JS relay's address, the JS relay reports both halves paired, and 4 MiB
//! flows each way intact with the JS side confirming what it received.
//! The JS peer keeps reporting itself firewalled (`--stay-firewalled`): a JS node whose quick
//! bootstrap check finds its port reachable reports FIREWALL.OPEN, and then both
//! implementations rightly connect directly and leave the relay unused.

#![allow(clippy::panic)]

mod common;

use std::time::Duration;

use common::relay_interop::{
    exchange, js_relay, js_testnet, line, node, pattern, runtime, rust_peer, N,
};
use p2pswarm::crypto::{to_hex, KeyPair};
use p2pswarm::dht::ConnectOptions;

#[test]
fn rust_client_to_js_server_through_js_relay() {
    if common::netns::run_inside("rust_client_to_js_server_through_js_relay", 0) {
        return;
    }
    runtime().block_on(async {
        let (_tn, boot) = js_testnet().await;
        let (_relay, mut relay_out, relay_pk, relay_addr) = js_relay(boot, 0x71).await;
        let server_seed = [0x61u8; 32];
        let server_pk = *KeyPair::from_seed(&server_seed).public_key();
        let (_s, mut out) = node(&[
            "hyperdht-connect.js",
            "server",
            "--bootstrap",
            &boot.to_string(),
            "--seed",
            &to_hex(&server_seed),
            "--bytes",
            &N.to_string(),
            "--no-holepunch",
            "--stay-firewalled",
        ]);
        assert_eq!(
            line(&mut out).await,
            format!("listening {}", server_pk.to_hex())
        );
        let client = rust_peer(boot, 2).await;
        let opts = ConnectOptions {
            relay_through: Some(relay_pk),
            holepunch: false,
        };
        let conn = tokio::time::timeout(
            Duration::from_secs(60),
            client.connect_with_options(None, &server_pk, &opts),
        )
        .await
        .expect("connect in time")
        .expect("connect");
        assert_eq!(conn.remote_public_key(), Some(&server_pk));
        let path = conn.get_ref().remote().expect("connected").addr;
        assert!(
            relay_addr.contains(&path),
            "the Rust stream runs to the relay: {path} vs {relay_addr:?}"
        );
        let mut pairs = vec![line(&mut relay_out).await, line(&mut relay_out).await];
        pairs.sort();
        assert_eq!(pairs, ["pair false", "pair true"]);
        let got = exchange(conn).await;
        assert!(
            got == pattern(N),
            "data from JS corrupted ({} bytes)",
            got.len()
        );
        let pk = client.key_pair().public_key().to_hex();
        assert_eq!(line(&mut out).await, format!("connection {pk}"));
        assert_eq!(
            line(&mut out).await,
            format!("done received={N} remote={pk}")
        );
    });
}
