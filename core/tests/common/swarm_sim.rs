//! A deterministic in-memory network of swarm engines (`p2pswarm::swarm::engine::Engine`):
//! a virtual clock, a fake DHT (topic → announcing nodes), and connections that open after a
//! round trip through the "DHT" and close on both ends. Models what the swarm sees of
//! hyperdht: a dial to a listening, non-firewalling peer opens after 2 × latency; a dial to a
//! missing peer fails after `FAIL_AFTER`; a firewalled dial times out after `FIREWALL_TIMEOUT`
//! (the server never answers); an idle connection counts as established after 5 s
//! (keep-alives).

#![allow(dead_code, clippy::needless_pass_by_value)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use p2pswarm::crypto::{KeyPair, PublicKey};
use p2pswarm::swarm::engine::{
    Action, Config, ConnId, Engine, Event, PeerSnapshot, QueryKind, SessionId, WaitId,
};

pub const LATENCY: Duration = Duration::from_millis(10);
pub const FAIL_AFTER: Duration = Duration::from_millis(500);
pub const FIREWALL_TIMEOUT: Duration = Duration::from_secs(4);
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// A user firewall: `true` rejects.
pub type Firewall = Box<dyn Fn(&PublicKey) -> bool + Send>;

/// Test backoffs of the hyperswarm suite: [100, 200, 300, 400] ms, jitter 0.
pub fn test_config() -> Config {
    Config {
        backoffs: Some([
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(300),
            Duration::from_millis(400),
        ]),
        jitter: Duration::ZERO,
        ..Config::default()
    }
}

#[derive(Debug, Clone)]
enum Ev {
    ListenDone(usize),
    QueryResult {
        node: usize,
        id: u64,
        topic: [u8; 32],
        kind: QueryKind,
    },
    UnannounceDone(usize, WaitId),
    /// The dial reaches the server.
    DialArrives {
        from: usize,
        conn: ConnId,
        to: usize,
    },
    DialOpens {
        node: usize,
        conn: ConnId,
    },
    DialFails {
        node: usize,
        conn: ConnId,
    },
    RemoteClosed {
        node: usize,
        conn: ConnId,
    },
}

pub struct Node {
    pub engine: Engine,
    pub key: PublicKey,
    pub alive: bool,
    pub listening: bool,
    /// Open connections as the user sees them: conn → (remote key, opened at).
    pub open: BTreeMap<ConnId, (PublicKey, Instant)>,
    /// Every `Connection` event, in order.
    pub connections: Vec<(ConnId, PeerSnapshot)>,
    pub updates: Vec<(usize, usize)>,
    pub bans: Vec<PeerSnapshot>,
    pub resolved: HashMap<WaitId, bool>,
    pub firewall_calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Close every connection as soon as it opens (a user destroying its connections).
    pub destroy_on_open: bool,
    /// Ban (and destroy) the peer of every new connection.
    pub ban_on_open: bool,
    /// Data messages received per connection.
    pub data: Vec<(ConnId, Vec<u8>)>,
}

pub struct Net {
    pub now: Instant,
    pub nodes: Vec<Node>,
    announced: HashMap<[u8; 32], Vec<usize>>,
    cancelled: HashSet<(usize, u64)>,
    queue: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
    /// (node, conn) ↔ (node, conn).
    links: HashMap<(usize, ConnId), (usize, ConnId)>,
    /// Last data exchange per link end.
    established: HashSet<(usize, ConnId)>,
}

impl Default for Net {
    fn default() -> Self {
        Self::new()
    }
}

impl Net {
    pub fn new() -> Self {
        Self {
            now: Instant::now(),
            nodes: Vec::new(),
            announced: HashMap::new(),
            cancelled: HashSet::new(),
            queue: BTreeMap::new(),
            seq: 0,
            links: HashMap::new(),
            established: HashSet::new(),
        }
    }

    /// Adds a swarm with key from `seed`; `firewall(key) == true` rejects.
    pub fn add(&mut self, seed: u8, cfg: Config, firewall: Option<Firewall>) -> usize {
        let key = *KeyPair::from_seed(&[seed; 32]).public_key();
        let mut engine = Engine::new(key, cfg, u64::from(seed) * 7919 + 1);
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        if let Some(f) = firewall {
            let c = calls.clone();
            engine.set_firewall(Box::new(move |k| {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                f(k)
            }));
        }
        self.nodes.push(Node {
            engine,
            key,
            alive: true,
            listening: false,
            open: BTreeMap::new(),
            connections: Vec::new(),
            updates: Vec::new(),
            bans: Vec::new(),
            resolved: HashMap::new(),
            firewall_calls: calls,
            destroy_on_open: false,
            ban_on_open: false,
            data: Vec::new(),
        });
        self.nodes.len() - 1
    }

    pub fn key(&self, n: usize) -> PublicKey {
        self.nodes[n].key
    }

    fn at(&mut self, after: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.insert((self.now + after, self.seq), ev);
    }

    /// Runs `f` on node `n`'s engine, then processes its outputs.
    pub fn with<R>(&mut self, n: usize, f: impl FnOnce(&mut Engine, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[n].engine, now);
        self.process(n);
        r
    }

