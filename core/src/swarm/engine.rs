//! The swarm's decisions as a sans-IO state machine (spec `hyperswarm.md` §4–§6): peer info,
//! the priority queue, the four retry bulk timers, capacity rules, flush accounting, duplicate
//! resolution, firewall and bans, peer garbage collection, and per-topic discovery (sessions,
//! refresh clock, modes, limit, unannounce on teardown).
//!
//! No sockets, clocks, tasks or OS randomness: inputs are method calls with `now`; outputs are
//! [`Action`]s (work for the driver: dial, query, close, …) and [`Event`]s (for the user or a
//! waiter), drained with [`Engine::poll_action`] / [`Engine::poll_event`]; [`Engine::poll_timeout`]
//! is the next deadline for [`Engine::handle_timeout`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use crate::crypto::PublicKey;
use crate::testing::Rng;

/// Identifies a connection (outgoing attempt or accepted incoming stream).
pub type ConnId = u64;
/// Identifies a DHT query started by a discovery.
pub type QueryId = u64;
/// Identifies something a caller awaits (flush, flushed, refresh, leave, unannounce).
pub type WaitId = u64;
/// Identifies a join session (what `join` returns).
pub type SessionId = u64;

/// Discovery refresh interval (10 min) and its jitter (0..2 min), with a 30 s grace for sleeps.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(600);
const REFRESH_JITTER_MS: u64 = 120_000;
const DELAY_GRACE: Duration = Duration::from_secs(30);
/// A connection that lived this long resets the peer's attempt counter.
pub const MIN_CONNECTION_TIME: Duration = Duration::from_secs(15);

const VERY_LOW: u8 = 0;
const LOW: u8 = 1;
const NORMAL: u8 = 2;
const HIGH: u8 = 3;
const VERY_HIGH: u8 = 4;

/// Engine options (the swarm's defaults are hyperswarm 4.17's).
#[derive(Debug, Clone)]
pub struct Config {
    /// Soft cap on connections (64).
    pub max_peers: usize,
    /// Cap on outgoing connections, attempts included (unbounded).
    pub max_client_connections: usize,
    /// Concurrent outgoing attempts (3).
    pub max_parallel: usize,
    /// Retry delays S, M, L, X; `None` = hyperswarm's randomised defaults.
    pub backoffs: Option<[Duration; 4]>,
    /// Extra random delay added once to each retry timer (500 ms).
    pub jitter: Duration,
    /// Whether a relay is configured (hole-punch failures then force relaying).
    pub relay_configured: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_peers: 64,
            max_client_connections: usize::MAX,
            max_parallel: 3,
            backoffs: None,
            jitter: Duration::from_millis(500),
            relay_configured: false,
        }
    }
}

/// Kinds of DHT query a discovery asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Announce (server mode); `clear` on the first announce of a discovery.
    Announce {
        /// Remove our stale records first.
        clear: bool,
        /// Also report the peers found (client mode too).
        client: bool,
    },
    /// Look up and remove our earlier announcement (was server, now client only).
    LookupAndUnannounce,
    /// Plain lookup.
    Lookup,
}

/// Why the engine closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Lost duplicate resolution ("Duplicate connection").
    Duplicate,
    /// The swarm is destroyed ("Swarm has been destroyed").
    Destroyed,
    /// The swarm is suspending.
    Suspended,
}

/// Work for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start listening on the swarm's key; answer with [`Engine::handle_listen_done`].
    Listen,
    /// Dial a peer; answer with [`Engine::handle_opened`] or [`Engine::handle_closed`].
    Dial {
        /// The attempt.
        conn: ConnId,
        /// Remote key.
        key: PublicKey,
        /// Relay addresses from the peer's record.
        relay_addresses: Vec<SocketAddrV4>,
        /// Whether to force a relayed connection.
        force_relay: bool,
    },
    /// Close a connection (or abort an attempt); the driver answers with `handle_closed`.
    Close {
        /// Which.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// Probe a connection with a keep-alive.
    KeepAlive {
        /// Which.
        conn: ConnId,
    },
    /// Run a discovery query; report peers with [`Engine::handle_query_peer`] and the end
    /// with [`Engine::handle_query_done`].
    Query {
        /// The query.
        id: QueryId,
        /// Topic.
        topic: [u8; 32],
        /// What to run.
        kind: QueryKind,
    },
    /// Abort a query (its late results are ignored).
    CancelQuery {
        /// Which.
        id: QueryId,
    },
    /// Remove our announcement of `topic`; answer with [`Engine::handle_unannounce_done`].
    Unannounce {
        /// Completion id.
        id: WaitId,
        /// Topic.
        topic: [u8; 32],
    },
}

/// What the engine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A connection became usable (client: opened; server: accepted).
    Connection {
        /// Which.
        conn: ConnId,
        /// The peer.
        peer: PeerSnapshot,
    },
    /// Counts changed (hyperswarm's `'update'`).
    Update,
    /// The firewall banned a peer ("Peer is firewalled").
    Ban {
        /// The peer.
        peer: PeerSnapshot,
    },
    /// An awaited operation finished.
    Resolved {
        /// Which.
        wait: WaitId,
        /// Its result.
        ok: bool,
    },
}

/// A copy of what the engine knows about a peer (hyperswarm's `PeerInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSnapshot {
    /// Remote key.
    pub public_key: PublicKey,
    /// Relay addresses from its latest record.
    pub relay_addresses: Vec<SocketAddrV4>,
    /// Topics on which we found it as a client, in order.
    pub topics: Vec<[u8; 32]>,
    /// Priority ≥ normal.
    pub prioritized: bool,
    /// Banned.
    pub banned: bool,
    /// Added by `join_peer`.
    pub explicit: bool,
    /// Our last connection to it was outgoing.
    pub client: bool,
    /// Ever connected to it as a client.
    pub proven: bool,
    /// Whether it is retried after a disconnect.
    pub reconnecting: bool,
    /// Failed or short-lived attempts in a row.
    pub attempts: u32,
    /// Queue priority 0..=4.
    pub priority: u8,
    /// In the connection queue.
    pub queued: bool,
    /// Waiting in a retry timer.
    pub waiting: bool,
}

/// Counters (hyperswarm's `swarm.stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `'update'` emissions.
    pub updates: u64,
    /// Outgoing connections opened.
    pub client_opened: u64,
    /// Outgoing connections/attempts closed.
    pub client_closed: u64,
    /// Dials started.
    pub client_attempted: u64,
    /// Incoming connections accepted.
    pub server_opened: u64,
    /// Incoming connections closed.
    pub server_closed: u64,
    /// Bans by the firewall.
    pub banned_peers: u64,
}

/// A topic's discovery state as callers see it (hyperswarm's `swarm.status(topic)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryStatus {
    /// Topic.
    pub topic: [u8; 32],
    /// Some session looks the topic up.
    pub is_client: bool,
    /// Some session announces the topic.
    pub is_server: bool,
    /// Live sessions.
    pub sessions: usize,
    /// Destroyed.
    pub destroyed: bool,
    /// Suspended.
    pub suspended: bool,
    /// A query is in flight.
    pub refreshing: bool,
    /// Next scheduled refresh.
    pub next_refresh: Option<Instant>,
}

