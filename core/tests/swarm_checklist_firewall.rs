//! Hyperswarm checklist (spec `hyperswarm.md` §10.1) items 7–9 (firewall.js) and 41–42
//! (swarm.js firewall cases), on the sans-IO engine with a virtual clock.
#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::swarm_sim::{test_config, Net};
use p2pswarm::crypto::KeyPair;

const TOPIC: [u8; 32] = [0x52; 32];

fn key_of(seed: u8) -> p2pswarm::crypto::PublicKey {
    *KeyPair::from_seed(&[seed; 32]).public_key()
}

/// Item 7: a server whose firewall rejects a client's key never emits a connection for it.
#[test]
fn a_server_firewall_rejecting_a_client_never_connects_it() {
    let mut net = Net::new();
    let client_key = key_of(2);
    let s = net.add(1, test_config(), Some(Box::new(move |k| *k == client_key)));
    let c = net.add(2, test_config(), None);
    net.join(s, TOPIC, true, false);
    net.run_for(Duration::from_millis(100));
    net.join(c, TOPIC, false, true);
    net.run_for(Duration::from_secs(10));
    assert!(net.nodes[s].connections.is_empty());
    assert!(net.nodes[c].connections.is_empty());
    assert!(
        net.nodes[c].engine.stats().client_attempted >= 1,
        "the client did try"
    );
}

/// Item 8: a client whose firewall rejects a discovered server calls it once with that key
/// and emits no connection.
#[test]
fn a_client_firewall_is_called_once_with_the_server_key() {
    let mut net = Net::new();
    let server_key = key_of(1);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let s = net.add(1, test_config(), None);
    let c = net.add(
        2,
        test_config(),
        Some(Box::new(move |k| {
            seen2.lock().expect("lock").push(*k);
            true
        })),
    );
    net.join(s, TOPIC, true, false);
    net.run_for(Duration::from_millis(100));
    net.join(c, TOPIC, false, true);
    net.run_for(Duration::from_secs(5));
    assert_eq!(*seen.lock().expect("lock"), vec![server_key]);
    assert!(net.nodes[c].connections.is_empty());
    assert!(net.nodes[s].connections.is_empty());
    assert_eq!(net.nodes[c].engine.stats().client_attempted, 0);
}

/// Item 9: a server rejecting a client that keeps retrying runs its firewall exactly once (the
/// ban short-circuits later handshakes) and never accepts a connection.
#[test]
fn a_server_runs_its_firewall_once_for_a_retrying_client() {
    let mut net = Net::new();
    let client_key = key_of(2);
    let s = net.add(1, test_config(), Some(Box::new(move |k| *k == client_key)));
    let c = net.add(2, test_config(), None);
    net.join(s, TOPIC, true, false);
    net.run_for(Duration::from_millis(100));
    net.join(c, TOPIC, false, true);
    net.run_for(Duration::from_secs(30));
    assert!(
        net.nodes[c].engine.stats().client_attempted >= 3,
        "the client retried ({} attempts)",
        net.nodes[c].engine.stats().client_attempted
    );
    assert_eq!(net.nodes[s].firewall_calls.load(Ordering::SeqCst), 1);
    assert!(net.nodes[s].connections.is_empty());
}

/// Item 41: a server firewall rejecting a client bans it at once (`banned_peers` 1); after the
/// firewall is disabled no connection forms in either direction on new topics.
#[test]
fn a_firewall_ban_persists_in_both_directions() {
    let mut net = Net::new();
    let client_key = key_of(2);
    let on = Arc::new(AtomicBool::new(true));
    let on2 = on.clone();
    let s = net.add(
        1,
        test_config(),
        Some(Box::new(move |k| {
            on2.load(Ordering::SeqCst) && *k == client_key
        })),
    );
    let c = net.add(2, test_config(), None);
    net.join(s, TOPIC, true, false);
    net.run_for(Duration::from_millis(100));
    net.join(c, TOPIC, false, true);
    assert!(net.run_until(Duration::from_millis(500), |n| n.nodes[s]
        .engine
        .stats()
        .banned_peers
        == 1));
    on.store(false, Ordering::SeqCst);
    // New topics, both directions.
    net.join(c, [0x53; 32], true, false);
    net.join(s, [0x54; 32], true, false);
    net.run_for(Duration::from_millis(100));
    net.join(s, [0x53; 32], false, true);
    net.join(c, [0x54; 32], false, true);
    net.run_for(Duration::from_secs(10));
    assert!(net.nodes[s].connections.is_empty(), "server connected");
    assert!(net.nodes[c].connections.is_empty(), "client connected");
    assert_eq!(net.nodes[s].engine.stats().banned_peers, 1);
}

/// Item 42: a client firewall rejecting a server emits `Ban` with the server's key and counts
/// it.
#[test]
fn a_client_firewall_rejection_emits_ban() {
    let mut net = Net::new();
    let server_key = key_of(1);
    let s = net.add(1, test_config(), None);
    let c = net.add(2, test_config(), Some(Box::new(move |k| *k == server_key)));
    net.join(s, TOPIC, true, false);
    net.run_for(Duration::from_millis(100));
    net.join(c, TOPIC, false, true);
    net.run_for(Duration::from_secs(2));
    let bans: Vec<_> = net.nodes[c].bans.iter().map(|p| p.public_key).collect();
    assert_eq!(bans, vec![server_key]);
    assert!(net.nodes[c].bans[0].banned);
    assert_eq!(net.nodes[c].engine.stats().banned_peers, 1);
}