    pub fn join(&mut self, n: usize, topic: [u8; 32], server: bool, client: bool) -> SessionId {
        self.with(n, |e, now| e.join(now, topic, server, client, None))
            .expect("join")
            .0
    }

    pub fn flush(&mut self, n: usize) -> WaitId {
        self.with(n, Engine::flush)
    }

    /// Runs until `w` resolves on `n` (or `limit` passes); returns its result.
    pub fn wait(&mut self, n: usize, w: WaitId, limit: Duration) -> Option<bool> {
        let end = self.now + limit;
        loop {
            if let Some(r) = self.nodes[n].resolved.get(&w) {
                return Some(*r);
            }
            if !self.step(end) {
                return self.nodes[n].resolved.get(&w).copied();
            }
        }
    }

    /// Flushes `n` and waits for it.
    pub fn flush_wait(&mut self, n: usize) -> Option<bool> {
        let w = self.flush(n);
        self.wait(n, w, Duration::from_secs(60))
    }

    /// The user of node `n` closes connection `conn`.
    pub fn close(&mut self, n: usize, conn: ConnId) {
        self.nodes[n].open.remove(&conn);
        self.with(n, |e, now| e.handle_closed(now, conn));
        self.propagate_close(n, conn);
    }

    /// The user of node `n` writes `data` on `conn`: delivered to the other end.
    pub fn send(&mut self, n: usize, conn: ConnId, data: &[u8]) {
        if let Some(&(m, c)) = self.links.get(&(n, conn)) {
            self.established.insert((n, conn));
            self.established.insert((m, c));
            self.nodes[m].data.push((c, data.to_vec()));
        }
    }

    /// Node `n` is destroyed abruptly (process gone): its connections close on the far ends.
    pub fn kill(&mut self, n: usize) {
        self.nodes[n].alive = false;
        for list in self.announced.values_mut() {
            list.retain(|&x| x != n);
        }
        let conns: Vec<ConnId> = self.nodes[n].open.keys().copied().collect();
        for c in conns {
            self.nodes[n].open.remove(&c);
            self.propagate_close(n, c);
        }
        let ends: Vec<(usize, ConnId)> = self
            .links
            .keys()
            .filter(|(a, _)| *a == n)
            .copied()
            .collect();
        for e in ends {
            self.propagate_close(e.0, e.1);
        }
    }

    /// Graceful `destroy()` of node `n`'s swarm.
    pub fn destroy(&mut self, n: usize) {
        self.with(n, Engine::destroy);
        self.run_for(Duration::from_millis(100));
        self.kill(n);
    }

    fn propagate_close(&mut self, n: usize, conn: ConnId) {
        if let Some((m, c)) = self.links.remove(&(n, conn)) {
            self.links.remove(&(m, c));
            self.at(LATENCY, Ev::RemoteClosed { node: m, conn: c });
        }
    }

    fn process(&mut self, n: usize) {
        while let Some(a) = self.nodes[n].engine.poll_action() {
            self.run_action(n, a);
        }
        let mut newly_open = Vec::new();
        while let Some(e) = self.nodes[n].engine.poll_event() {
            let node = &mut self.nodes[n];
            match e {
                Event::Connection { conn, peer } => {
                    node.open.insert(conn, (peer.public_key, self.now));
                    node.connections.push((conn, peer));
                    newly_open.push(conn);
                }
                Event::Update => {
                    let u = (node.engine.connecting(), node.engine.connections());
                    node.updates.push(u);
                }
                Event::Ban { peer } => node.bans.push(peer),
                Event::Resolved { wait, ok } => {
                    node.resolved.insert(wait, ok);
                }
            }
        }
        for conn in newly_open {
            if self.nodes[n].ban_on_open {
                if let Some((key, _)) = self.nodes[n].open.get(&conn).copied() {
                    self.nodes[n].engine.ban(&key, true);
                }
                self.close(n, conn);
            } else if self.nodes[n].destroy_on_open {
                self.close(n, conn);
            }
        }
    }

    fn run_action(&mut self, n: usize, a: Action) {
        match a {
            Action::Listen => self.at(LATENCY, Ev::ListenDone(n)),
            Action::Query { id, topic, kind } => {
                if matches!(kind, QueryKind::Announce { .. }) {
                    let list = self.announced.entry(topic).or_default();
                    if !list.contains(&n) {
                        list.push(n);
                    }
                }
                self.at(
                    LATENCY * 3,
                    Ev::QueryResult {
                        node: n,
                        id,
                        topic,
                        kind,
                    },
                );
            }
            Action::CancelQuery { id } => {
                self.cancelled.insert((n, id));
            }
            Action::Unannounce { id, topic } => {
                if let Some(list) = self.announced.get_mut(&topic) {
                    list.retain(|&x| x != n);
                }
                self.at(LATENCY * 2, Ev::UnannounceDone(n, id));
            }
            Action::Dial { conn, key, .. } => {
                let to = self.nodes.iter().position(|x| x.key == key && x.alive);
                match to {
                    Some(to) if self.nodes[to].listening => {
                        self.at(LATENCY, Ev::DialArrives { from: n, conn, to });
                    }
                    _ => self.at(FAIL_AFTER, Ev::DialFails { node: n, conn }),
                }
            }
            Action::Close { conn, .. } => {
                self.nodes[n].open.remove(&conn);
                self.nodes[n].engine.handle_closed(self.now, conn);
                self.propagate_close(n, conn);
            }
            Action::KeepAlive { .. } => {}
        }
    }

