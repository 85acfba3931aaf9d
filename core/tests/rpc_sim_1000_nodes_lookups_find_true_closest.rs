//! A deterministic in-memory network of 1,000 dht-rpc nodes: one bootstrapper, the rest join
//! through it, pass the firewall check (PING_NAT) and become persistent. Then 200 FIND_NODE
//! lookups for random targets from random nodes must return the true 20 closest node ids
//! (brute force over every persistent node) for at least 99 % of targets. Prints hop/request
//! statistics.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::time::{Duration, Instant};

use common::dht_sim::{server_addr, Sim};
use p2pswarm::rpc::message::node_id;
use p2pswarm::rpc::node::{NodeConfig, NodeEvent};
use p2pswarm::testing::{LinkConfig, Rng};

const NODES: usize = 1000;
const LOOKUPS: usize = 200;

fn xor_key(target: &[u8; 32], id: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| target[i] ^ id[i])
}

#[test]
fn lookups_find_the_true_closest_nodes() {
    let wall = Instant::now();
    let link = LinkConfig {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(20),
        ..LinkConfig::default()
    };
    let mut sim = Sim::new(7, link);
    let boot = server_addr(0);
    sim.add_node(
        NodeConfig {
            public_addr: Some(boot),
            ephemeral: Some(false),
            ..NodeConfig::default()
        },
        1,
    );
    for i in 1..NODES {
        let cfg = NodeConfig {
            bootstrap: vec![boot],
            ephemeral: Some(false),
            ..NodeConfig::default()
        };
        sim.add_node(cfg, 1000 + i as u64);
        if i % 25 == 0 {
            sim.run_for(Duration::from_millis(500));
        }
    }
    let joined = sim.run_until(Duration::from_secs(120), |s| {
        s.nodes
            .iter()
            .all(p2pswarm::rpc::node::Node::is_bootstrapped)
    });
    assert!(
        joined,
        "{} of {NODES} nodes bootstrapped",
        sim.nodes.iter().filter(|n| n.is_bootstrapped()).count()
    );
    // Let tables fill through ordinary traffic and maintenance.
    sim.run_for(Duration::from_secs(60));
    let persistent: Vec<[u8; 32]> = sim
        .nodes
        .iter()
        .filter(|n| !n.is_ephemeral())
        .map(|n| *n.id())
        .collect();
    let persistent_count = persistent.len();
    assert!(
        persistent_count >= NODES * 99 / 100,
        "only {persistent_count} nodes became persistent"
    );
    for (i, n) in sim.nodes.iter().enumerate() {
        if !n.is_ephemeral() {
            assert_eq!(
                *n.id(),
                node_id(&server_addr(i)),
                "node {i} id is H(public address)"
            );
        }
    }
    let avg_table = sim.nodes.iter().map(|n| n.table().len()).sum::<usize>() as f64 / NODES as f64;

    let mut rng = Rng::new(99);
    let mut good = 0;
    let mut requests = Vec::new();
    let mut hops = Vec::new();
    for _ in 0..LOOKUPS {
        let mut target = [0u8; 32];
        rng.fill(&mut target);
        let from = (rng.next_u64() % NODES as u64) as usize;
        let qid = sim.with(from, |n, now| n.find_node(now, target));
        let mut result = None;
        sim.run_until(Duration::from_secs(60), |s| {
            if let Some(pos) = s.events[from]
                .iter()
                .position(|e| matches!(e, NodeEvent::QueryDone { query, .. } if *query == qid))
            {
                result = Some(s.events[from].remove(pos));
                true
            } else {
                false
            }
        });
        let Some(NodeEvent::QueryDone {
            result: Ok(replies),
            requests: sent,
            ..
        }) = result
        else {
            panic!("lookup from node {from} did not finish: {result:?}");
        };
        requests.push(sent);
        hops.push(replies.iter().map(|r| r.hops).max().unwrap_or(0));
        let own = *sim.nodes[from].id();
        let mut truth: Vec<[u8; 32]> = persistent.iter().copied().filter(|id| *id != own).collect();
        truth.sort_by_key(|id| xor_key(&target, id));
        truth.truncate(20);
        let mut got: Vec<[u8; 32]> = replies.iter().map(|r| r.id).collect();
        got.sort_by_key(|id| xor_key(&target, id));
        if got == truth {
            good += 1;
        } else if std::env::var_os("DHT_SIM_DEBUG").is_some() {
            let missing: Vec<&[u8; 32]> = truth.iter().filter(|t| !got.contains(t)).collect();
            let known: Vec<usize> = missing
                .iter()
                .map(|m| sim.nodes.iter().filter(|n| n.table().has(m)).count())
                .collect();
            let rank: Vec<usize> = missing
                .iter()
                .map(|m| truth.iter().position(|t| t == *m).unwrap_or(99))
                .collect();
            eprintln!(
                "miss: got {} found {} of 20; missing ranks {rank:?}, in {known:?} tables",
                got.len(),
                20 - missing.len()
            );
        }
        for e in &mut sim.events {
            e.clear();
        }
    }
    requests.sort_unstable();
    let mean = requests.iter().sum::<usize>() as f64 / requests.len() as f64;
    let mean_hops = hops.iter().map(|&h| f64::from(h)).sum::<f64>() / hops.len() as f64;
    hops.sort_unstable();
    eprintln!(
        "{NODES} nodes ({persistent_count} persistent, avg table {avg_table:.1}); {good}/{LOOKUPS} lookups exact; \
         hops to the farthest of the closest 20: mean {mean_hops:.2}, max {}; requests per lookup: mean {mean:.1}, median {}, p95 {}; virtual {:?}, wall {:?}",
        hops[hops.len() - 1],
        requests[requests.len() / 2],
        requests[requests.len() * 95 / 100],
        sim.now() - sim.start,
        wall.elapsed()
    );
    assert!(
        good * 100 >= LOOKUPS * 99,
        "only {good}/{LOOKUPS} lookups returned the true closest set"
    );
}
