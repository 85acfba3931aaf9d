//! Hyperswarm checklist (spec `hyperswarm.md` §10.1) items 1–4 (bulk-timer.js) and 14–16
//! (retry-timer.js), on the sans-IO engine with a virtual clock.
#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::time::{Duration, Instant};

use common::swarm_sim::{test_config, Net, FAIL_AFTER};
use p2pswarm::crypto::PublicKey;
use p2pswarm::swarm::engine::BulkTimer;

fn k(b: u8) -> PublicKey {
    PublicKey([b; 32])
}

const T: Duration = Duration::from_millis(100);
const TOPIC: [u8; 32] = [0x51; 32];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Item 1: two items added together come out together as one batch within ~1.5 periods.
#[test]
fn items_added_together_are_released_as_one_batch() {
    let t0 = Instant::now();
    let mut t = BulkTimer::new(T);
    t.add(t0, k(1));
    t.add(t0, k(2));
    let mut released = None;
    for step in 1..=15u64 {
        let batch = t.tick(t0 + ms(step * 10));
        if !batch.is_empty() {
            released = Some((step * 10, batch));
            break;
        }
    }
    let (at, batch) = released.expect("released");
    assert_eq!(batch, vec![k(1), k(2)]);
    assert!(at <= 150, "released after {at} ms");
}

/// Item 2: items added at different moments of one period are still one batch.
#[test]
fn items_added_within_one_period_share_a_batch() {
    let t0 = Instant::now();
    let mut t = BulkTimer::new(T);
    t.add(t0, k(1));
    assert!(t.tick(t0 + ms(20)).is_empty());
    t.add(t0 + ms(30), k(2));
    let mut batches = Vec::new();
    for step in 4..=30u64 {
        let b = t.tick(t0 + ms(step * 10));
        if !b.is_empty() {
            batches.push(b);
        }
    }
    assert_eq!(batches, vec![vec![k(1), k(2)]]);
}

/// Item 3: items added in different periods are separate batches, in order.
#[test]
fn items_added_in_different_periods_are_separate_batches() {
    let t0 = Instant::now();
    let mut t = BulkTimer::new(T);
    t.add(t0, k(1));
    let mut batches = Vec::new();
    for step in 1..=30u64 {
        let now = t0 + ms(step * 10);
        let b = t.tick(now);
        if !b.is_empty() {
            batches.push(b);
        }
        if step == 7 {
            t.add(now, k(2));
        }
    }
    assert_eq!(batches, vec![vec![k(1)], vec![k(2)]]);
}

/// Item 4: once a batch is out, idle ticks do nothing and no deadline is armed.
#[test]
fn idle_ticks_after_a_batch_release_nothing() {
    let t0 = Instant::now();
    let mut t = BulkTimer::new(T);
    t.add(t0, k(1));
    assert_eq!(t.tick(t0 + ms(140)), vec![k(1)]);
    assert_eq!(t.deadline(), None);
    for step in 15..=100u64 {
        assert!(t.tick(t0 + ms(step * 10)).is_empty());
    }
}

/// Dial times of node `c` (when `connecting` rose), from its update log is not timed: record
/// by stepping and watching `stats().client_attempted`.
fn attempt_times(net: &mut Net, c: usize, limit: Duration) -> Vec<Duration> {
    let start = net.now;
    let end = start + limit;
    let mut seen = net.nodes[c].engine.stats().client_attempted;
    let mut times = Vec::new();
    while net.step(end) {
        let now = net.nodes[c].engine.stats().client_attempted;
        if now > seen {
            times.push(net.now - start);
            seen = now;
        }
    }
    times
}

/// Item 14: a proven peer that disconnects after a short connection (attempts 1) is retried
/// from the S timer (0.66·S..1.32·S); dropped again at once (attempts 2) it moves to M.
#[test]
fn a_proven_peer_is_retried_after_the_short_backoff() {
    let mut net = Net::new();
    let s = net.add(1, test_config(), None);
    let c = net.add(2, test_config(), None);
    net.join(s, TOPIC, true, false);
    net.run_for(ms(100));
    net.join(c, TOPIC, false, true);
    assert!(net.run_until(ms(500), |n| n.nodes[c].open.len() == 1));
    for (round, class) in [(0, ms(100)), (1, ms(200))] {
        let conn = *net.nodes[s].open.keys().next().expect("server side");
        net.close(s, conn);
        // The close reaches the client after one latency; the redial follows from the S timer.
        let times = attempt_times(&mut net, c, ms(300));
        let first = *times
            .first()
            .unwrap_or_else(|| panic!("round {round}: no redial"));
        assert!(
            first >= class * 66 / 100 && first <= class * 132 / 100 + ms(20),
            "round {round}: redial after {first:?}"
        );
        assert_eq!(
            net.nodes[c].engine.peer(&net.key(s)).map(|p| p.proven),
            Some(true)
        );
        assert!(net.run_until(ms(200), |n| n.nodes[c].open.len() == 1));
    }
}

/// Item 15: a never-proven, non-explicit peer is tried 4 times (M, L, L back-offs) and then
/// dropped: no fifth attempt, and its PeerInfo is garbage-collected.
#[test]
fn an_unproven_peer_is_not_rescheduled_after_four_attempts() {
    let mut net = Net::new();
    let s = net.add(1, test_config(), None);
    let c = net.add(2, test_config(), None);
    net.join(s, TOPIC, true, false);
    net.run_for(ms(100));
    // The server announced but never accepts: its "process" is gone.
    net.nodes[s].listening = false;
    net.join(c, TOPIC, false, true);
    let times = attempt_times(&mut net, c, Duration::from_secs(20));
    assert_eq!(times.len(), 4, "attempts at {times:?}");
    // Gaps: failure after FAIL_AFTER, then M (200 ms) and L (300 ms) class delays.
    let gaps: Vec<Duration> = times
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    let (m, l) = (ms(200), ms(300));
    for (i, (gap, class)) in gaps.iter().zip([m, l, l]).enumerate() {
        let lo = FAIL_AFTER + class * 66 / 100;
        let hi = FAIL_AFTER + class * 132 / 100 + ms(10);
        assert!(
            *gap >= lo && *gap <= hi,
            "gap {i} = {gap:?}, class {class:?}"
        );
    }
    assert!(net.nodes[c].engine.peer(&net.key(s)).is_none(), "peer GC'd");
}

/// Item 16: a banned peer is not rescheduled after its connection closes.
#[test]
fn a_banned_peer_is_not_rescheduled() {
    let mut net = Net::new();
    let s = net.add(1, test_config(), None);
    let c = net.add(2, test_config(), None);
    net.join(s, TOPIC, true, false);
    net.run_for(ms(100));
    net.join(c, TOPIC, false, true);
    assert!(net.run_until(ms(500), |n| n.nodes[c].open.len() == 1));
    let server_key = net.key(s);
    net.nodes[c].engine.ban(&server_key, true);
    let conn = *net.nodes[s].open.keys().next().expect("server side");
    net.close(s, conn);
    let times = attempt_times(&mut net, c, Duration::from_secs(5));
    assert!(times.is_empty(), "redialled a banned peer at {times:?}");
    let p = net.nodes[c]
        .engine
        .peer(&server_key)
        .expect("banned peers stay");
    assert!(p.banned && !p.waiting);
}
