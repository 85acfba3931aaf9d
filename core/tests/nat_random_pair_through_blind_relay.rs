//! NAT lab (tests/nat/lab.sh; needs root for network namespaces, prints SKIPPED otherwise): a
//! Rust client and a Rust server, each behind its own randomizing NAT (`masquerade
//! fully-random`, routers dropping unsolicited inbound) -- a pair hole punching cannot connect
//! (HOLEPUNCH_DOUBLE_RANDOMIZED_NATS) -- connect through a Rust blind-relay server on the public
//! segment that the client names (`relay_through`): the client's stream runs to the relay's
//! address, the relay matched the pairing, and 64 KiB flows each way intact
//! (tests/nat/relay-cell.sh).

#![allow(clippy::panic)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::nat::{assert_relayed_cell, run_lab_script, run_peer, Impl, PEER_ENV};
use p2pswarm::crypto::KeyPair;
use p2pswarm::dht::{BlindRelayServer, Dht};
use p2pswarm::rpc::driver::DhtConfig;

/// Arguments of the relay role, set by relay-cell.sh.
const RELAY_ENV: &str = "P2PSWARM_NAT_RELAY_ARGS";

#[test]
fn nat_peer() {
    if let Ok(args) = std::env::var(PEER_ENV) {
        run_peer(&args);
    }
}

fn arg(args: &[&str], name: &str) -> Option<String> {
    args.iter()
        .position(|a| *a == name)
        .and_then(|i| args.get(i + 1).map(|s| (*s).to_owned()))
}

/// The relay role: a persistent node on the public segment running a `BlindRelayServer`; prints
/// `relay PKHEX HOST:PORT`, then `paired N` lines as pairings match, until killed (bounded).
#[test]
fn nat_relay() {
    let Ok(args) = std::env::var(RELAY_ENV) else {
        return;
    };
    let args: Vec<&str> = args.split_whitespace().collect();
    let boot: SocketAddrV4 = arg(&args, "--bootstrap")
        .and_then(|b| b.parse().ok())
        .expect("--bootstrap");
    let host: Ipv4Addr = arg(&args, "--host")
        .and_then(|h| h.parse().ok())
        .expect("--host");
    let timeout = Duration::from_millis(
        arg(&args, "--timeout-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(120_000),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dht = Dht::bind(DhtConfig {
            bootstrap: vec![boot],
            host,
            ephemeral: Some(false),
            firewalled: false,
            ..DhtConfig::default()
        })
        .await
        .expect("bind");
        let _ = tokio::time::timeout(Duration::from_secs(20), dht.ready()).await;
        let relay = BlindRelayServer::listen(&dht, KeyPair::from_seed(&[0xee; 32]))
            .await
            .expect("relay");
        println!(
            "relay {} {}",
            relay.public_key().to_hex(),
            dht.rpc().local_addr()
        );
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = 0;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let m = relay.stats().matched;
            if m != seen {
                seen = m;
                println!("paired {m}");
            }
        }
    });
}

#[test]
fn random_pair_connects_through_the_relay() {
    if std::env::var_os(PEER_ENV).is_some() || std::env::var_os(RELAY_ENV).is_some() {
        return;
    }
    common::require_js();
    let Some(out) = run_lab_script(
        Impl::Rust,
        Impl::Rust,
        "random",
        "random",
        "drop",
        "relay-cell.sh",
    ) else {
        return;
    };
    println!("{out}");
    assert_relayed_cell(&out, "the random pair");
}