/// Errors of the discovery calls (hyperswarm's thrown messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwarmError {
    /// `join`/`listen` after `destroy`.
    #[error("Swarm destroyed")]
    Destroyed,
    /// Refresh of a destroyed session/discovery.
    #[error("PeerDiscovery is destroyed")]
    DiscoveryDestroyed,
    /// `refresh` with neither role.
    #[error("Cannot refresh with neither client nor server option")]
    NoRole,
    /// Unknown session id.
    #[error("unknown discovery session")]
    UnknownSession,
}

#[derive(Debug, Clone)]
struct Peer {
    key: PublicKey,
    relay_addresses: Vec<SocketAddrV4>,
    reconnecting: bool,
    proven: bool,
    connected_time: Option<Instant>,
    disconnected_time: Option<Instant>,
    banned: bool,
    explicit: bool,
    waiting: bool,
    force_relaying: bool,
    queued: bool,
    client: bool,
    topics: Vec<[u8; 32]>,
    attempts: u32,
    priority: u8,
    flush_tick: u64,
}

impl Peer {
    fn new(key: PublicKey, relay_addresses: Vec<SocketAddrV4>) -> Self {
        Self {
            key,
            relay_addresses,
            reconnecting: true,
            proven: false,
            connected_time: None,
            disconnected_time: None,
            banned: false,
            explicit: false,
            waiting: false,
            force_relaying: false,
            queued: false,
            client: false,
            topics: Vec::new(),
            attempts: 0,
            priority: NORMAL,
            flush_tick: 0,
        }
    }

    fn snapshot(&self) -> PeerSnapshot {
        PeerSnapshot {
            public_key: self.key,
            relay_addresses: self.relay_addresses.clone(),
            topics: self.topics.clone(),
            prioritized: self.priority >= NORMAL,
            banned: self.banned,
            explicit: self.explicit,
            client: self.client,
            proven: self.proven,
            reconnecting: self.reconnecting,
            attempts: self.attempts,
            priority: self.priority,
            queued: self.queued,
            waiting: self.waiting,
        }
    }

    fn get_priority(&self) -> u8 {
        match self.attempts {
            0 => NORMAL,
            1 => VERY_HIGH,
            2 => HIGH,
            3 => LOW,
            _ => VERY_LOW,
        }
    }

    fn connected(&mut self, now: Instant) {
        self.proven = true;
        self.connected_time = Some(now);
    }

    fn disconnected(&mut self, now: Instant) {
        self.disconnected_time = Some(now);
        if let Some(t) = self.connected_time.take() {
            if now.saturating_duration_since(t) >= MIN_CONNECTION_TIME {
                self.attempts = 0; // fast retry
            }
        }
        self.attempts += 1;
    }

    fn reset(&mut self) {
        self.client = false;
        self.proven = false;
        self.attempts = 0;
    }

    fn update_priority(&mut self) -> bool {
        if self.explicit && self.attempts > 3 {
            self.attempts = 3;
        }
        if self.banned || self.queued || self.attempts > 3 {
            return false;
        }
        self.priority = self.get_priority();
        true
    }

    fn should_gc(&self) -> bool {
        !(self.banned || self.queued || self.explicit || self.waiting)
    }
}

/// Hyperswarm's bulk timer: ticks every `floor(0.66·T)`; an item added is released on the
/// second tick after it was added (so after 0.66·T to 1.32·T), in one batch with everything
/// added during the same tick period.
#[derive(Debug)]
pub struct BulkTimer {
    period: Duration,
    next_tick: Option<Instant>,
    next: Vec<PublicKey>,
    pending: Vec<PublicKey>,
}

