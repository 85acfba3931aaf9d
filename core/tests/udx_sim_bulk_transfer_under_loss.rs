//! 8 MiB each way over the in-memory network at 0, 1, 5 and 20 % random loss, with reordering
//! and duplication: every byte delivered exactly once and in order, both sides end and close
//! cleanly. Deterministic (seeded) and on a virtual clock.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::time::Duration;

use common::udx_sim::Pair;
use p2pswarm::testing::LinkConfig;

const BYTES: usize = 8 * 1024 * 1024;

fn link(loss: f64) -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(15),
        jitter: Duration::from_millis(4),
        loss,
        duplicate: 0.01,
        rate: Some(20e6),
        queue_limit: 300_000,
        ..LinkConfig::default()
    }
}

fn transfer(loss: f64, seed: u64) {
    let mut p = Pair::new(seed, link(loss), BYTES, BYTES);
    p.run_until(Duration::from_secs(900), Pair::transfer_done);
    for side in [&p.a, &p.b] {
        assert_eq!(side.received, BYTES, "bytes received at {loss} loss");
        assert!(side.got_end && side.finished, "END exchanged");
        assert_eq!(side.closed, Some(Ok(())), "clean close");
    }
    let s = &p.net.stats;
    eprintln!(
        "loss {:>4.0}%: {:?} virtual, {} datagrams sent, {} lost, {} queue drops, {} duplicated",
        loss * 100.0,
        p.elapsed(),
        s.sent,
        s.lost,
        s.queue_drops,
        s.duplicated
    );
}

#[test]
fn no_loss() {
    transfer(0.0, 1);
}

#[test]
fn one_percent_loss() {
    transfer(0.01, 2);
}

#[test]
fn five_percent_loss() {
    transfer(0.05, 3);
}

#[test]
fn twenty_percent_loss() {
    transfer(0.20, 4);
}
