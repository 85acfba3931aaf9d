//! A JS hyperdht 6.34 client that may not hole-punch connects to a Rust server that names a JS
//! blind-relay 1.6.1 server (`Server::set_relay_through`: the server's relay wins, the Rust
//! server pairs as initiator and the JS client follows it), in a fresh network namespace: the
//! Rust server's stream runs to the relay's address, the relay reports both halves paired, and
//! 4 MiB flows each way intact with the JS client confirming the key and handshake hash.
//! The JS peer keeps reporting itself firewalled (`--stay-firewalled`): a JS node whose quick
//! bootstrap check finds its port reachable reports FIREWALL.OPEN, and then both
//! implementations rightly connect directly and leave the relay unused.

#![allow(clippy::panic)]

mod common;

use std::time::Duration;

use common::relay_interop::{
    exchange, js_relay, js_testnet, line, node, pattern, runtime, rust_peer, N,
};
use p2pswarm::crypto::{to_hex, KeyPair, PublicKey};

#[test]
fn js_client_to_rust_server_through_js_relay() {
    if common::netns::run_inside("js_client_to_rust_server_through_js_relay", 0) {
        return;
    }
    runtime().block_on(async {
        let (_tn, boot) = js_testnet().await;
        let (_relay, mut relay_out, relay_pk, relay_addr) = js_relay(boot, 0x72).await;
        let server_dht = rust_peer(boot, 1).await;
        let server_kp = KeyPair::from_seed(&[0x51; 32]);
        let mut server = server_dht
            .listen(server_kp.clone(), None)
            .await
            .expect("listen");
        server.set_relay_through(Some(relay_pk));
        let client_seed = [0x52u8; 32];
        let client_pk = KeyPair::from_seed(&client_seed).public_key().to_hex();
        let (_c, mut out) = node(&[
            "hyperdht-connect.js",
            "client",
            "--bootstrap",
            &boot.to_string(),
            "--seed",
            &to_hex(&client_seed),
            "--connect",
            &server_kp.public_key().to_hex(),
            "--bytes",
            &N.to_string(),
            "--no-holepunch",
            "--stay-firewalled",
        ]);
        let conn = tokio::time::timeout(Duration::from_secs(60), server.accept())
            .await
            .expect("accept in time")
            .expect("connection");
        assert_eq!(
            conn.remote_public_key().map(PublicKey::to_hex),
            Some(client_pk)
        );
        let path = conn.get_ref().remote().expect("connected").addr;
        assert!(
            relay_addr.contains(&path),
            "the Rust stream runs to the relay: {path} vs {relay_addr:?}"
        );
        let mut pairs = vec![line(&mut relay_out).await, line(&mut relay_out).await];
        pairs.sort();
        assert_eq!(pairs, ["pair false", "pair true"]);
        let hash = to_hex(conn.handshake_hash().expect("hash"));
        let got = exchange(conn).await;
        assert!(
            got == pattern(N),
            "data from JS corrupted ({} bytes)",
            got.len()
        );
        assert_eq!(
            line(&mut out).await,
            format!(
                "done received={N} remote={} hash={hash}",
                server_kp.public_key().to_hex()
            )
        );
    });
}
