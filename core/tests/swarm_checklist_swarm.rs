//! Hyperswarm checklist (spec `hyperswarm.md` §10.1) items 17 (stats.js), 19–36 (swarm.js)
//! and 43 (update.js), on the sans-IO engine with a virtual clock and a fake DHT.
#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::time::Duration;

use common::swarm_sim::{test_config, Net};
use p2pswarm::swarm::engine::{Config, Engine};

const T1: [u8; 32] = [0x61; 32];
const T2: [u8; 32] = [0x62; 32];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A server (announced) and a second swarm, not yet joined.
fn server_and(cfg: &Config) -> (Net, usize, usize) {
    let mut net = Net::new();
    let s = net.add(1, cfg.clone(), None);
    let c = net.add(2, cfg.clone(), None);
    net.join(s, T1, true, false);
    assert_eq!(net.flush_wait(s), Some(true));
    (net, s, c)
}

fn connected(net: &mut Net, a: usize, b: usize) -> bool {
    net.run_until(Duration::from_secs(2), |n| {
        n.nodes[a].open.len() == 1 && n.nodes[b].open.len() == 1
    })
}

/// Item 17: stats count client opened/attempted/closed and server opened/closed.
#[test]
fn stats_count_opens_attempts_and_closes() {
    let (mut net, s, c) = server_and(&test_config());
    net.join(c, T1, false, true);
    assert!(connected(&mut net, s, c));
    let cs = net.nodes[c].engine.stats();
    assert_eq!(
        (cs.client_opened, cs.client_attempted, cs.client_closed),
        (1, 1, 0)
    );
    let ss = net.nodes[s].engine.stats();
    assert_eq!((ss.server_opened, ss.server_closed), (1, 0));
    let ks = net.key(s);
    net.nodes[c].engine.ban(&ks, true); // no reconnect: counts stay readable
    let conn = *net.nodes[c].open.keys().next().expect("conn");
    net.close(c, conn);
    net.run_for(ms(100));
    assert_eq!(net.nodes[c].engine.stats().client_closed, 1);
    assert_eq!(net.nodes[s].engine.stats().server_closed, 1);
}

/// Item 19: a server-only and a client-only swarm on one topic connect.
#[test]
fn a_client_connects_to_a_server() {
    let (mut net, s, c) = server_and(&test_config());
    net.join(c, T1, false, true);
    assert!(connected(&mut net, s, c));
    assert!(net.nodes[c].connections[0].1.client);
    assert!(!net.nodes[s].connections[0].1.client);
}

/// Item 20: two swarms joining with the defaults each get exactly one connection.
#[test]
fn two_default_joins_give_one_connection_each() {
    let mut net = Net::new();
    let a = net.add(1, test_config(), None);
    let b = net.add(2, test_config(), None);
    net.join(a, T1, true, true);
    assert_eq!(net.flush_wait(a), Some(true));
    net.join(b, T1, true, true);
    assert_eq!(net.flush_wait(b), Some(true));
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.nodes[a].connections.len(), 1);
    assert_eq!(net.nodes[b].connections.len(), 1);
}

/// Item 21: when the server destroys the first connection the client reconnects and the
/// server receives the new one.
#[test]
fn the_client_reconnects_after_the_server_drops_it() {
    let (mut net, s, c) = server_and(&test_config());
    net.join(c, T1, false, true);
    assert!(connected(&mut net, s, c));
    let conn = *net.nodes[s].open.keys().next().expect("conn");
    net.close(s, conn);
    assert!(
        net.run_until(Duration::from_secs(2), |n| n.nodes[s].connections.len()
            == 2
            && n.nodes[c].connections.len() == 2)
    );
    assert_eq!((net.nodes[s].open.len(), net.nodes[c].open.len()), (1, 1));
}

/// Item 22: a client that destroys every connection sees more than one and fewer than five
/// within 4 × 300 ms (the back-off applies).
#[test]
fn reconnects_of_a_destroying_client_are_backed_off() {
    let (mut net, s, c) = server_and(&test_config());
    net.nodes[c].destroy_on_open = true;
    net.join(c, T1, false, true);
    net.run_for(ms(1200));
    let n = net.nodes[c].connections.len();
    assert!(n > 1 && n < 5, "{n} connections");
    let _ = s;
}

