//! NAT lab (tests/nat/lab.sh; needs root, prints SKIPPED otherwise): a Rust client behind a
//! randomizing NAT connecting to a Rust server behind another randomizing NAT cannot punch; the
//! connect fails with the typed HOLEPUNCH_DOUBLE_RANDOMIZED_NATS error well within hyperdht's
//! bound for the probe round (4 tries x 1 s, twice, plus the 1 s UNKNOWN wait: < 10 s), and the
//! same with a JS server.

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
fn double_random_nats_fail_fast_with_a_typed_error() {
    if std::env::var_os(PEER_ENV).is_some() {
        return;
    }
    common::require_js();
    for server in [Impl::Rust, Impl::Js] {
        let Some(r) = run_cell(Impl::Rust, server, "random", "random", "drop", 1024) else {
            return;
        };
        println!("{server:?} server: {}", r.line);
        assert_eq!(
            r.outcome, "failed:HOLEPUNCH_DOUBLE_RANDOMIZED_NATS",
            "{}",
            r.line
        );
        assert!(r.ms < 10_000, "failed in {} ms: {}", r.ms, r.line);
    }
}
