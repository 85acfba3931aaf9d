//! NAT lab (tests/nat/lab.sh; needs root for network namespaces, prints SKIPPED otherwise): a
//! client and a server, each behind its own randomizing NAT (`masquerade fully-random`, routers
//! dropping unsolicited inbound) -- a pair hole punching cannot connect
//! (HOLEPUNCH_DOUBLE_RANDOMIZED_NATS) -- connect through a Rust blind-relay server on the public
//! segment that the client names (`relay_through` / hyperdht's `relayThrough`): the client's
//! stream runs to the relay's address, the relay matched the pairing, and 64 KiB flows each way
//! intact (tests/nat/relay-cell.sh). Rust<->Rust, Rust client -> JS server and JS client -> Rust
//! server.

#![allow(clippy::panic)]

mod common;

use common::nat::{assert_relayed_cell, run_lab_script, run_peer, Impl, PEER_ENV, RELAY_ENV};

#[test]
fn nat_peer() {
    if let Ok(args) = std::env::var(PEER_ENV) {
        run_peer(&args);
    }
}

/// The relay role of `tests/nat/relay-cell.sh`.
#[test]
fn nat_relay() {
    common::nat::run_relay();
}

fn random_pair(client: Impl, server: Impl, what: &str) {
    if std::env::var_os(PEER_ENV).is_some() || std::env::var_os(RELAY_ENV).is_some() {
        return;
    }
    common::require_js();
    let Some(out) = run_lab_script(client, server, "random", "random", "drop", "relay-cell.sh")
    else {
        return;
    };
    println!("{out}");
    assert_relayed_cell(&out, what);
}

#[test]
fn random_pair_connects_through_the_relay() {
    random_pair(Impl::Rust, Impl::Rust, "the Rust random pair");
}

#[test]
fn rust_client_to_js_server_connects_through_the_relay() {
    random_pair(Impl::Rust, Impl::Js, "Rust client -> JS server");
}

#[test]
fn js_client_to_rust_server_connects_through_the_relay() {
    random_pair(Impl::Js, Impl::Rust, "JS client -> Rust server");
}