/// Item 23: a client that bans the server in its connection handler and destroys the
/// connection sees exactly one connection.
#[test]
fn banning_in_the_connection_handler_stops_reconnects() {
    let (mut net, _s, c) = server_and(&test_config());
    net.nodes[c].ban_on_open = true;
    net.join(c, T1, false, true);
    net.run_for(ms(600));
    assert_eq!(net.nodes[c].connections.len(), 1);
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.nodes[c].connections.len(), 1);
}

/// Item 24: two client+server swarms joining at the same moment dial each other; the
/// duplicate rule leaves exactly one connection event per side.
#[test]
fn crossing_dials_resolve_to_one_connection_per_side() {
    let mut net = Net::new();
    let a = net.add(1, test_config(), None);
    let b = net.add(2, test_config(), None);
    // Both announce first, then both look up at the same instant.
    net.join(a, T1, true, false);
    net.join(b, T1, true, false);
    net.run_for(ms(200));
    net.join(a, T1, true, true);
    net.join(b, T1, true, true);
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.nodes[a].open.len(), 1);
    assert_eq!(net.nodes[b].open.len(), 1);
    assert_eq!(net.nodes[a].connections.len(), 1, "a saw one connection");
    assert_eq!(net.nodes[b].connections.len(), 1, "b saw one connection");
    // The surviving connection is the one dialled by the larger key.
    let (ka, kb) = (net.key(a), net.key(b));
    let a_dialled = net.nodes[a].connections[0].1.client;
    assert_eq!(a_dialled, ka.0 > kb.0);
}

/// Item 25: a server announcing two topics and a client looking up both: one connection, and
/// the client's PeerInfo lists both topics.
#[test]
fn one_connection_for_two_shared_topics_with_both_topics_listed() {
    let (mut net, s, c) = server_and(&test_config());
    net.join(s, T2, true, false);
    assert_eq!(net.flush_wait(s), Some(true));
    net.join(c, T1, false, true);
    net.join(c, T2, false, true);
    assert_eq!(net.flush_wait(c), Some(true));
    net.run_for(ms(500));
    assert_eq!(net.nodes[c].connections.len(), 1);
    assert_eq!(net.nodes[s].connections.len(), 1);
    let info = net.nodes[c].engine.peer(&net.key(s)).expect("peer");
    assert_eq!(info.topics, vec![T1, T2]);
}

/// Item 26: one server, two clients: the server gets one connection from each.
#[test]
fn a_server_gets_one_connection_from_each_client() {
    let (mut net, s, c1) = server_and(&test_config());
    let c2 = net.add(3, test_config(), None);
    net.join(c1, T1, false, true);
    net.join(c2, T1, false, true);
    net.run_for(Duration::from_secs(1));
    let mut keys = net.open_to(s);
    keys.sort_by_key(|k| k.0);
    let mut expect = vec![net.key(c1), net.key(c2)];
    expect.sort_by_key(|k| k.0);
    assert_eq!(keys, expect);
    assert_eq!(net.open_to(c1), vec![net.key(s)]);
    assert_eq!(net.open_to(c2), vec![net.key(s)]);
}

/// Item 27: after the server leaves (unannounces), the connected client keeps its connection
/// and a new client finds nobody.
#[test]
fn leave_keeps_connections_and_unannounces() {
    let (mut net, s, c1) = server_and(&test_config());
    net.join(c1, T1, false, true);
    assert!(connected(&mut net, s, c1));
    let w = net.with(s, |e, now| e.leave(now, T1));
    assert_eq!(net.wait(s, w, Duration::from_secs(1)), Some(true));
    let c2 = net.add(3, test_config(), None);
    net.join(c2, T1, false, true);
    assert_eq!(net.flush_wait(c2), Some(true));
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.nodes[c1].open.len(), 1);
    assert!(net.nodes[c2].connections.is_empty());
}