impl BulkTimer {
    /// A timer for delay `time`.
    pub fn new(time: Duration) -> Self {
        let period = Duration::from_millis((time.as_millis() as u64 * 66 / 100).max(1));
        Self {
            period,
            next_tick: None,
            next: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Adds an item at `now` (the first add starts the ticking).
    pub fn add(&mut self, now: Instant, key: PublicKey) {
        match self.next_tick {
            None => self.next_tick = Some(now + self.period),
            Some(t) if t <= now && self.next.is_empty() && self.pending.is_empty() => {
                // Idle ticks passed unobserved: keep the interval's phase.
                let behind = now.duration_since(t).as_nanos() / self.period.as_nanos().max(1);
                self.next_tick = Some(t + self.period * (behind as u32 + 1));
            }
            Some(_) => {}
        }
        self.pending.push(key);
    }

    /// The next tick that has work (`None` when idle).
    pub fn deadline(&self) -> Option<Instant> {
        if self.next.is_empty() && self.pending.is_empty() {
            None
        } else {
            self.next_tick
        }
    }

    /// Runs the ticks due at `now`; returns the released items.
    pub fn tick(&mut self, now: Instant) -> Vec<PublicKey> {
        let mut out = Vec::new();
        while let Some(t) = self.next_tick {
            if t > now || (self.next.is_empty() && self.pending.is_empty()) {
                break;
            }
            out.append(&mut self.next);
            self.next = std::mem::take(&mut self.pending);
            self.next_tick = Some(t + self.period);
        }
        out
    }
}

#[derive(Debug)]
struct RetryTimer {
    backoffs: [Duration; 4],
    timers: [BulkTimer; 4],
}

impl RetryTimer {
    fn new(backoffs: [Duration; 4], jitter: Duration, rng: &mut Rng) -> Self {
        let mut t = |d: Duration| {
            let j = (jitter.as_millis() as f64 * rng.unit()).round() as u64;
            BulkTimer::new(d + Duration::from_millis(j))
        };
        let timers = [
            t(backoffs[0]),
            t(backoffs[1]),
            t(backoffs[2]),
            t(backoffs[3]),
        ];
        Self { backoffs, timers }
    }

    fn select(p: &Peer) -> Option<usize> {
        if p.banned || !p.reconnecting {
            return None;
        }
        if p.attempts > 3 {
            return p.explicit.then_some(3);
        }
        Some(match (p.attempts, p.proven) {
            (0, _) | (1, true) => 0,
            (2, true) | (1, false) => 1,
            _ => 2,
        })
    }

    fn add(&mut self, now: Instant, p: &Peer) -> bool {
        match Self::select(p) {
            Some(i) => {
                self.timers[i].add(now, p.key);
                true
            }
            None => false,
        }
    }
}

/// Hyperswarm's shuffled priority queue: highest bucket first, random element within it.
#[derive(Debug, Default)]
struct Queue {
    buckets: [Vec<PublicKey>; 5],
}

impl Queue {
    fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    fn add(&mut self, key: PublicKey, priority: u8) {
        self.buckets[usize::from(priority.min(4))].push(key);
    }

    fn shift(&mut self, rng: &mut Rng) -> Option<PublicKey> {
        let b = self.buckets.iter_mut().rev().find(|b| !b.is_empty())?;
        let i = (rng.next_u64() % b.len() as u64) as usize;
        Some(b.swap_remove(i))
    }
}

#[derive(Debug)]
struct Conn {
    key: PublicKey,
    client: bool,
    opened: bool,
    queued: bool,
}

#[derive(Debug)]
struct PendingFlush {
    wait: WaitId,
    /// Discoveries (by refresh) and a listen still to finish before counting starts.
    blockers: usize,
    missing: usize,
    tick: u64,
    counting: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a torn-down predecessor's unannounce.
    Predecessor,
    /// Waiting for listen.
    Listen,
    /// Query in flight.
    Query(QueryId),
}

#[derive(Debug)]
struct Run {
    clock: u64,
    phase: Phase,
    announcing: bool,
    clear: bool,
    remaining: Option<usize>,
    waiters: Vec<WaitId>,
    flush_waiters: Vec<WaitId>,
}

#[derive(Debug)]
struct Session {
    id: SessionId,
    client: bool,
    server: bool,
}

#[derive(Debug)]
struct Discovery {
    topic: [u8; 32],
    sessions: Vec<Session>,
    client_sessions: usize,
    server_sessions: usize,
    is_client: bool,
    is_server: bool,
    limit: Option<usize>,
    destroyed: bool,
    suspended: bool,
    first_announce: bool,
    needs_unannounce: bool,
    clock: u64,
    run: Option<Run>,
    /// (deadline, started, delay) of the next refresh.
    timer: Option<(Instant, Instant, Duration)>,
    /// Unannounce of a predecessor with the same topic still running.
    predecessor: Option<WaitId>,
}

impl Discovery {
    fn active(&self) -> bool {
        !self.destroyed && !self.suspended
    }
}

#[derive(Debug)]
enum ListenState {
    Idle,
    Pending,
    Done,
}

/// The swarm state machine.
pub struct Engine {
    cfg: Config,
    local: PublicKey,
    rng: Rng,
    firewall: Box<dyn FnMut(&PublicKey) -> bool + Send>,
    peers: HashMap<PublicKey, Peer>,
    explicit: Vec<PublicKey>,
    conns: HashMap<ConnId, Conn>,
    by_key: HashMap<PublicKey, ConnId>,
    open: usize,
    connecting: usize,
    client_connections: usize,
    server_connections: usize,
    queue: Queue,
    timer: RetryTimer,
    flushes: Vec<PendingFlush>,
    flush_tick: u64,
    discoveries: HashMap<[u8; 32], Discovery>,
    topic_order: Vec<[u8; 32]>,
    /// Unannounce id → (topic, leave waiters, successor waiting on it).
    teardowns: HashMap<WaitId, ([u8; 32], Vec<WaitId>)>,
    sessions: HashMap<SessionId, [u8; 32]>,
    /// Existing conn being closed → (new incoming conn waiting for it, its key).
    swaps: HashMap<ConnId, (ConnId, PublicKey)>,
    listen: ListenState,
    listen_flushes: Vec<WaitId>,
    listen_flush_waiters: Vec<WaitId>,
    next_id: u64,
    destroyed: bool,
    suspended: bool,
    draining: bool,
    stats: Stats,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("local", &self.local)
            .field("peers", &self.peers.len())
            .field("conns", &self.conns.len())
            .field("connecting", &self.connecting)
            .finish_non_exhaustive()
    }
}

/// Hyperswarm's default backoffs: S 1000+U(0,500), M 5000+U(0,1000), L 15000+U(0,2000),
/// X 600000+U(0,120000) ms.
pub fn default_backoffs(rng: &mut Rng) -> [Duration; 4] {
    let mut r =
        |base: u64, spread: f64| Duration::from_millis(base + (spread * rng.unit()).round() as u64);
    [
        r(1000, 500.0),
        r(5000, 1000.0),
        r(15000, 2000.0),
        r(600_000, 120_000.0),
    ]
}

impl Engine {
    /// A new engine for the swarm whose key is `local`. `seed` drives every random choice.
    pub fn new(local: PublicKey, mut cfg: Config, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let backoffs = cfg.backoffs.unwrap_or_else(|| default_backoffs(&mut rng));
        cfg.backoffs = Some(backoffs);
        let timer = RetryTimer::new(backoffs, cfg.jitter, &mut rng);
        Self {
            cfg,
            local,
            rng,
            firewall: Box::new(|_| false),
            peers: HashMap::new(),
            explicit: Vec::new(),
            conns: HashMap::new(),
            by_key: HashMap::new(),
            open: 0,
            connecting: 0,
            client_connections: 0,
            server_connections: 0,
            queue: Queue::default(),
            timer,
            flushes: Vec::new(),
            flush_tick: 0,
            discoveries: HashMap::new(),
            topic_order: Vec::new(),
            teardowns: HashMap::new(),
            sessions: HashMap::new(),
            swaps: HashMap::new(),
            listen: ListenState::Idle,
            listen_flushes: Vec::new(),
            listen_flush_waiters: Vec::new(),
            next_id: 0,
            destroyed: false,
            suspended: false,
            draining: false,
            stats: Stats::default(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Sets the user firewall: `true` rejects (and bans) a key. It runs inside engine calls
    /// and must not call back into the swarm.
    pub fn set_firewall(&mut self, f: Box<dyn FnMut(&PublicKey) -> bool + Send>) {
        self.firewall = f;
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A fresh connection id (for an incoming stream before [`Engine::handle_incoming`]).
    pub fn new_conn_id(&mut self) -> ConnId {
        self.id()
    }

    // ----- outputs -------------------------------------------------------------------------

    /// Next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Earliest deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timers = self.timer.timers.iter().filter_map(BulkTimer::deadline);
        let refreshes = self
            .discoveries
            .values()
            .filter_map(|d| d.timer.map(|t| t.0));
        timers.chain(refreshes).min()
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut released = Vec::new();
        for t in &mut self.timer.timers {
            let batch = t.tick(now);
            if !batch.is_empty() {
                released.push(batch);
            }
        }
        for batch in released {
            self.requeue(now, &batch);
        }
        let due: Vec<[u8; 32]> = self
            .discoveries
            .values()
            .filter(|d| d.timer.is_some_and(|t| t.0 <= now))
            .map(|d| d.topic)
            .collect();
        for topic in due {
            let Some(d) = self.discoveries.get_mut(&topic) else {
                continue;
            };
            let Some((deadline, started, delay)) = d.timer.take() else {
                continue;
            };
            let _ = deadline;
            if now.saturating_duration_since(started) > delay + DELAY_GRACE {
                self.refresh_later(now, &topic, true);
            } else {
                let _ = self.discovery_refresh(now, &topic, None);
            }
        }
    }

    // ----- state ---------------------------------------------------------------------------

    /// Outgoing attempts in progress.
    pub fn connecting(&self) -> usize {
        self.connecting
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.open
    }

    /// Connections including attempts.
    pub fn all_connections(&self) -> usize {
        self.by_key.len()
    }

    /// Peers in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Known peers.
    pub fn peers(&self) -> Vec<PeerSnapshot> {
        self.peers.values().map(Peer::snapshot).collect()
    }

    /// One peer.
    pub fn peer(&self, key: &PublicKey) -> Option<PeerSnapshot> {
        self.peers.get(key).map(Peer::snapshot)
    }

    /// Explicit peers in `join_peer` order.
    pub fn explicit_peers(&self) -> Vec<PublicKey> {
        self.explicit.clone()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Destroyed.
    pub fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    /// Suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    /// The key of a connection.
    pub fn conn_key(&self, conn: ConnId) -> Option<PublicKey> {
        self.conns.get(&conn).map(|c| c.key)
    }

    /// The current connection (or attempt) to `key`.
    pub fn conn_of(&self, key: &PublicKey) -> Option<ConnId> {
        self.by_key.get(key).copied()
    }

    /// Discovery of `topic`.
    pub fn status(&self, topic: &[u8; 32]) -> Option<DiscoveryStatus> {
        self.discoveries.get(topic).map(|d| DiscoveryStatus {
            topic: d.topic,
            is_client: d.is_client,
            is_server: d.is_server,
            sessions: d.sessions.len(),
            destroyed: d.destroyed,
            suspended: d.suspended,
            refreshing: d.run.is_some(),
            next_refresh: d.timer.map(|t| t.0),
        })
    }

    /// Joined topics in join order.
    pub fn topics(&self) -> Vec<[u8; 32]> {
        self.topic_order.clone()
    }

    /// The backoffs in use.
    pub fn backoffs(&self) -> [Duration; 4] {
        self.timer.backoffs
    }

    // ----- helpers -------------------------------------------------------------------------

    fn emit(&mut self, e: Event) {
        if e == Event::Update {
            self.stats.updates += 1;
        }
        self.events.push_back(e);
    }

    fn resolve(&mut self, wait: WaitId, ok: bool) {
        self.events.push_back(Event::Resolved { wait, ok });
    }

    fn within_max_peers(&self) -> bool {
        let e = self.explicit.len();
        let factor = match e {
            0 => 1,
            1 => 2,
            2 | 3 => 3,
            _ => 4,
        };
        factor * self.by_key.len() < self.cfg.max_peers
    }

    fn should_connect_explicit(&self) -> bool {
        !self.destroyed && !self.suspended && self.connecting < self.cfg.max_parallel
    }

    fn should_connect(&self) -> bool {
        self.should_connect_explicit()
            && self.within_max_peers()
            && self.client_connections < self.cfg.max_client_connections
    }

    fn upsert_peer(&mut self, key: PublicKey, relays: Vec<SocketAddrV4>) -> bool {
        if key == self.local {
            return false;
        }
        self.peers
            .entry(key)
            .and_modify(|p| p.relay_addresses.clone_from(&relays))
            .or_insert_with(|| Peer::new(key, relays));
        true
    }

    fn enqueue(&mut self, now: Instant, key: PublicKey) {
        let tick = self.flush_tick;
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if p.queued {
            return;
        }
        p.queued = true;
        p.flush_tick = tick;
        let prio = p.priority;
        self.queue.add(key, prio);
        self.attempt_client_connections(now);
    }

    fn requeue(&mut self, now: Instant, batch: &[PublicKey]) {
        if self.suspended {
            return;
        }
        let tick = self.flush_tick;
        for key in batch {
            let connected = self.by_key.contains_key(key);
            let Some(p) = self.peers.get_mut(key) else {
                continue;
            };
            p.waiting = false;
            if !p.update_priority() || connected || p.queued {
                continue;
            }
            p.queued = true;
            p.flush_tick = tick;
            let prio = p.priority;
            self.queue.add(*key, prio);
        }
        self.attempt_client_connections(now);
    }

    fn flush_maybe(&mut self, key: &PublicKey) {
        let Some(tick) = self.peers.get(key).map(|p| p.flush_tick) else {
            return;
        };
        let mut done = Vec::new();
        self.flushes.retain_mut(|f| {
            if !f.counting || tick > f.tick {
                return true;
            }
            f.missing = f.missing.saturating_sub(1);
            if f.missing > 0 {
                return true;
            }
            done.push(f.wait);
            false
        });
        for w in done {
            self.resolve(w, true);
        }
    }

    fn flush_all_maybe(&mut self) -> bool {
        if self.connecting > 0
            || (self.within_max_peers()
                && self.client_connections < self.cfg.max_client_connections)
        {
            return false;
        }
        let counting: Vec<WaitId> = self
            .flushes
            .iter()
            .filter(|f| f.counting)
            .map(|f| f.wait)
            .collect();
        self.flushes.retain(|f| !f.counting);
        for w in counting.into_iter().rev() {
            self.resolve(w, true);
        }
        true
    }

    fn attempt_client_connections(&mut self, now: Instant) {
        if self.draining || self.suspended {
            return;
        }
        self.draining = true;
        let explicit = self.explicit.clone();
        for key in explicit {
            if !self.should_connect_explicit() {
                break;
            }
            let Some(p) = self.peers.get(&key) else {
                continue;
            };
            let recent = p.disconnected_time.is_some_and(|t| {
                now.saturating_duration_since(t) < Duration::from_secs(u64::from(p.attempts))
            });
            if p.attempts >= 5 || recent {
                continue;
            }
            self.connect(now, key, false);
        }
        while self.queue.len() > 0 && self.should_connect() {
            let Some(key) = self.queue.shift(&mut self.rng) else {
                break;
            };
            if let Some(p) = self.peers.get_mut(&key) {
                p.queued = false;
            }
            self.connect(now, key, true);
        }
        self.draining = false;
        if self.connecting == 0 {
            self.flush_all_maybe();
        }
    }

    fn connect(&mut self, _now: Instant, key: PublicKey, queued: bool) {
        let skip = self.peers.get(&key).is_none_or(|p| p.banned) || self.by_key.contains_key(&key);
        if skip || self.handle_firewall(&key) {
            if queued {
                self.flush_maybe(&key);
            }
            return;
        }
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        let (relay_addresses, force_relay) = (p.relay_addresses.clone(), p.force_relaying);
        let conn = self.id();
        self.actions.push_back(Action::Dial {
            conn,
            key,
            relay_addresses,
            force_relay,
        });
        self.conns.insert(
            conn,
            Conn {
                key,
                client: true,
                opened: false,
                queued,
            },
        );
        self.by_key.insert(key, conn);
        self.stats.client_attempted += 1;
        self.connecting += 1;
        self.client_connections += 1;
        self.emit(Event::Update);
    }

    fn connect_done(&mut self, now: Instant) {
        self.connecting = self.connecting.saturating_sub(1);
        if self.connecting < self.cfg.max_parallel {
            self.attempt_client_connections(now);
        }
        if self.connecting == 0 {
            self.flush_all_maybe();
        }
    }

    fn should_requeue(&self, p: &Peer) -> bool {
        if self.suspended {
            return false;
        }
        if p.explicit {
            return true;
        }
        !self.destroyed && p.topics.iter().any(|t| self.discoveries.contains_key(t))
    }

    fn maybe_delete_peer(&mut self, key: &PublicKey) {
        let gc = self.peers.get(key).is_some_and(Peer::should_gc);
        if gc && !self.by_key.contains_key(key) {
            self.peers.remove(key);
        }
    }

    fn ban_peer(&mut self, key: &PublicKey) {
        if let Some(p) = self.peers.get_mut(key) {
            p.banned = true;
            let peer = p.snapshot();
            self.stats.banned_peers += 1;
            self.emit(Event::Ban { peer });
        }
    }

    // ----- inputs: peers and connections ---------------------------------------------------

    /// The swarm firewall (also used for incoming handshakes): own key, banned peer (the user
    /// firewall is then not called), or the user firewall says reject (the peer is banned).
    pub fn handle_firewall(&mut self, key: &PublicKey) -> bool {
        if *key == self.local {
            return true;
        }
        if self.peers.get(key).is_some_and(|p| p.banned) {
            return true;
        }
        if (self.firewall)(key) {
            self.upsert_peer(*key, Vec::new());
            self.ban_peer(key);
            return true;
        }
        false
    }

    /// A lookup found `key` under `topic` (normally via [`Engine::handle_query_peer`]).
    pub fn handle_peer(
        &mut self,
        now: Instant,
        topic: [u8; 32],
        key: PublicKey,
        relays: Vec<SocketAddrV4>,
    ) {
        if !self.upsert_peer(key, relays) {
            return;
        }
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if !p.topics.contains(&topic) {
            p.topics.push(topic);
        }
        if self.by_key.contains_key(&key) {
            return;
        }
        if p.priority < NORMAL || !p.client {
            p.reset();
        }
        if p.update_priority() {
            self.enqueue(now, key);
        }
    }

    /// An outgoing attempt failed with a hole-punching error (relaying may be forced next).
    pub fn handle_attempt_error(&mut self, conn: ConnId, holepunch_failure: bool) {
        if !(self.cfg.relay_configured && holepunch_failure) {
            return;
        }
        if let Some(c) = self.conns.get(&conn) {
            if let Some(p) = self.peers.get_mut(&c.key) {
                p.force_relaying = true;
                p.attempts = 0;
            }
        }
    }

    /// An outgoing attempt opened.
    pub fn handle_opened(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.opened || !c.client {
            return;
        }
        c.opened = true;
        let (key, queued) = (c.key, c.queued);
        self.stats.client_opened += 1;
        self.connect_done(now);
        self.open += 1;
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        p.connected(now);
        p.client = true;
        let peer = p.snapshot();
        self.emit(Event::Connection { conn, peer });
        if queued {
            self.flush_maybe(&key);
        }
        self.emit(Event::Update);
    }

    /// A connection or attempt closed (unknown ids are ignored).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        // An incoming connection waiting for a duplicate to go away closed first.
        self.swaps.retain(|_, (new, _)| *new != conn);
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if self.by_key.get(&c.key) == Some(&conn) {
            self.by_key.remove(&c.key);
        }
        if c.opened {
            self.open -= 1;
        }
        if c.client {
            if !c.opened {
                self.connect_done(now);
            }
            self.stats.client_closed += 1;
            self.client_connections = self.client_connections.saturating_sub(1);
            let requeue = self
                .peers
                .get(&c.key)
                .is_some_and(|p| self.should_requeue(p));
            if let Some(p) = self.peers.get_mut(&c.key) {
                p.disconnected(now);
                p.waiting = requeue && self.timer.add(now, p);
            }
            self.maybe_delete_peer(&c.key);
            if !c.opened && c.queued {
                self.flush_maybe(&c.key);
            }
        } else {
            self.server_connections = self.server_connections.saturating_sub(1);
            self.stats.server_closed += 1;
            self.maybe_delete_peer(&c.key);
        }
        if let Some((new, key)) = self.swaps.remove(&conn) {
            self.handle_incoming(now, new, key, &|_| false);
        }
        self.attempt_client_connections(now);
        self.emit(Event::Update);
    }

    /// An incoming connection `conn` (id from [`Engine::new_conn_id`]) from `key`.
    /// `established(existing)` says whether an existing connection has both read and written
    /// frames (then the newer connection wins). Emits `Connection`, or closes one of the two.
    pub fn handle_incoming(
        &mut self,
        now: Instant,
        conn: ConnId,
        key: PublicKey,
        established: &dyn Fn(ConnId) -> bool,
    ) {
        if self.destroyed || self.suspended {
            self.actions.push_back(Action::Close {
                conn,
                reason: CloseReason::Destroyed,
            });
            return;
        }
        if let Some(&existing) = self.by_key.get(&key) {
            let outdated = established(existing);
            let expected_initiator = self.local.0 > key.0;
            // The new connection is incoming: we are not its initiator.
            let keep_new = outdated || !expected_initiator;
            if keep_new {
                self.actions.push_back(Action::Close {
                    conn: existing,
                    reason: CloseReason::Duplicate,
                });
                self.swaps.insert(existing, (conn, key));
            } else {
                self.actions.push_back(Action::KeepAlive { conn: existing });
                self.actions.push_back(Action::Close {
                    conn,
                    reason: CloseReason::Duplicate,
                });
            }
            return;
        }
        self.stats.server_opened += 1;
        if !self.upsert_peer(key, Vec::new()) {
            self.actions.push_back(Action::Close {
                conn,
                reason: CloseReason::Duplicate,
            });
            return;
        }
        self.conns.insert(
            conn,
            Conn {
                key,
                client: false,
                opened: true,
                queued: false,
            },
        );
        self.by_key.insert(key, conn);
        self.open += 1;
        self.server_connections += 1;
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        p.client = false;
        let peer = p.snapshot();
        let _ = now;
        self.emit(Event::Connection { conn, peer });
        self.emit(Event::Update);
    }

    /// `join_peer`: keep a connection to `key`.
    pub fn join_peer(&mut self, now: Instant, key: PublicKey) {
        if !self.upsert_peer(key, Vec::new()) {
            return;
        }
        if !self.explicit.contains(&key) {
            self.explicit.push(key);
            if let Some(p) = self.peers.get_mut(&key) {
                p.explicit = true;
            }
        }
        if self.by_key.contains_key(&key) {
            return;
        }
        if self.peers.get_mut(&key).is_some_and(Peer::update_priority) {
            self.enqueue(now, key);
        }
    }

    /// `leave_peer`: stop keeping a connection (an existing one stays).
    pub fn leave_peer(&mut self, key: &PublicKey) {
        let Some(p) = self.peers.get_mut(key) else {
            return;
        };
        p.explicit = false;
        self.explicit.retain(|k| k != key);
        self.maybe_delete_peer(key);
    }

    /// `peerInfo.ban(banned)`: no event, existing connections stay.
    pub fn ban(&mut self, key: &PublicKey, banned: bool) {
        if let Some(p) = self.peers.get_mut(key) {
            p.banned = banned;
        } else if banned && self.upsert_peer(*key, Vec::new()) {
            if let Some(p) = self.peers.get_mut(key) {
                p.banned = true;
            }
        }
    }

    /// `peerInfo.reconnect(val)`: whether the peer is retried after it disconnects.
    pub fn reconnect(&mut self, key: &PublicKey, val: bool) {
        if let Some(p) = self.peers.get_mut(key) {
            p.reconnecting = val;
        }
    }

    /// The network changed: probe every connection and refresh every discovery.
    pub fn handle_network_change(&mut self, now: Instant) {
        if self.suspended {
            return;
        }
        let conns: Vec<ConnId> = self.by_key.values().copied().collect();
        for conn in conns {
            self.actions.push_back(Action::KeepAlive { conn });
        }
        for topic in self.topic_order.clone() {
            let _ = self.discovery_refresh(now, &topic, None);
        }
    }

    // ----- flush / listen ------------------------------------------------------------------

    /// `flush()`: resolves (via [`Event::Resolved`]) once every discovery finished its
    /// in-flight query and every peer queued so far was tried (or nothing more can connect).
    pub fn flush(&mut self, now: Instant) -> WaitId {
        let wait = self.id();
        if self.destroyed {
            self.resolve(wait, false);
            return wait;
        }
        let mut blockers = 0;
        let topics = self.topic_order.clone();
        for t in topics {
            if let Some(run) = self.discoveries.get_mut(&t).and_then(|d| d.run.as_mut()) {
                run.flush_waiters.push(wait);
                blockers += 1;
            }
        }
        if matches!(self.listen, ListenState::Pending) {
            self.listen_flushes.push(wait);
            blockers += 1;
        }
        self.flushes.push(PendingFlush {
            wait,
            blockers,
            missing: 0,
            tick: 0,
            counting: false,
        });
        if blockers == 0 {
            self.flush_start_counting(now, wait);
        }
        wait
    }

    fn flush_unblock(&mut self, now: Instant, wait: WaitId) {
        let Some(f) = self.flushes.iter_mut().find(|f| f.wait == wait) else {
            return;
        };
        f.blockers = f.blockers.saturating_sub(1);
        if f.blockers == 0 && !f.counting {
            self.flush_start_counting(now, wait);
        }
    }

    fn flush_start_counting(&mut self, _now: Instant, wait: WaitId) {
        let Some(pos) = self.flushes.iter().position(|f| f.wait == wait) else {
            return;
        };
        let f = self.flushes.remove(pos);
        if self.flush_all_maybe() {
            self.resolve(f.wait, true);
            return;
        }
        let pending = self.by_key.len() - self.open;
        if self.queue.len() == 0 && pending == 0 {
            self.resolve(f.wait, true);
            return;
        }
        let tick = self.flush_tick;
        self.flush_tick += 1;
        self.flushes.push(PendingFlush {
            wait: f.wait,
            blockers: 0,
            missing: self.queue.len() + pending,
            tick,
            counting: true,
        });
    }

    /// `listen()`: asks the driver to listen once.
    pub fn listen(&mut self) -> Result<(), SwarmError> {
        if self.destroyed {
            return Err(SwarmError::Destroyed);
        }
        if matches!(self.listen, ListenState::Idle) {
            self.listen = ListenState::Pending;
            self.actions.push_back(Action::Listen);
        }
        Ok(())
    }

    /// A wait that resolves once listening finished (at once if it has).
    pub fn flush_listen_wait(&mut self, _now: Instant) -> WaitId {
        let wait = self.id();
        if matches!(self.listen, ListenState::Pending) {
            self.listen_flush_waiters.push(wait);
        } else {
            self.resolve(wait, true);
        }
        wait
    }

    /// Whether listening finished.
    pub fn is_listening(&self) -> bool {
        matches!(self.listen, ListenState::Done)
    }

    /// The driver finished `Listen` (a failure still lets discoveries run).
    pub fn handle_listen_done(&mut self, now: Instant) {
        if !matches!(self.listen, ListenState::Pending) {
            return;
        }
        self.listen = ListenState::Done;
        for w in std::mem::take(&mut self.listen_flushes) {
            self.flush_unblock(now, w);
        }
        for w in std::mem::take(&mut self.listen_flush_waiters) {
            self.resolve(w, true);
        }
        let waiting: Vec<[u8; 32]> = self
            .discoveries
            .values()
            .filter(|d| d.run.as_ref().is_some_and(|r| r.phase == Phase::Listen))
            .map(|d| d.topic)
            .collect();
        for t in waiting {
            self.start_query(now, &t);
        }
    }

    // ----- discovery -----------------------------------------------------------------------

    /// `join(topic, {server, client, limit})`: a new session on the topic's discovery, which
    /// refreshes now. Returns the session and a wait for that refresh.
    pub fn join(
        &mut self,
        now: Instant,
        topic: [u8; 32],
        server: bool,
        client: bool,
        limit: Option<usize>,
    ) -> Result<(SessionId, WaitId), SwarmError> {
        if self.destroyed {
            return Err(SwarmError::Destroyed);
        }
        let exists = self.discoveries.get(&topic).is_some_and(|d| !d.destroyed);
        if !exists {
            let predecessor = self
                .teardowns
                .iter()
                .find(|(_, (t, _))| *t == topic)
                .map(|(id, _)| *id);
            self.discoveries.insert(
                topic,
                Discovery {
                    topic,
                    sessions: Vec::new(),
                    client_sessions: 0,
                    server_sessions: 0,
                    is_client: false,
                    is_server: false,
                    limit,
                    destroyed: false,
                    suspended: self.suspended,
                    first_announce: true,
                    needs_unannounce: false,
                    clock: 0,
                    run: None,
                    timer: None,
                    predecessor,
                },
            );
            self.topic_order.retain(|t| *t != topic);
            self.topic_order.push(topic);
        }
        let sid = self.id();
        if let Some(d) = self.discoveries.get_mut(&topic) {
            d.sessions.push(Session {
                id: sid,
                client: false,
                server: false,
            });
        }
        self.sessions.insert(sid, topic);
        let wait = if let Ok(w) = self.session_refresh(now, sid, server, client, limit) {
            w
        } else {
            let w = self.id();
            self.resolve(w, false);
            w
        };
        Ok((sid, wait))
    }

    /// `session.refresh({server, client, limit})`.
    pub fn session_refresh(
        &mut self,
        now: Instant,
        sid: SessionId,
        server: bool,
        client: bool,
        limit: Option<usize>,
    ) -> Result<WaitId, SwarmError> {
        let topic = *self
            .sessions
            .get(&sid)
            .ok_or(SwarmError::DiscoveryDestroyed)?;
        if !client && !server {
            return Err(SwarmError::NoRole);
        }
        let d = self
            .discoveries
            .get_mut(&topic)
            .ok_or(SwarmError::DiscoveryDestroyed)?;
        let s = d
            .sessions
            .iter_mut()
            .find(|s| s.id == sid)
            .ok_or(SwarmError::DiscoveryDestroyed)?;
        if s.client != client {
            s.client = client;
            if client {
                d.client_sessions += 1;
            } else {
                d.client_sessions -= 1;
            }
        }
        if s.server != server {
            s.server = server;
            if server {
                d.server_sessions += 1;
            } else {
                d.server_sessions -= 1;
            }
        }
        d.limit = limit;
        let wait = self.id();
        self.discovery_refresh(now, &topic, Some(wait))?;
        Ok(wait)
    }

    /// `session.flushed()`.
    pub fn session_flushed(&mut self, sid: SessionId) -> WaitId {
        let wait = self.id();
        let topic = self.sessions.get(&sid).copied();
        self.discovery_flushed(topic, wait);
        wait
    }

    /// `status(topic).flushed()`.
    pub fn topic_flushed(&mut self, topic: &[u8; 32]) -> WaitId {
        let wait = self.id();
        self.discovery_flushed(Some(*topic), wait);
        wait
    }

    fn discovery_flushed(&mut self, topic: Option<[u8; 32]>, wait: WaitId) {
        if matches!(self.listen, ListenState::Pending) && topic.is_some() {
            // Wait for listening first, then for the refresh in flight at that point; the
            // run in flight now covers both in practice (a server run waits for listen).
            if let Some(run) = topic
                .and_then(|t| self.discoveries.get_mut(&t))
                .and_then(|d| d.run.as_mut())
            {
                run.waiters.push(wait);
                return;
            }
            self.listen_flush_waiters.push(wait);
            return;
        }
        match topic
            .and_then(|t| self.discoveries.get_mut(&t))
            .and_then(|d| d.run.as_mut())
        {
            Some(run) => run.waiters.push(wait),
            None => self.resolve(wait, true),
        }
    }

    /// `session.destroy()`: the last session leaves the topic; when no server session remains
    /// the topic is unannounced by a client-only refresh.
    pub fn session_destroy(&mut self, now: Instant, sid: SessionId) -> WaitId {
        let wait = self.id();
        let Some(topic) = self.sessions.remove(&sid) else {
            self.resolve(wait, true);
            return wait;
        };
        let Some(d) = self.discoveries.get_mut(&topic) else {
            self.resolve(wait, true);
            return wait;
        };
        if let Some(pos) = d.sessions.iter().position(|s| s.id == sid) {
            let s = d.sessions.swap_remove(pos);
            if s.client {
                d.client_sessions -= 1;
            }
            if s.server {
                d.server_sessions -= 1;
            }
        }
        if d.destroyed {
            self.resolve(wait, true);
        } else if d.sessions.is_empty() {
            return self.leave(now, topic);
        } else if d.server_sessions == 0 && d.needs_unannounce {
            if self.discovery_refresh(now, &topic, Some(wait)).is_err() {
                self.resolve(wait, false);
            }
        } else {
            self.resolve(wait, true);
        }
        wait
    }

    /// `leave(topic)`: destroys the topic's discovery (unannouncing if it announced).
    /// Existing connections stay.
    pub fn leave(&mut self, now: Instant, topic: [u8; 32]) -> WaitId {
        let wait = self.id();
        let Some(mut d) = self.discoveries.remove(&topic) else {
            self.resolve(wait, true);
            return wait;
        };
        self.topic_order.retain(|t| *t != topic);
        for s in &d.sessions {
            self.sessions.remove(&s.id);
        }
        d.destroyed = true;
        self.abort_discovery(now, &mut d, Some(wait));
        wait
    }

    /// Aborts a discovery's query and timer; unannounces if it had announced. `done` resolves
    /// when that finished.
    fn abort_discovery(&mut self, now: Instant, d: &mut Discovery, done: Option<WaitId>) {
        d.timer = None;
        if let Some(run) = d.run.take() {
            if let Phase::Query(q) = run.phase {
                self.actions.push_back(Action::CancelQuery { id: q });
            }
            for w in run.waiters {
                self.resolve(w, false);
            }
            for w in run.flush_waiters {
                self.flush_unblock(now, w);
            }
        }
        let mut waiters: Vec<WaitId> = done.into_iter().collect();
        if d.needs_unannounce {
            d.needs_unannounce = false;
            let id = self.id();
            // A predecessor's teardown must finish before ours.
            if let Some(prev) = d.predecessor.take() {
                if let Some((_, w)) = self.teardowns.get_mut(&prev) {
                    w.append(&mut waiters);
                }
            }
            self.teardowns.insert(id, (d.topic, waiters));
            self.actions
                .push_back(Action::Unannounce { id, topic: d.topic });
        } else if let Some(prev) = d
            .predecessor
            .take()
            .filter(|p| self.teardowns.contains_key(p))
        {
            if let Some((_, w)) = self.teardowns.get_mut(&prev) {
                w.append(&mut waiters);
            }
        } else {
            for w in waiters {
                self.resolve(w, true);
            }
        }
    }

    /// The driver finished an `Unannounce`.
    pub fn handle_unannounce_done(&mut self, now: Instant, id: WaitId) {
        let Some((topic, waiters)) = self.teardowns.remove(&id) else {
            return;
        };
        for w in waiters {
            self.resolve(w, true);
        }
        let waiting = self.discoveries.get_mut(&topic).is_some_and(|d| {
            if d.predecessor == Some(id) {
                d.predecessor = None;
                d.run
                    .as_ref()
                    .is_some_and(|r| r.phase == Phase::Predecessor)
            } else {
                false
            }
        });
        if waiting {
            self.proceed_run(now, &topic);
        }
    }

    fn discovery_refresh(
        &mut self,
        now: Instant,
        topic: &[u8; 32],
        wait: Option<WaitId>,
    ) -> Result<(), SwarmError> {
        let Some(d) = self.discoveries.get_mut(topic) else {
            return Err(SwarmError::DiscoveryDestroyed);
        };
        if d.destroyed {
            return Err(SwarmError::DiscoveryDestroyed);
        }
        if d.suspended {
            if let Some(w) = wait {
                self.resolve(w, true);
            }
            return Ok(());
        }
        let server = d.server_sessions > 0;
        let client = d.client_sessions > 0;
        if server == d.is_server && client == d.is_client {
            if let Some(run) = d.run.as_mut() {
                run.waiters.extend(wait);
                return Ok(());
            }
        } else if let Some(Phase::Query(q)) = d.run.as_ref().map(|r| r.phase) {
            self.actions.push_back(Action::CancelQuery { id: q });
        }
        let d = self
            .discoveries
            .get_mut(topic)
            .ok_or(SwarmError::DiscoveryDestroyed)?;
        d.is_server = server;
        d.is_client = client;
        d.clock += 1;
        let (mut waiters, flush_waiters) = d
            .run
            .take()
            .map(|r| (r.waiters, r.flush_waiters))
            .unwrap_or_default();
        waiters.extend(wait);
        d.run = Some(Run {
            clock: d.clock,
            phase: Phase::Predecessor,
            announcing: false,
            clear: false,
            remaining: None,
            waiters,
            flush_waiters,
        });
        if d.predecessor.is_none() {
            self.proceed_run(now, topic);
        }
        Ok(())
    }

    fn proceed_run(&mut self, now: Instant, topic: &[u8; 32]) {
        let listening = matches!(self.listen, ListenState::Done);
        let Some(d) = self.discoveries.get_mut(topic) else {
            return;
        };
        let clear = d.is_server && d.first_announce;
        if clear {
            d.first_announce = false;
        }
        let is_server = d.is_server;
        let Some(run) = d.run.as_mut() else {
            return;
        };
        run.clear = clear;
        if is_server && !listening {
            run.phase = Phase::Listen;
            let _ = self.listen();
            return;
        }
        self.start_query(now, topic);
    }

    fn start_query(&mut self, _now: Instant, topic: &[u8; 32]) {
        let id = self.id();
        let Some(d) = self.discoveries.get_mut(topic) else {
            return;
        };
        if !d.active() {
            return;
        }
        if d.is_server {
            d.needs_unannounce = true;
        }
        let kind = if d.is_server {
            QueryKind::Announce {
                clear: d.run.as_ref().is_some_and(|r| r.clear),
                client: d.is_client,
            }
        } else if d.needs_unannounce {
            QueryKind::LookupAndUnannounce
        } else {
            QueryKind::Lookup
        };
        let limit = d.limit;
        let announcing = d.is_server;
        let Some(run) = d.run.as_mut() else {
            return;
        };
        run.phase = Phase::Query(id);
        run.announcing = announcing;
        run.remaining = limit;
        self.actions.push_back(Action::Query {
            id,
            topic: *topic,
            kind,
        });
    }

    fn discovery_of_query(&self, id: QueryId) -> Option<[u8; 32]> {
        self.discoveries
            .values()
            .find(|d| d.run.as_ref().is_some_and(|r| r.phase == Phase::Query(id)))
            .map(|d| d.topic)
    }

    /// A query found a peer record.
    pub fn handle_query_peer(
        &mut self,
        now: Instant,
        id: QueryId,
        key: PublicKey,
        relays: Vec<SocketAddrV4>,
    ) {
        let Some(topic) = self.discovery_of_query(id) else {
            return;
        };
        let Some(d) = self.discoveries.get_mut(&topic) else {
            return;
        };
        if !d.is_client || !d.active() {
            return;
        }
        if let Some(run) = d.run.as_mut() {
            if let Some(rem) = run.remaining.as_mut() {
                if *rem == 0 {
                    return;
                }
                *rem -= 1;
            }
        }
        self.handle_peer(now, topic, key, relays);
    }

    /// A query finished (`ok` = it did not fail).
    pub fn handle_query_done(&mut self, now: Instant, id: QueryId, ok: bool) {
        let Some(topic) = self.discovery_of_query(id) else {
            return;
        };
        let Some(d) = self.discoveries.get_mut(&topic) else {
            return;
        };
        let Some(run) = d.run.take() else {
            return;
        };
        if ok && !run.announcing && run.clock == d.clock {
            d.needs_unannounce = false;
        }
        let active = d.active();
        if active {
            self.refresh_later(now, &topic, false);
        }
        for w in run.waiters {
            self.resolve(w, ok);
        }
        for w in run.flush_waiters {
            self.flush_unblock(now, w);
        }
    }

    fn refresh_later(&mut self, now: Instant, topic: &[u8; 32], eager: bool) {
        let jitter = Duration::from_millis(self.rng.next_u64() % (REFRESH_JITTER_MS + 1));
        let delay = if eager {
            jitter
        } else {
            REFRESH_INTERVAL + jitter
        };
        if let Some(d) = self.discoveries.get_mut(topic) {
            d.timer = Some((now + delay, now, delay));
        }
    }

    // ----- lifecycle -----------------------------------------------------------------------

    /// `suspend()`: aborts discoveries (unannouncing), closes every connection and attempt,
    /// empties the queue and resets the retry timers. Unlike hyperswarm 4.17, peers that were
    /// queued or waiting are released (JS leaves them marked queued and never dials them again).
    pub fn suspend(&mut self, now: Instant) {
        if self.suspended || self.destroyed {
            return;
        }
        self.suspended = true;
        for topic in self.topic_order.clone() {
            if let Some(mut d) = self.discoveries.remove(&topic) {
                d.suspended = true;
                self.abort_discovery(now, &mut d, None);
                self.discoveries.insert(topic, d);
            }
        }
        let conns: Vec<ConnId> = self.by_key.values().copied().collect();
        for conn in conns {
            self.actions.push_back(Action::Close {
                conn,
                reason: CloseReason::Suspended,
            });
        }
        let backoffs = self.timer.backoffs;
        self.timer = RetryTimer::new(backoffs, self.cfg.jitter, &mut self.rng);
        self.queue = Queue::default();
        for p in self.peers.values_mut() {
            p.queued = false;
            p.waiting = false;
        }
    }

    /// `resume()`: discoveries refresh, explicit peers redial.
    pub fn resume(&mut self, now: Instant) {
        if !self.suspended || self.destroyed {
            return;
        }
        self.suspended = false;
        for topic in self.topic_order.clone() {
            if let Some(d) = self.discoveries.get_mut(&topic) {
                d.suspended = false;
            }
            let _ = self.discovery_refresh(now, &topic, None);
        }
        self.attempt_client_connections(now);
    }

    /// `destroy()`: leaves every topic (the returned waits resolve when unannounced), stops
    /// retries, closes every connection, resolves pending flushes with `false`.
    pub fn destroy(&mut self, now: Instant) -> Vec<WaitId> {
        if self.destroyed {
            return Vec::new();
        }
        self.destroyed = true;
        let backoffs = self.timer.backoffs;
        self.timer = RetryTimer::new(backoffs, self.cfg.jitter, &mut self.rng);
        let mut leaves = Vec::new();
        for topic in self.topic_order.clone() {
            leaves.push(self.leave(now, topic));
        }
        let conns: Vec<ConnId> = self.by_key.values().copied().collect();
        for conn in conns {
            self.actions.push_back(Action::Close {
                conn,
                reason: CloseReason::Destroyed,
            });
        }
        for f in std::mem::take(&mut self.flushes) {
            self.resolve(f.wait, false);
        }
        leaves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    #[test]
    fn bulk_timer_releases_on_second_tick() {
        let t0 = Instant::now();
        let mut t = BulkTimer::new(Duration::from_millis(100));
        t.add(t0, key(1));
        assert!(t.tick(t0 + Duration::from_millis(66)).is_empty());
        assert_eq!(t.tick(t0 + Duration::from_millis(132)), vec![key(1)]);
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn retry_class_selection_matches_hyperswarm() {
        let mut p = Peer::new(key(1), Vec::new());
        assert_eq!(RetryTimer::select(&p), Some(0));
        p.attempts = 1;
        assert_eq!(RetryTimer::select(&p), Some(1));
        p.proven = true;
        assert_eq!(RetryTimer::select(&p), Some(0));
        p.attempts = 3;
        assert_eq!(RetryTimer::select(&p), Some(2));
        p.attempts = 4;
        assert_eq!(RetryTimer::select(&p), None);
        p.explicit = true;
        assert_eq!(RetryTimer::select(&p), Some(3));
        p.banned = true;
        assert_eq!(RetryTimer::select(&p), None);
    }
}