    fn deliver(&mut self, ev: Ev) {
        match ev {
            Ev::ListenDone(n) => {
                if self.nodes[n].alive {
                    self.nodes[n].listening = true;
                    self.with(n, Engine::handle_listen_done);
                }
            }
            Ev::QueryResult {
                node,
                id,
                topic,
                kind,
            } => {
                if self.cancelled.contains(&(node, id)) || !self.nodes[node].alive {
                    return;
                }
                let client = !matches!(kind, QueryKind::Announce { client: false, .. });
                if client {
                    let found: Vec<PublicKey> = self
                        .announced
                        .get(&topic)
                        .map(|l| l.iter().map(|&x| self.nodes[x].key).collect())
                        .unwrap_or_default();
                    for key in found {
                        self.with(node, |e, now| e.handle_query_peer(now, id, key, Vec::new()));
                    }
                }
                if kind == QueryKind::LookupAndUnannounce {
                    if let Some(list) = self.announced.get_mut(&topic) {
                        list.retain(|&x| x != node);
                    }
                }
                self.with(node, |e, now| e.handle_query_done(now, id, true));
            }
            Ev::UnannounceDone(n, id) => {
                self.with(n, |e, now| e.handle_unannounce_done(now, id));
            }
            Ev::DialArrives { from, conn, to } => {
                if !self.nodes[to].alive || !self.nodes[to].listening {
                    self.at(FAIL_AFTER, Ev::DialFails { node: from, conn });
                    return;
                }
                let client_key = self.nodes[from].key;
                let rejected = self.with(to, |e, _| e.handle_firewall(&client_key));
                if rejected {
                    self.at(FIREWALL_TIMEOUT, Ev::DialFails { node: from, conn });
                    return;
                }
                let id = self.nodes[to].engine.new_conn_id();
                self.links.insert((to, id), (from, conn));
                self.links.insert((from, conn), (to, id));
                let now = self.now;
                let established = self.established.clone();
                let opened: HashMap<ConnId, Instant> = self.nodes[to]
                    .open
                    .iter()
                    .map(|(c, (_, t))| (*c, *t))
                    .collect();
                self.nodes[to]
                    .engine
                    .handle_incoming(now, id, client_key, &|c| {
                        established.contains(&(to, c))
                            || opened.get(&c).is_some_and(|t| now >= *t + KEEP_ALIVE)
                    });
                self.process(to);
                self.at(LATENCY, Ev::DialOpens { node: from, conn });
            }
            Ev::DialOpens { node, conn } => {
                if !self.nodes[node].alive {
                    return;
                }
                if !self.links.contains_key(&(node, conn)) {
                    // The server closed it before it opened here: it fails.
                    self.with(node, |e, now| e.handle_closed(now, conn));
                    return;
                }
                self.with(node, |e, now| e.handle_opened(now, conn));
            }
            Ev::DialFails { node, conn } => {
                if self.nodes[node].alive {
                    self.with(node, |e, now| e.handle_closed(now, conn));
                }
            }
            Ev::RemoteClosed { node, conn } => {
                if self.nodes[node].alive {
                    self.nodes[node].open.remove(&conn);
                    self.with(node, |e, now| e.handle_closed(now, conn));
                }
            }
        }
    }

    /// Advances to the next event or timer not later than `end`; `false` when nothing is left
    /// before `end` (the clock is then at `end`).
    pub fn step(&mut self, end: Instant) -> bool {
        let next_ev = self.queue.keys().next().map(|k| k.0);
        let next_timer = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.engine.poll_timeout())
            .min();
        let next = match (next_ev, next_timer) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => {
                let Some(t) = a.or(b) else {
                    self.now = self.now.max(end);
                    return false;
                };
                t
            }
        };
        if next > end {
            self.now = self.now.max(end);
            return false;
        }
        self.now = self.now.max(next);
        if next_ev == Some(next) {
            let key = *self.queue.keys().next().expect("event");
            let ev = self.queue.remove(&key).expect("event");
            self.deliver(ev);
        } else {
            for n in 0..self.nodes.len() {
                if self.nodes[n].alive
                    && self.nodes[n]
                        .engine
                        .poll_timeout()
                        .is_some_and(|t| t <= self.now)
                {
                    self.with(n, Engine::handle_timeout);
                }
            }
        }
        true
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step(end) {}
    }

    /// Runs until `cond` holds (checked after every step) or `limit` passes.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if cond(self) {
                return true;
            }
            if !self.step(end) {
                return cond(self);
            }
        }
    }

    /// Open connections of `n` to remote keys.
    pub fn open_to(&self, n: usize) -> Vec<PublicKey> {
        self.nodes[n].open.values().map(|(k, _)| *k).collect()
    }
}