/// Item 28: a client does not see a later server until its discovery refreshes.
#[test]
fn a_later_server_is_found_by_refresh() {
    let (mut net, s1, c) = server_and(&test_config());
    let sid = net.join(c, T1, false, true);
    assert!(connected(&mut net, s1, c));
    let s2 = net.add(3, test_config(), None);
    net.join(s2, T1, true, false);
    assert_eq!(net.flush_wait(s2), Some(true));
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.nodes[c].open.len(), 1);
    let w = net
        .with(c, |e, now| e.session_refresh(now, sid, false, true, None))
        .expect("refresh");
    assert_eq!(net.wait(c, w, Duration::from_secs(1)), Some(true));
    assert!(net.run_until(Duration::from_secs(2), |n| n.nodes[c].open.len() == 2));
}

/// Item 29: a client that closes its first connection after 50 ms gets a second one on both
/// sides, and data flows over it.
#[test]
fn data_flows_over_the_reconnection() {
    let (mut net, s, c) = server_and(&test_config());
    net.join(c, T1, false, true);
    assert!(connected(&mut net, s, c));
    net.run_for(ms(50));
    let conn = *net.nodes[c].open.keys().next().expect("conn");
    net.close(c, conn);
    assert!(
        net.run_until(Duration::from_secs(2), |n| n.nodes[c].connections.len()
            == 2
            && n.nodes[s].connections.len() == 2
            && n.nodes[s].open.len() == 1
            && n.nodes[c].open.len() == 1)
    );
    let cc = *net.nodes[c].open.keys().next().expect("conn");
    let sc = *net.nodes[s].open.keys().next().expect("conn");
    net.send(c, cc, b"hello");
    net.send(s, sc, b"world");
    assert_eq!(net.nodes[s].data, vec![(sc, b"hello".to_vec())]);
    assert_eq!(net.nodes[c].data, vec![(cc, b"world".to_vec())]);
}

/// Item 30: two `max_peers: 1` clients against one server: `flush` resolves on both.
#[test]
fn flush_resolves_at_max_peers() {
    let cfg = Config {
        max_peers: 1,
        ..test_config()
    };
    let (mut net, s, c1) = server_and(&test_config());
    let _ = s;
    let c1b = net.add(3, cfg.clone(), None);
    let c2 = net.add(4, cfg, None);
    let _ = c1;
    net.join(c1b, T1, false, true);
    net.join(c2, T1, false, true);
    let w1 = net.flush(c1b);
    let w2 = net.flush(c2);
    assert_eq!(net.wait(c1b, w1, Duration::from_secs(5)), Some(true));
    assert_eq!(net.wait(c2, w2, Duration::from_secs(5)), Some(true));
}

/// Item 31: joining client-only, then client+server on the same topic announces it; another
/// swarm then connects.
#[test]
fn rejoining_as_server_announces_the_topic() {
    let mut net = Net::new();
    let a = net.add(1, test_config(), None);
    let b = net.add(2, test_config(), None);
    net.join(a, T1, false, true);
    assert_eq!(net.flush_wait(a), Some(true));
    net.join(a, T1, true, true);
    assert_eq!(net.flush_wait(a), Some(true));
    assert!(net.nodes[a].engine.status(&T1).expect("status").is_server);
    net.join(b, T1, false, true);
    assert_eq!(net.flush_wait(b), Some(true));
    assert_eq!(net.nodes[b].open.len(), 1);
}

/// Item 32: `topics()` lists the discoveries in join order.
#[test]
fn topics_are_listed_in_join_order() {
    let mut net = Net::new();
    let a = net.add(1, test_config(), None);
    let order = [[3u8; 32], [1u8; 32], [2u8; 32]];
    for t in order {
        net.join(a, t, true, true);
    }
    assert_eq!(net.nodes[a].engine.topics(), order.to_vec());
    for t in order {
        assert_eq!(net.nodes[a].engine.status(&t).expect("status").topic, t);
    }
}

