//! Hyperswarm checklist (spec `hyperswarm.md` §10.1) items 10–13 (peer-join.js): explicit
//! peers, on the sans-IO engine with a virtual clock.
#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::time::Duration;

use common::swarm_sim::{test_config, Net};
use p2pswarm::swarm::engine::Config;

fn listening_pair(cfg: &Config) -> (Net, usize, usize) {
    let mut net = Net::new();
    let a = net.add(1, cfg.clone(), None);
    let b = net.add(2, cfg.clone(), None);
    net.with(b, |e, _| e.listen()).expect("listen");
    net.with(a, |e, _| e.listen()).expect("listen");
    net.run_for(Duration::from_millis(50));
    (net, a, b)
}

fn close_all(net: &mut Net, n: usize) {
    let conns: Vec<_> = net.nodes[n].open.keys().copied().collect();
    for c in conns {
        net.close(n, c);
    }
}

/// Item 10: `join_peer` of a listening swarm connects both sides; after both ends close,
/// the swarm reconnects (2 connections per side in total).
#[test]
fn join_peer_connects_and_reconnects_after_both_ends_close() {
    let (mut net, a, b) = listening_pair(&test_config());
    let kb = net.key(b);
    net.with(a, |e, now| e.join_peer(now, kb));
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.nodes[a].open.len() == 1
            && n.nodes[b].open.len() == 1)
    );
    close_all(&mut net, a);
    close_all(&mut net, b);
    assert_eq!(net.flush_wait(a), Some(true));
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.nodes[a].connections.len()
            == 2
            && n.nodes[b].connections.len() == 2)
    );
    assert_eq!(net.nodes[a].open.len(), 1);
    assert_eq!(net.nodes[b].open.len(), 1);
}

/// Item 11: `join_peer` of our own key queues nothing.
#[test]
fn join_peer_of_our_own_key_queues_nothing() {
    let (mut net, a, _) = listening_pair(&test_config());
    let ka = net.key(a);
    net.with(a, |e, now| e.join_peer(now, ka));
    assert_eq!(net.nodes[a].engine.queued(), 0);
    assert_eq!(net.nodes[a].engine.connecting(), 0);
    assert!(net.nodes[a].engine.peers().is_empty());
    assert!(net.nodes[a].engine.explicit_peers().is_empty());
}

/// Item 12: after `leave_peer` the explicit set is empty while the connection stays; once it
/// is closed no new connection is made.
#[test]
fn leave_peer_keeps_the_connection_but_stops_reconnecting() {
    let (mut net, a, b) = listening_pair(&test_config());
    let kb = net.key(b);
    net.with(a, |e, now| e.join_peer(now, kb));
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.nodes[a].open.len() == 1
            && n.nodes[b].open.len() == 1)
    );
    net.with(a, |e, _| e.leave_peer(&kb));
    assert!(net.nodes[a].engine.explicit_peers().is_empty());
    assert_eq!((net.nodes[a].open.len(), net.nodes[b].open.len()), (1, 1));
    close_all(&mut net, a);
    net.run_for(Duration::from_secs(5));
    assert_eq!((net.nodes[a].open.len(), net.nodes[b].open.len()), (0, 0));
    assert_eq!(net.nodes[a].connections.len(), 1, "no new connection");
}

/// Item 13: with instant back-offs, when the joined peer is destroyed the connection closes,
/// the peer stays known and explicit while retried; after `leave_peer` the retry cycle ends
/// and peers, explicit peers and connections are all empty.
#[test]
fn leave_peer_after_the_remote_died_ends_the_retry_cycle() {
    let cfg = Config {
        backoffs: Some([Duration::from_millis(1); 4]),
        jitter: Duration::ZERO,
        ..Config::default()
    };
    let (mut net, a, b) = listening_pair(&cfg);
    let kb = net.key(b);
    net.with(a, |e, now| e.join_peer(now, kb));
    assert!(net.run_until(Duration::from_secs(1), |n| n.nodes[a].open.len() == 1));
    net.kill(b);
    assert!(net.run_until(Duration::from_secs(1), |n| n.nodes[a].open.is_empty()));
    net.run_for(Duration::from_secs(3));
    assert!(net.nodes[a].engine.peer(&kb).is_some(), "still known");
    assert_eq!(net.nodes[a].engine.explicit_peers(), vec![kb]);
    assert!(net.nodes[a].engine.stats().client_attempted > 2, "retried");
    net.with(a, |e, _| e.leave_peer(&kb));
    assert!(net.run_until(Duration::from_secs(10), |n| {
        let e = &n.nodes[a].engine;
        e.peers().is_empty() && e.explicit_peers().is_empty() && e.all_connections() == 0
    }));
    let attempts = net.nodes[a].engine.stats().client_attempted;
    net.run_for(Duration::from_secs(10));
    assert_eq!(
        net.nodes[a].engine.stats().client_attempted,
        attempts,
        "no more dials"
    );
}
