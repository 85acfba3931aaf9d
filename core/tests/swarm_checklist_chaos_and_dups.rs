//! Hyperswarm checklist (spec `hyperswarm.md` §10.1) items 5 (chaos.js), 6 (dups.js) and 18
//! (suspend.js), on the sans-IO engine with a virtual clock and a fake DHT.
#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::swarm_sim::{test_config, Net};
use p2pswarm::swarm::engine::Config;
use p2pswarm::testing::Rng;

fn expected_mesh(members: &[Vec<usize>], n: usize) -> Vec<BTreeSet<usize>> {
    (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i)
                .filter(|&j| members.iter().any(|m| m.contains(&i) && m.contains(&j)))
                .collect()
        })
        .collect()
}

fn actual_mesh(net: &Net, n: usize) -> Vec<BTreeSet<usize>> {
    (0..n)
        .map(|i| {
            net.open_to(i)
                .iter()
                .filter_map(|k| (0..n).find(|&j| net.key(j) == *k))
                .collect()
        })
        .collect()
}

/// Item 5: ten swarms on 15 random topics connect exactly to the swarms they share a topic
/// with; 30 random connection kills over 10 s heal within 45 s.
#[test]
fn chaos_kills_heal_to_the_exact_topic_mesh() {
    let cfg = Config {
        backoffs: Some([
            Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(10),
            Duration::from_secs(10),
        ]),
        jitter: Duration::ZERO,
        ..Config::default()
    };
    let n = 10;
    let mut rng = Rng::new(0x5eed_c4a0);
    let mut net = Net::new();
    for i in 0..n {
        net.add(i as u8 + 1, cfg.clone(), None);
    }
    let mut members: Vec<Vec<usize>> = Vec::new();
    for t in 0..15u8 {
        let m: Vec<usize> = (0..n).filter(|_| rng.next_u64() % 3 == 0).collect();
        for &i in &m {
            net.join(i, [t + 1; 32], true, true);
        }
        members.push(m);
    }
    for i in 0..n {
        assert_eq!(net.flush_wait(i), Some(true));
    }
    net.run_for(Duration::from_secs(2));
    let expect = expected_mesh(&members, n);
    assert_eq!(actual_mesh(&net, n), expect, "after start-up");
    for _ in 0..30 {
        net.run_for(Duration::from_millis(333));
        let i = (rng.next_u64() % n as u64) as usize;
        let conns: Vec<_> = net.nodes[i].open.keys().copied().collect();
        if conns.is_empty() {
            continue;
        }
        let c = conns[(rng.next_u64() % conns.len() as u64) as usize];
        net.close(i, c);
    }
    assert!(
        net.run_until(Duration::from_secs(45), |net| actual_mesh(net, n) == expect),
        "healed mesh: {:?}\nexpected: {expect:?}",
        actual_mesh(&net, n)
    );
}

/// Item 6: ten swarms announce a topic, then all also look it up at once: every swarm ends
/// with exactly one live connection to each of the other nine.
#[test]
fn ten_swarms_dialling_each_other_keep_one_connection_per_pair() {
    let n = 10;
    let mut net = Net::new();
    for i in 0..n {
        net.add(i as u8 + 1, test_config(), None);
    }
    let topic = [0x66; 32];
    for i in 0..n {
        net.join(i, topic, true, false);
    }
    for i in 0..n {
        assert_eq!(net.flush_wait(i), Some(true));
    }
    for i in 0..n {
        net.join(i, topic, true, true);
    }
    net.run_for(Duration::from_secs(10));
    for i in 0..n {
        let keys = net.open_to(i);
        let distinct: BTreeSet<_> = keys.iter().map(|k| k.0).collect();
        assert_eq!(keys.len(), n - 1, "swarm {i}: {} open", keys.len());
        assert_eq!(distinct.len(), n - 1, "swarm {i}: duplicates");
    }
}

/// Item 18: a client connected to a server is suspended (its connection drops) and resumed
/// after 2 s: both swarms see a second connection.
#[test]
fn suspend_drops_connections_and_resume_reconnects() {
    let mut net = Net::new();
    let s = net.add(1, test_config(), None);
    let c = net.add(2, test_config(), None);
    net.join(s, [0x67; 32], true, false);
    assert_eq!(net.flush_wait(s), Some(true));
    net.join(c, [0x67; 32], false, true);
    assert!(
        net.run_until(Duration::from_secs(2), |n| n.nodes[s].open.len() == 1
            && n.nodes[c].open.len() == 1)
    );
    net.with(c, p2pswarm::swarm::engine::Engine::suspend);
    net.run_for(Duration::from_secs(2));
    assert!(net.nodes[c].open.is_empty() && net.nodes[s].open.is_empty());
    assert!(net.nodes[c].engine.is_suspended());
    assert_eq!(net.nodes[c].connections.len(), 1, "nothing while suspended");
    net.with(c, p2pswarm::swarm::engine::Engine::resume);
    assert!(
        net.run_until(Duration::from_secs(2), |n| n.nodes[s].connections.len()
            == 2
            && n.nodes[c].connections.len() == 2)
    );
}