/// Item 33: with a client session and a server session on one topic, destroying the client
/// session keeps the server side: each side gets exactly one connection.
#[test]
fn destroying_the_client_session_keeps_the_server_session() {
    let mut net = Net::new();
    let a = net.add(1, test_config(), None);
    let b = net.add(2, test_config(), None);
    let client_session = net.join(a, T1, false, true);
    net.join(a, T1, true, false);
    assert_eq!(net.flush_wait(a), Some(true));
    let w = net.with(a, |e, now| e.session_destroy(now, client_session));
    assert_eq!(net.wait(a, w, Duration::from_secs(1)), Some(true));
    let st = net.nodes[a].engine.status(&T1).expect("status");
    assert!(st.is_server && st.sessions == 1);
    net.join(b, T1, false, true);
    assert_eq!(net.flush_wait(b), Some(true));
    net.run_for(ms(500));
    assert_eq!(net.nodes[a].connections.len(), 1);
    assert_eq!(net.nodes[b].connections.len(), 1);
}

/// Item 34: destroying every session of two topics empties the topic map.
#[test]
fn destroying_all_sessions_empties_the_topics() {
    let mut net = Net::new();
    let a = net.add(1, test_config(), None);
    let s1 = net.join(a, T1, true, true);
    let s2 = net.join(a, T2, true, true);
    assert_eq!(net.flush_wait(a), Some(true));
    assert_eq!(net.nodes[a].engine.topics().len(), 2);
    for sid in [s1, s2] {
        let w = net.with(a, |e, now| e.session_destroy(now, sid));
        assert_eq!(net.wait(a, w, Duration::from_secs(1)), Some(true));
    }
    assert!(net.nodes[a].engine.topics().is_empty());
    assert!(net.nodes[a].engine.status(&T1).is_none());
}

/// Item 35: the server's PeerInfo of a client is dropped once the client is gone.
#[test]
fn server_side_peer_info_is_collected_after_close() {
    let (mut net, s, c) = server_and(&test_config());
    net.join(c, T1, false, true);
    assert!(connected(&mut net, s, c));
    assert_eq!(net.nodes[s].engine.peers().len(), 1);
    net.destroy(c);
    assert!(net.run_until(Duration::from_secs(2), |n| n.nodes[s]
        .engine
        .peers()
        .is_empty()));
}

/// Item 36: with instant back-offs, the client's PeerInfo of a destroyed server is collected
/// once the retries are exhausted.
#[test]
fn client_side_peer_info_is_collected_after_retries() {
    let cfg = Config {
        backoffs: Some([Duration::from_millis(1); 4]),
        jitter: Duration::ZERO,
        ..Config::default()
    };
    let (mut net, s, c) = server_and(&cfg);
    net.join(c, T1, false, true);
    assert_eq!(net.flush_wait(c), Some(true));
    assert!(connected(&mut net, s, c));
    assert_eq!(net.nodes[c].engine.peers().len(), 1);
    net.destroy(s);
    assert!(net.run_until(Duration::from_secs(10), |n| n.nodes[c]
        .engine
        .peers()
        .is_empty()));
    assert!(net.nodes[c].engine.stats().client_attempted >= 4);
}

/// Item 43: `connecting` is 0 before joining, an update shows it at 1, a later one at 0.
#[test]
fn updates_report_connecting() {
    let (mut net, s, c) = server_and(&test_config());
    assert_eq!(net.nodes[c].engine.connecting(), 0);
    net.join(c, T1, false, true);
    assert!(connected(&mut net, s, c));
    let ups = &net.nodes[c].updates;
    let one = ups
        .iter()
        .position(|u| u.0 == 1)
        .expect("an update with connecting 1");
    assert!(
        ups[one..].iter().any(|u| u.0 == 0),
        "then back to 0: {ups:?}"
    );
    let conn = *net.nodes[c].open.keys().next().expect("conn");
    let ks = net.key(s);
    net.nodes[c].engine.ban(&ks, true);
    net.close(c, conn);
    net.run_for(ms(100));
    assert!(net.nodes[c].open.is_empty() && net.nodes[s].open.is_empty());
    let _: fn(&mut Engine, std::time::Instant) -> u64 = Engine::flush;
}
