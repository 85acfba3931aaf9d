//! Swarm rules beyond the JS test-suite (spec `hyperswarm.md` §5–§6), on the sans-IO engine:
//! discovery refresh timing (10 min + U(0, 2 min); a late timer after a sleep reschedules
//! within the jitter), the explicit-peer factor on `max_peers`, `max_parallel`, the limit on
//! peers used per lookup, and flush accounting that ignores peers queued after it started.
#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::time::Duration;

use common::swarm_sim::{test_config, Net};
use p2pswarm::swarm::engine::{Config, Engine};

const T: [u8; 32] = [0x71; 32];

fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// After each completed query the next refresh is due 10–12 minutes later, and it runs.
#[test]
fn discovery_refreshes_every_ten_to_twelve_minutes() {
    let mut net = Net::new();
    let a = net.add(1, test_config(), None);
    net.join(a, T, true, true);
    assert_eq!(net.flush_wait(a), Some(true));
    let mut last = net.now;
    for _ in 0..5 {
        let next = net.nodes[a]
            .engine
            .status(&T)
            .and_then(|s| s.next_refresh)
            .expect("a refresh is scheduled");
        let delay = next - last;
        assert!(
            delay >= mins(10) && delay <= mins(12),
            "next refresh in {delay:?}"
        );
        assert!(net.run_until(mins(13), |n| n.nodes[a]
            .engine
            .status(&T)
            .is_some_and(|s| s.refreshing)));
        assert_eq!(net.now, next, "refreshed on time");
        assert!(net.run_until(Duration::from_secs(1), |n| !n.nodes[a]
            .engine
            .status(&T)
            .is_some_and(|s| s.refreshing)));
        last = net.now;
    }
}

/// A refresh timer that fires more than 30 s late (the machine slept) does not query at once
/// but reschedules within the 0–2 minute jitter.
#[test]
fn a_late_refresh_timer_reschedules_within_the_jitter() {
    let mut net = Net::new();
    let a = net.add(1, test_config(), None);
    net.join(a, T, false, true);
    assert_eq!(net.flush_wait(a), Some(true));
    let due = net.nodes[a]
        .engine
        .status(&T)
        .and_then(|s| s.next_refresh)
        .expect("scheduled");
    // Wake up 5 minutes after the deadline.
    let late = due + mins(5);
    net.nodes[a].engine.handle_timeout(late);
    let st = net.nodes[a].engine.status(&T).expect("status");
    assert!(!st.refreshing, "no query right after a sleep");
    let next = st.next_refresh.expect("rescheduled");
    assert!(
        next > late && next <= late + mins(2),
        "rescheduled to {:?}",
        next - late
    );
}

/// With one explicit peer the topic budget halves: `2 × connections < max_peers`.
#[test]
fn explicit_peers_shrink_the_topic_budget() {
    let cfg = Config {
        max_peers: 4,
        ..test_config()
    };
    let mut net = Net::new();
    let c = net.add(1, cfg, None);
    let servers: Vec<usize> = (2..=7u8).map(|s| net.add(s, test_config(), None)).collect();
    for &s in &servers {
        net.join(s, T, true, false);
    }
    net.run_for(Duration::from_millis(200));
    let explicit = net.add(9, test_config(), None);
    net.with(explicit, |e, _| e.listen()).expect("listen");
    net.run_for(Duration::from_millis(50));
    let ke = net.key(explicit);
    net.with(c, |e, now| e.join_peer(now, ke));
    net.join(c, T, false, true);
    net.run_for(Duration::from_secs(3));
    // factor 2: topic peers stop at 2 connections in total (2 × 2 = 4 is not < 4).
    assert_eq!(net.nodes[c].open.len(), 2, "{:?}", net.open_to(c));
    assert!(
        net.open_to(c).contains(&ke),
        "the explicit peer ignores the cap"
    );
}

/// No more than `max_parallel` attempts run at once.
#[test]
fn at_most_max_parallel_attempts_run_at_once() {
    let mut net = Net::new();
    let c = net.add(1, test_config(), None);
    for s in 2..=9u8 {
        let s = net.add(s, test_config(), None);
        net.join(s, T, true, false);
    }
    net.run_for(Duration::from_millis(200));
    net.join(c, T, false, true);
    let mut max = 0;
    let end = net.now + Duration::from_secs(3);
    while net.step(end) {
        max = max.max(net.nodes[c].engine.connecting());
    }
    assert_eq!(max, 3);
    assert_eq!(net.nodes[c].open.len(), 8);
}

/// `limit`: at most this many peer records of one lookup are used.
#[test]
fn the_limit_caps_peers_used_per_lookup() {
    let mut net = Net::new();
    let c = net.add(1, test_config(), None);
    for s in 2..=7u8 {
        let s = net.add(s, test_config(), None);
        net.join(s, T, true, false);
    }
    net.run_for(Duration::from_millis(200));
    net.with(c, |e, now| e.join(now, T, false, true, Some(2)))
        .expect("join");
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.nodes[c].open.len(), 2);
}

/// A flush counts the attempts and queued peers present when it started; a peer queued later
/// does not hold it up.
#[test]
fn flush_ignores_peers_queued_after_it_started() {
    let cfg = Config {
        max_parallel: 1,
        ..test_config()
    };
    let mut net = Net::new();
    let c = net.add(1, cfg, None);
    let s1 = net.add(2, test_config(), None);
    net.join(s1, T, true, false);
    net.run_for(Duration::from_millis(200));
    // A known-but-gone peer: its dial fails only after FAIL_AFTER.
    let late = net.add(3, test_config(), None);
    let kl = net.key(late);
    net.join(c, T, false, true);
    let w = net.flush(c);
    // Run until the lookup is done and the dial to s1 is in flight, then queue the late peer.
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.nodes[c].engine.connecting()
            == 1)
    );
    net.with(c, |e, now| e.handle_peer(now, T, kl, Vec::new()));
    assert_eq!(
        net.nodes[c].engine.queued(),
        1,
        "queued behind max_parallel 1"
    );
    assert_eq!(net.wait(c, w, Duration::from_secs(1)), Some(true));
    assert_eq!(net.nodes[c].open.len(), 1, "s1 is connected");
    assert!(
        net.nodes[c].engine.connecting() == 1,
        "the late peer is still being tried when the flush resolved"
    );
    let _: fn(&mut Engine, std::time::Instant) -> u64 = Engine::flush;
}
