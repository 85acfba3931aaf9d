//! NAT lab (tests/nat/lab.sh; needs root, prints SKIPPED otherwise): a Rust client behind a
//! randomizing NAT connecting to a Rust server behind another randomizing NAT cannot punch; the
//! connect fails with the typed HOLEPUNCH_DOUBLE_RANDOMIZED_NATS (or, when the server saw both
//! sides randomizing first, REMOTE_ABORTED) error well within hyperdht's
//! bound for the probe round (4 tries x 1 s, twice, plus the 1 s UNKNOWN wait: < 10 s), and the
//! same with a JS server; and an exhausted consistent punch (accepting routers) ends with
//! HOLEPUNCH_ABORTED after the reference's 10 rounds x 1 s.

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
        // the client's own verdict, or the server's abort when the client's payload already said
        // RANDOM (its NAT analysis finishes while it learns its low TTL)
        assert!(
            r.outcome == "failed:HOLEPUNCH_DOUBLE_RANDOMIZED_NATS"
                || r.outcome == "failed:REMOTE_ABORTED",
            "{}",
            r.line
        );
        assert!(r.ms < 10_000, "failed in {} ms: {}", r.ms, r.line);
    }
}

/// Routers that accept unsolicited inbound break consistent x consistent punching in this lab
/// (conntrack, see docs/nat-matrix.md): the JS client gives up with HOLEPUNCH_ABORTED after
/// ~10 s (10 rounds x 1 s); the Rust client must report the same typed error in the same bound.
#[test]
fn exhausted_consistent_punch_aborts_after_ten_rounds() {
    if std::env::var_os(PEER_ENV).is_some() {
        return;
    }
    common::require_js();
    for server in [Impl::Rust, Impl::Js] {
        let Some(r) = run_cell(
            Impl::Rust,
            server,
            "consistent",
            "consistent",
            "accept",
            1024,
        ) else {
            return;
        };
        println!("{server:?} server: {}", r.line);
        if r.outcome == "punched" {
            // the lab's conntrack race can let a punch through; then there is nothing to check
            continue;
        }
        assert_eq!(r.outcome, "failed:HOLEPUNCH_ABORTED", "{}", r.line);
        assert!(
            (9_000..15_000).contains(&r.ms),
            "gave up after {} ms: {}",
            r.ms,
            r.line
        );
    }
}
