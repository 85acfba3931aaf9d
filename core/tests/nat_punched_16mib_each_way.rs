//! NAT lab (tests/nat/lab.sh; needs root for network namespaces, prints SKIPPED otherwise):
//! a Rust client and a Rust server, each behind its own consistent NAT whose router drops
//! unsolicited inbound traffic, find each other through JS bootstrap nodes, hole punch, and
//! move 16 MiB each way intact over the punched path.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use common::nat::{run_cell, run_peer, Impl, PEER_ENV};

#[test]
fn nat_peer() {
    if let Ok(args) = std::env::var(PEER_ENV) {
        run_peer(&args);
    }
}

#[test]
fn punched_connection_carries_16_mib_each_way() {
    if std::env::var_os(PEER_ENV).is_some() {
        return;
    }
    common::require_js();
    let Some(r) = run_cell(
        Impl::Rust,
        Impl::Rust,
        "consistent",
        "consistent",
        "drop",
        16 << 20,
    ) else {
        return;
    };
    println!("{}", r.line);
    assert_eq!(r.outcome, "punched", "{}", r.line);
    assert!(
        r.line.contains("done received=16777216"),
        "client got all: {}",
        r.line
    );
    assert!(
        r.line.contains("server: ") && r.line.matches("path=punched").count() >= 2,
        "both sides on the punched path: {}",
        r.line
    );
}
