//! A dht-rpc node as a sans-IO state machine (spec `dht-rpc.md` §3–§13): requests with retries
//! and a congestion window, the internal commands, the routing table with ping-before-evict,
//! iterative queries with an optional commit, bootstrap, NAT sampling, the firewall check and
//! the ephemeral → persistent transition.
//!
//! Two sockets as in the JS node: `Server` (its address is the node's identity) and `Client`
//! (used while firewalled). The driver feeds datagrams with the socket they arrived on and
//! sends [`Transmit`]s from the socket they name.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::message::{commands, errors, node_id, Message, Request, Response};
use super::nat::NatSampler;
use super::query::{Candidate, Query, Reply, Step};
use super::table::{AddResult, RoutingTable};
use super::token::Tokens;
use crate::testing::Rng;

const TICK: Duration = Duration::from_secs(5);
const DRAIN: Duration = Duration::from_millis(750);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_WINDOW: u32 = 80;
const MAX_PING_DELAY: u32 = 10_000;
const RECENT_TICKS: u64 = 12;
const OLD_TICKS: u64 = 360;
const STABLE_TICKS: u64 = 240;
const RECHECK_TICKS: u64 = 720;
const REFRESH_TICKS: u64 = 60;
const DOWN_HINTS_PER_TICK: u32 = 50;
const MAX_DELAYED_PINGS: usize = 1024;

/// Which of the node's two sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// The socket whose public address is the node's identity.
    Server,
    /// The socket for outgoing requests while firewalled.
    Client,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// From which socket.
    pub socket: SocketKind,
    /// Destination.
    pub dest: SocketAddrV4,
    /// Bytes.
    pub data: Vec<u8>,
}

/// Node options.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Nodes to bootstrap from.
    pub bootstrap: Vec<SocketAddrV4>,
    /// `Some(true)`: never persistent; `Some(false)`: become persistent right after bootstrap
    /// if reachable; `None`: adaptive (ephemeral first, persistent after ~20 min if stable).
    pub ephemeral: Option<bool>,
    /// Start as firewalled (default); `false` skips the firewall check.
    pub firewalled: bool,
    /// A known public address (bootstrapper mode): id derived at once, persistent.
    pub public_addr: Option<SocketAddrV4>,
    /// Query concurrency (10).
    pub concurrency: usize,
    /// Bucket size (20).
    pub k: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            bootstrap: Vec::new(),
            ephemeral: None,
            firewalled: true,
            public_addr: None,
            concurrency: 10,
            k: 20,
        }
    }
}

/// What the node keeps per routing-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its address.
    pub addr: SocketAddrV4,
    added: u64,
    pinged: u64,
    seen: u64,
    sampled: Option<u64>,
    down_hints: u32,
}

/// Handle of a request sent with [`Node::request`].
pub type RequestId = u64;
/// Handle of a query started with [`Node::query`].
pub type QueryId = u64;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No response after all retries (REQUEST_TIMEOUT).
    #[error("request timed out")]
    Timeout,
    /// The node was destroyed (REQUEST_DESTROYED).
    #[error("request destroyed")]
    Destroyed,
}

/// Why a query failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No node with a valid id answered ("Too few nodes responded").
    #[error("too few nodes responded")]
    TooFewNodes,
    /// Every commit request failed.
    #[error("all commits failed")]
    CommitFailed,
}

/// How to answer an application request ([`NodeEvent::Request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHandle {
    tid: u16,
    from: SocketAddrV4,
    socket: SocketKind,
    target: Option<[u8; 32]>,
    command: u64,
}

impl ReplyHandle {
    /// The requester's address.
    pub fn from(&self) -> SocketAddrV4 {
        self.from
    }

    /// The request's transaction id (to relay it from another socket).
    pub fn tid(&self) -> u16 {
        self.tid
    }

    /// The socket the request arrived on (replies leave from it).
    pub fn socket(&self) -> SocketKind {
        self.socket
    }
}

/// An application (non-internal) request for the layer above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRequest {
    /// Pass to [`Node::reply`].
    pub handle: ReplyHandle,
    /// Sender.
    pub from: SocketAddrV4,
    /// The sender's id, when it matched its address.
    pub valid_id: Option<[u8; 32]>,
    /// Whether the request carried a token we issued (write authorisation).
    pub token_ok: bool,
    /// The request.
    pub request: Request,
}

/// What the node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// Bootstrapping finished.
    Ready,
    /// The node became persistent (it now has an id others can store).
    Persistent,
    /// The public address estimate changed.
    NatUpdate {
        /// Public host, if known.
        host: Option<Ipv4Addr>,
        /// Public port (0: unknown or randomized).
        port: u16,
    },
    /// A response to [`Node::request`].
    Response {
        /// Which request.
        request: RequestId,
        /// From whom.
        from: SocketAddrV4,
        /// The response.
        response: Response,
    },
    /// A [`Node::request`] failed.
    RequestFailed {
        /// Which request.
        request: RequestId,
        /// Why.
        error: RequestError,
    },
    /// A successful reply inside a query.
    QueryReply {
        /// Which query.
        query: QueryId,
        /// From whom.
        from: SocketAddrV4,
        /// The response.
        response: Response,
    },
    /// A query finished.
    QueryDone {
        /// Which query.
        query: QueryId,
        /// The closest replies, or why it failed; plus requests sent.
        result: Result<Vec<Reply>, QueryError>,
        /// Requests the query sent (a cost/hop measure).
        requests: usize,
    },
    /// An application request to answer with [`Node::reply`].
    Request(IncomingRequest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryKind {
    User,
    Bootstrap,
    BootstrapAgain,
    Refresh,
}

#[derive(Debug)]
struct QueryState {
    q: Query,
    kind: QueryKind,
    command: u64,
    internal: bool,
    value: Option<Vec<u8>>,
    commit: bool,
    commits_pending: usize,
    commits_ok: usize,
    closest: Vec<Reply>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User(RequestId),
    Query(QueryId, SocketAddrV4),
    Commit(QueryId),
    TablePing {
        id: [u8; 32],
        seen_before: u64,
        newcomer: Option<([u8; 32], NodeInfo)>,
    },
    PingNat,
    DownHintCheck([u8; 32]),
    Plain,
}

#[derive(Debug)]
struct Inflight {
    dest: SocketAddrV4,
    dest_id: Option<[u8; 32]>,
    socket: SocketKind,
    data: Vec<u8>,
    retries_left: u32,
    deadline: Instant,
    kind: Kind,
    slow: bool,
    waiting: bool,
}

#[derive(Debug, Default)]
struct FirewallCheck {
    asked: usize,
    replies: usize,
    sampler: NatSampler,
    pending: usize,
}

/// A dht-rpc node.
#[derive(Debug)]
pub struct Node {
    cfg: NodeConfig,
    server_port: u16,
    rng: Rng,
    ephemeral: bool,
    firewalled: bool,
    bootstrapped: bool,
    table: RoutingTable<NodeInfo>,
    tokens: Tokens,
    nat: NatSampler,
    idless_samples: usize,
    tid: u16,
    inflight: HashMap<u16, Inflight>,
    buckets: [u32; 4],
    bucket: usize,
    window_total: u32,
    waiting: VecDeque<u16>,
    queries: HashMap<QueryId, QueryState>,
    next_id: u64,
    tick: u64,
    next_tick: Instant,
    next_drain: Instant,
    drains: u64,
    stable_countdown: u64,
    refresh_countdown: u64,
    last_checked_host: Option<Ipv4Addr>,
    down_hints_sent: u32,
    eviction_pings: usize,
    firewall_check: Option<FirewallCheck>,
    delayed: Vec<(Instant, Transmit)>,
    out: VecDeque<Transmit>,
    events: VecDeque<NodeEvent>,
}

fn is_expected(firewalled: bool, socket: SocketKind) -> bool {
    (socket == SocketKind::Client) == firewalled
}

impl Node {
    /// A node whose server socket is bound on `server_port`; `seed` drives its randomness
    /// (initial id, tids, token secrets).
    pub fn new(now: Instant, cfg: NodeConfig, server_port: u16, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut id = [0u8; 32];
        rng.fill(&mut id);
        let mut secret = [0u8; 32];
        rng.fill(&mut secret);
        let tid = rng.next_u64() as u16;
        let tick = 51 + rng.next_u64() % 50;
        let refresh_countdown = 31 + rng.next_u64() % 30;
        let k = cfg.k;
        let mut node = Self {
            ephemeral: cfg.ephemeral != Some(false) || cfg.public_addr.is_none(),
            firewalled: cfg.firewalled,
            cfg,
            server_port,
            rng,
            bootstrapped: false,
            table: RoutingTable::new(id, k),
            tokens: Tokens::new(secret),
            nat: NatSampler::default(),
            idless_samples: 0,
            tid,
            inflight: HashMap::new(),
            buckets: [0; 4],
            bucket: 0,
            window_total: 0,
            waiting: VecDeque::new(),
            queries: HashMap::new(),
            next_id: 1,
            tick,
            next_tick: now + TICK,
            next_drain: now + DRAIN,
            drains: 0,
            stable_countdown: STABLE_TICKS,
            refresh_countdown,
            last_checked_host: None,
            down_hints_sent: 0,
            eviction_pings: 0,
            firewall_check: None,
            delayed: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
        };
        if let Some(public) = node.cfg.public_addr {
            // Bootstrapper mode: reachable at a known address from the start.
            node.firewalled = false;
            node.ephemeral = node.cfg.ephemeral == Some(true);
            node.nat.add(*public.ip(), public.port());
            let _ = node.table.rebuild(node_id(&public));
        }
        node
    }

    /// The node id (random until the node knows its public address).
    pub fn id(&self) -> &[u8; 32] {
        self.table.local_id()
    }

    /// Whether the node stays out of other nodes' tables.
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// Whether the node believes unsolicited traffic cannot reach it.
    pub fn is_firewalled(&self) -> bool {
        self.firewalled
    }

    /// Whether bootstrapping finished.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable<NodeInfo> {
        &self.table
    }

    /// The public address as sampled from peers (`port` 0: unknown or randomized).
    pub fn public_address(&self) -> (Option<Ipv4Addr>, u16) {
        (self.nat.host(), self.nat.port())
    }

    /// Requests in flight (diagnostics).
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// The `n` table nodes closest to `target` by XOR distance. dht-rpc answers with its table's
    /// bucket order (row d, then d−1 … 0, then d+1 …), which lists far nodes of lower rows
    /// before nearer ones of higher rows; the exact set costs little and makes lookups converge
    /// on the true closest nodes (the wire format is the same).
    fn closest_nodes(&self, target: &[u8; 32], n: usize) -> Vec<([u8; 32], SocketAddrV4)> {
        let mut all: Vec<([u8; 32], [u8; 32], SocketAddrV4)> = self
            .table
            .iter()
            .map(|(id, info)| (std::array::from_fn(|i| id[i] ^ target[i]), *id, info.addr))
            .collect();
        if all.len() > n {
            all.select_nth_unstable_by(n, |a, b| a.0.cmp(&b.0));
            all.truncate(n);
        }
        all.sort_unstable_by_key(|a| a.0);
        all.into_iter().map(|(_, id, addr)| (id, addr)).collect()
    }

    fn next_handle(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn out_socket(&self) -> SocketKind {
        if self.firewalled {
            SocketKind::Client
        } else {
            SocketKind::Server
        }
    }

    fn id_for(&self, socket: SocketKind) -> Option<[u8; 32]> {
        (!self.ephemeral && socket == SocketKind::Server).then(|| *self.table.local_id())
    }

    // ------------------------------------------------------------------ sending

    /// Starts bootstrapping: a FIND_NODE query for the node's own id.
    pub fn bootstrap(&mut self, now: Instant) {
        if self.cfg.bootstrap.is_empty() && self.table.is_empty() {
            self.finish_bootstrap(now);
            return;
        }
        let target = *self.table.local_id();
        self.start_query(
            now,
            QueryKind::Bootstrap,
            target,
            commands::FIND_NODE,
            true,
            None,
            false,
            &[],
        );
    }

    fn finish_bootstrap(&mut self, now: Instant) {
        if !self.bootstrapped {
            self.bootstrapped = true;
            self.events.push_back(NodeEvent::Ready);
            if !self.ephemeral && self.cfg.public_addr.is_some() {
                self.events.push_back(NodeEvent::Persistent);
            }
        }
        let _ = now;
    }

    #[allow(clippy::too_many_arguments)]
    fn send_request(
        &mut self,
        now: Instant,
        dest: SocketAddrV4,
        dest_id: Option<[u8; 32]>,
        command: u64,
        internal: bool,
        target: Option<[u8; 32]>,
        value: Option<Vec<u8>>,
        token: Option<[u8; 32]>,
        retries: u32,
        kind: Kind,
    ) -> u16 {
        let socket = self.out_socket();
        self.send_request_on(
            now, socket, dest, dest_id, command, internal, target, value, token, retries, kind,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn send_request_on(
        &mut self,
        now: Instant,
        socket: SocketKind,
        dest: SocketAddrV4,
        dest_id: Option<[u8; 32]>,
        command: u64,
        internal: bool,
        target: Option<[u8; 32]>,
        value: Option<Vec<u8>>,
        token: Option<[u8; 32]>,
        retries: u32,
        kind: Kind,
    ) -> u16 {
        let mut tid = self.tid;
        while self.inflight.contains_key(&tid) {
            tid = tid.wrapping_add(1);
        }
        self.tid = tid.wrapping_add(1);
        let req = Request {
            tid,
            to: dest,
            id: self.id_for(socket),
            token,
            internal,
            command,
            target,
            value,
        };
        let data = Message::Request(req).encode();
        let mut f = Inflight {
            dest,
            dest_id,
            socket,
            data,
            retries_left: retries,
            deadline: now + REQUEST_TIMEOUT,
            kind,
            slow: false,
            waiting: false,
        };
        if self.window_full() {
            f.waiting = true;
            self.waiting.push_back(tid);
        } else {
            self.transmit_request(&f);
        }
        self.inflight.insert(tid, f);
        tid
    }

    fn window_full(&self) -> bool {
        self.window_total >= 2 * MAX_WINDOW || self.buckets[self.bucket] >= MAX_WINDOW
    }

    fn transmit_request(&mut self, f: &Inflight) {
        self.buckets[self.bucket] += 1;
        self.window_total += 1;
        self.out.push_back(Transmit {
            socket: f.socket,
            dest: f.dest,
            data: f.data.clone(),
        });
    }

    fn request_completed(&mut self) {
        if self.buckets[self.bucket] > 0 {
            self.buckets[self.bucket] -= 1;
            self.window_total -= 1;
        }
    }

    /// Sends a request (retried 3 times, 1 s apart); the answer comes as
    /// [`NodeEvent::Response`] or [`NodeEvent::RequestFailed`].
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        &mut self,
        now: Instant,
        dest: SocketAddrV4,
        command: u64,
        internal: bool,
        target: Option<[u8; 32]>,
        value: Option<Vec<u8>>,
        token: Option<[u8; 32]>,
    ) -> RequestId {
        let id = self.next_handle();
        self.send_request(
            now,
            dest,
            None,
            command,
            internal,
            target,
            value,
            token,
            3,
            Kind::User(id),
        );
        id
    }

    /// Starts an iterative query for `target` with `command`; replies come as
    /// [`NodeEvent::QueryReply`], the end as [`NodeEvent::QueryDone`]. With `commit` the
    /// command is re-sent with each closest node's token.
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &mut self,
        now: Instant,
        target: [u8; 32],
        command: u64,
        internal: bool,
        value: Option<Vec<u8>>,
        commit: bool,
        nodes: &[SocketAddrV4],
    ) -> QueryId {
        self.refresh_countdown = REFRESH_TICKS;
        self.start_query(
            now,
            QueryKind::User,
            target,
            command,
            internal,
            value,
            commit,
            nodes,
        )
    }

    /// FIND_NODE for `target`.
    pub fn find_node(&mut self, now: Instant, target: [u8; 32]) -> QueryId {
        self.query(now, target, commands::FIND_NODE, true, None, false, &[])
    }

    #[allow(clippy::too_many_arguments)]
    fn start_query(
        &mut self,
        now: Instant,
        kind: QueryKind,
        target: [u8; 32],
        command: u64,
        internal: bool,
        value: Option<Vec<u8>>,
        commit: bool,
        nodes: &[SocketAddrV4],
    ) -> QueryId {
        let k = self.cfg.k;
        let mut seeds: Vec<Candidate> = nodes
            .iter()
            .map(|&addr| Candidate { addr, id: None })
            .collect();
        let mut table_seeded = false;
        if seeds.len() < k {
            let from_table: Vec<Candidate> = self
                .closest_nodes(&target, k - seeds.len())
                .into_iter()
                .map(|(id, addr)| Candidate { addr, id: Some(id) })
                .collect();
            table_seeded = true;
            let mut all = from_table;
            all.extend(seeds);
            seeds = all;
        }
        if seeds.len() < k {
            seeds.extend(
                self.cfg
                    .bootstrap
                    .iter()
                    .map(|&addr| Candidate { addr, id: None }),
            );
        }
        let concurrency = if matches!(kind, QueryKind::Refresh) {
            2.max(self.cfg.concurrency / 8).min(self.cfg.concurrency)
        } else {
            self.cfg.concurrency
        };
        let q = Query::new(
            target,
            *self.table.local_id(),
            concurrency,
            &seeds,
            table_seeded,
        );
        let id = self.next_handle();
        self.queries.insert(
            id,
            QueryState {
                q,
                kind,
                command,
                internal,
                value,
                commit,
                commits_pending: 0,
                commits_ok: 0,
                closest: Vec::new(),
            },
        );
        self.pump_query(now, id);
        id
    }

    fn pump_query(&mut self, now: Instant, qid: QueryId) {
        let Some(qs) = self.queries.get_mut(&qid) else {
            return;
        };
        if qs.q.is_finished() {
            return;
        }
        let asks = qs.q.next_batch();
        let (command, internal, value, target) =
            (qs.command, qs.internal, qs.value.clone(), *qs.q.target());
        for c in asks {
            self.send_request(
                now,
                c.addr,
                c.id,
                command,
                internal,
                Some(target),
                value.clone(),
                None,
                5,
                Kind::Query(qid, c.addr),
            );
        }
        let table = &self.table;
        let Some(qs) = self.queries.get_mut(&qid) else {
            return;
        };
        let top_up = || {
            table
                .closest(&target, 20)
                .into_iter()
                .map(|(id, info)| Candidate {
                    addr: info.addr,
                    id: Some(*id),
                })
                .collect()
        };
        if !qs.q.check_done(top_up) {
            let more = qs.q.next_batch();
            for c in more {
                self.send_request(
                    now,
                    c.addr,
                    c.id,
                    command,
                    internal,
                    Some(target),
                    value.clone(),
                    None,
                    5,
                    Kind::Query(qid, c.addr),
                );
            }
            return;
        }
        self.finish_query(now, qid);
    }

    fn finish_query(&mut self, now: Instant, qid: QueryId) {
        let Some(qs) = self.queries.get_mut(&qid) else {
            return;
        };
        qs.closest = qs.q.closest_replies().to_vec();
        if qs.commit && !qs.closest.is_empty() {
            let (command, internal, value, target) =
                (qs.command, qs.internal, qs.value.clone(), *qs.q.target());
            let replies = qs.closest.clone();
            qs.commits_pending = replies.len();
            for r in replies {
                self.send_request(
                    now,
                    r.from,
                    Some(r.id),
                    command,
                    internal,
                    Some(target),
                    value.clone(),
                    r.token,
                    3,
                    Kind::Commit(qid),
                );
            }
            return;
        }
        self.end_query(now, qid);
    }

    fn end_query(&mut self, now: Instant, qid: QueryId) {
        let Some(qs) = self.queries.remove(&qid) else {
            return;
        };
        let requests = qs.q.requests_sent;
        let result = if qs.closest.is_empty() {
            Err(QueryError::TooFewNodes)
        } else if qs.commit && qs.commits_ok == 0 {
            Err(QueryError::CommitFailed)
        } else {
            Ok(qs.closest)
        };
        match qs.kind {
            QueryKind::User => self.events.push_back(NodeEvent::QueryDone {
                query: qid,
                result,
                requests,
            }),
            QueryKind::Refresh => {}
            QueryKind::Bootstrap => {
                if self.cfg.ephemeral == Some(false) && self.ephemeral {
                    self.start_firewall_check(now);
                } else {
                    self.finish_bootstrap(now);
                }
            }
            QueryKind::BootstrapAgain => self.finish_bootstrap(now),
        }
    }

    // ------------------------------------------------------------------ persistence

    fn start_firewall_check(&mut self, now: Instant) {
        let (Some(_), port) = (self.nat.host(), self.nat.port()) else {
            return self.finish_bootstrap(now);
        };
        if port == 0 {
            return self.finish_bootstrap(now);
        }
        self.last_checked_host = self.nat.host();
        if !self.firewalled {
            return self.become_persistent(now, None);
        }
        let mut nodes: Vec<(SocketAddrV4, [u8; 32])> = self
            .table
            .iter()
            .map(|(id, n)| (n.addr, *id, n.seen))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(a, id, _)| (a, id))
            .collect();
        nodes.sort_by_key(|(a, _)| {
            std::cmp::Reverse(self.table.get(&node_id(a)).map_or(0, |n| n.seen))
        });
        let mut targets: Vec<SocketAddrV4> = nodes.into_iter().take(5).map(|(a, _)| a).collect();
        if targets.len() < 5 {
            targets.extend(self.cfg.bootstrap.iter().copied().take(5 - targets.len()));
        }
        if targets.is_empty() {
            return self.finish_bootstrap(now);
        }
        let value = self.server_port.to_le_bytes().to_vec();
        self.firewall_check = Some(FirewallCheck {
            asked: targets.len(),
            replies: 0,
            sampler: NatSampler::default(),
            pending: targets.len(),
        });
        for t in targets {
            self.send_request(
                now,
                t,
                None,
                commands::PING_NAT,
                true,
                None,
                Some(value.clone()),
                None,
                3,
                Kind::PingNat,
            );
        }
    }

    fn firewall_check_done(&mut self, now: Instant) {
        let Some(fc) = self.firewall_check.take() else {
            return;
        };
        let needed = if fc.asked >= 5 { 3 } else { 1 };
        let host_ok = fc.sampler.host().is_some() && fc.sampler.host() == self.nat.host();
        let port_ok = fc.sampler.port() == self.server_port;
        if fc.replies < needed || !host_ok || !port_ok {
            tracing::debug!(replies = fc.replies, "dht node stays firewalled");
            return self.finish_bootstrap(now);
        }
        self.firewalled = false;
        self.become_persistent(now, Some(fc.sampler));
    }

    fn become_persistent(&mut self, now: Instant, sampler: Option<NatSampler>) {
        let Some(host) = self.nat.host() else {
            return self.finish_bootstrap(now);
        };
        if let Some(s) = sampler {
            self.nat = s;
        }
        let public = SocketAddrV4::new(host, self.server_port);
        let id = node_id(&public);
        self.ephemeral = self.cfg.ephemeral == Some(true);
        if !self.ephemeral {
            self.events.push_back(NodeEvent::Persistent);
        }
        if id == *self.table.local_id() {
            self.finish_bootstrap(now);
        } else {
            let _ = self.table.rebuild(id);
            let target = id;
            self.start_query(
                now,
                QueryKind::BootstrapAgain,
                target,
                commands::FIND_NODE,
                true,
                None,
                false,
                &[],
            );
        }
    }

    // ------------------------------------------------------------------ receiving

    /// Processes one datagram that arrived on `socket` from `from`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        socket: SocketKind,
        from: SocketAddrV4,
        data: &[u8],
    ) {
        if data.len() < 2 || from.port() == 0 {
            return;
        }
        if let Some(fc) = &mut self.firewall_check {
            let _ = fc; // replies are matched below by tid; the socket is checked there
        }
        match Message::decode(data) {
            Ok(Message::Request(r)) => self.on_request(now, socket, from, r),
            Ok(Message::Response(r)) => self.on_response(now, socket, from, r),
            Err(_) => {}
        }
    }

    fn add_node(
        &mut self,
        now: Instant,
        id: [u8; 32],
        addr: SocketAddrV4,
        socket: SocketKind,
        to: SocketAddrV4,
    ) {
        let tick = self.tick;
        if let Some(n) = self.table.get_mut(&id) {
            n.pinged = tick;
            n.seen = tick;
            n.addr = addr;
            let sample = is_expected(self.firewalled, socket)
                && n.sampled.is_none_or(|s| tick >= s + OLD_TICKS);
            if sample {
                n.sampled = Some(tick);
                self.sample(to);
            }
            return;
        }
        let info = NodeInfo {
            addr,
            added: tick,
            pinged: tick,
            seen: tick,
            sampled: Some(tick),
            down_hints: 0,
        };
        match self.table.add(id, info) {
            AddResult::Added | AddResult::Updated => self.sample(to),
            AddResult::RowFull => self.on_row_full(now, id, info),
            AddResult::OwnId => {}
        }
    }

    fn sample(&mut self, to: SocketAddrV4) {
        let before = (self.nat.host(), self.nat.port());
        self.nat.add(*to.ip(), to.port());
        let after = (self.nat.host(), self.nat.port());
        if before != after {
            self.events.push_back(NodeEvent::NatUpdate {
                host: after.0,
                port: after.1,
            });
        }
    }

    fn on_row_full(&mut self, now: Instant, id: [u8; 32], info: NodeInfo) {
        if !self.bootstrapped || self.eviction_pings >= 3 {
            return;
        }
        let row = self.table.row_of(&id);
        let tick = self.tick;
        let oldest = self
            .table
            .iter()
            .filter(|(nid, n)| self.table.row_of(nid) == row && n.pinged < tick)
            .min_by_key(|(_, n)| (n.pinged, n.added))
            .map(|(nid, n)| (*nid, *n));
        let Some((old_id, old)) = oldest else { return };
        if old.pinged + RECENT_TICKS > tick && old.added + OLD_TICKS < tick {
            return;
        }
        if let Some(n) = self.table.get_mut(&old_id) {
            n.pinged = tick;
        }
        self.eviction_pings += 1;
        self.send_request(
            now,
            old.addr,
            Some(old_id),
            commands::PING,
            true,
            None,
            None,
            None,
            3,
            Kind::TablePing {
                id: old_id,
                seen_before: old.seen,
                newcomer: Some((id, info)),
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        socket: SocketKind,
        dest: SocketAddrV4,
        tid: u16,
        token: bool,
        closer: Option<[u8; 32]>,
        error: u64,
        value: Option<Vec<u8>>,
    ) {
        let closer_nodes = closer
            .map(|t| {
                self.closest_nodes(&t, self.cfg.k)
                    .into_iter()
                    .map(|(_, addr)| addr)
                    .collect()
            })
            .unwrap_or_default();
        let res = Response {
            tid,
            to: dest,
            id: self.id_for(socket),
            token: token.then(|| self.tokens.token(*dest.ip())),
            closer_nodes,
            error,
            value,
        };
        self.out.push_back(Transmit {
            socket,
            dest,
            data: Message::Response(res).encode(),
        });
    }

    fn on_request(&mut self, now: Instant, socket: SocketKind, from: SocketAddrV4, r: Request) {
        let valid_id = r.id.filter(|id| *id == node_id(&from));
        if let Some(id) = valid_id {
            self.add_node(now, id, from, socket, r.to);
        }
        let mut token_ok = false;
        if let Some(t) = r.token {
            if !self.tokens.verify(*from.ip(), &t) {
                self.respond(
                    socket,
                    from,
                    r.tid,
                    true,
                    r.target,
                    errors::INVALID_TOKEN,
                    None,
                );
                return;
            }
            token_ok = true;
        }
        if !r.internal {
            let handle = ReplyHandle {
                tid: r.tid,
                from,
                socket,
                target: r.target,
                command: r.command,
            };
            self.events.push_back(NodeEvent::Request(IncomingRequest {
                handle,
                from,
                valid_id,
                token_ok,
                request: r,
            }));
            return;
        }
        self.on_internal_request(now, socket, from, &r);
    }

    fn on_internal_request(
        &mut self,
        now: Instant,
        socket: SocketKind,
        from: SocketAddrV4,
        r: &Request,
    ) {
        match r.command {
            commands::PING => self.respond(socket, from, r.tid, false, None, 0, None),
            commands::PING_NAT => {
                let Some(v) = r.value.as_deref().filter(|v| v.len() >= 2) else {
                    return;
                };
                let port = u16::from_le_bytes([v[0], v[1]]);
                if port == 0 {
                    return;
                }
                self.respond(
                    socket,
                    SocketAddrV4::new(*from.ip(), port),
                    r.tid,
                    false,
                    None,
                    0,
                    None,
                );
            }
            commands::FIND_NODE => {
                if r.target.is_some() {
                    self.respond(socket, from, r.tid, false, r.target, 0, None);
                }
            }
            commands::DOWN_HINT => {
                let Some(v) = r.value.as_deref().filter(|v| v.len() >= 6) else {
                    return;
                };
                let down = SocketAddrV4::new(
                    Ipv4Addr::new(v[0], v[1], v[2], v[3]),
                    u16::from_le_bytes([v[4], v[5]]),
                );
                let id = node_id(&down);
                let checks = self
                    .inflight
                    .values()
                    .filter(|f| matches!(f.kind, Kind::DownHintCheck(_)))
                    .count();
                if checks < 10 {
                    let tick = self.tick;
                    if let Some(n) = self.table.get_mut(&id) {
                        if n.pinged < tick || n.down_hints == 0 {
                            n.down_hints += 1;
                            n.pinged = tick;
                            let addr = n.addr;
                            self.send_request(
                                now,
                                addr,
                                Some(id),
                                commands::PING,
                                true,
                                None,
                                None,
                                None,
                                3,
                                Kind::DownHintCheck(id),
                            );
                        }
                    }
                }
                self.respond(socket, from, r.tid, false, None, 0, None);
            }
            commands::DELAYED_PING => {
                let Some(v) = r.value.as_deref().filter(|v| v.len() >= 4) else {
                    return;
                };
                let delay = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                // Bounded: a flood of delayed pings must not queue replies without limit.
                if delay > MAX_PING_DELAY || self.delayed.len() >= MAX_DELAYED_PINGS {
                    return;
                }
                let res = Response {
                    tid: r.tid,
                    to: from,
                    id: self.id_for(socket),
                    token: None,
                    closer_nodes: Vec::new(),
                    error: 0,
                    value: None,
                };
                let t = Transmit {
                    socket,
                    dest: from,
                    data: Message::Response(res).encode(),
                };
                self.delayed
                    .push((now + Duration::from_millis(u64::from(delay)), t));
            }
            _ => self.respond(
                socket,
                from,
                r.tid,
                false,
                r.target,
                errors::UNKNOWN_COMMAND,
                None,
            ),
        }
    }

    /// Answers an application request. `token` adds a fresh round-trip token (the default for
    /// application replies); `closer` adds the closest nodes to the request's target.
    pub fn reply(
        &mut self,
        handle: ReplyHandle,
        value: Option<Vec<u8>>,
        token: bool,
        closer: bool,
    ) {
        let target = if closer { handle.target } else { None };
        self.respond(
            handle.socket,
            handle.from,
            handle.tid,
            token,
            target,
            0,
            value,
        );
    }

    /// Forwards an application request to `dest` with the same tid, command and target and a
    /// new value, no token (dht-rpc's "relay a request", used by the hyperdht router): the
    /// eventual response for that tid reaches the original requester from whoever answers.
    pub fn forward_request(
        &mut self,
        handle: ReplyHandle,
        dest: SocketAddrV4,
        value: Option<Vec<u8>>,
    ) {
        let req = Request {
            tid: handle.tid,
            to: dest,
            id: self.id_for(handle.socket),
            token: None,
            internal: false,
            command: handle.command,
            target: handle.target,
            value,
        };
        self.out.push_back(Transmit {
            socket: handle.socket,
            dest,
            data: Message::Request(req).encode(),
        });
    }

    /// Sends a bare response with the request's tid to a third party `dest` (dht-rpc's "reply
    /// to a third party"): the router answers a client on the server's behalf.
    pub fn reply_to(&mut self, handle: ReplyHandle, dest: SocketAddrV4, value: Option<Vec<u8>>) {
        self.respond(handle.socket, dest, handle.tid, false, None, 0, value);
    }

    /// Answers an application request with an error code (UNKNOWN_COMMAND = 1, or ≥ 16).
    pub fn reply_error(&mut self, handle: ReplyHandle, error: u64) {
        self.respond(
            handle.socket,
            handle.from,
            handle.tid,
            false,
            handle.target,
            error,
            None,
        );
    }

    fn on_response(&mut self, now: Instant, socket: SocketKind, from: SocketAddrV4, r: Response) {
        let Some(f) = self.inflight.remove(&r.tid) else {
            return;
        };
        if f.waiting {
            self.waiting.retain(|t| *t != r.tid);
        } else {
            self.request_completed();
        }
        let valid_id = r.id.filter(|id| *id == node_id(&from));
        if let Some(id) = valid_id {
            self.add_node(now, id, from, socket, r.to);
        } else if is_expected(self.firewalled, socket)
            && self.idless_samples < self.cfg.bootstrap.len().max(1)
        {
            self.idless_samples += 1;
            self.sample(r.to);
        }
        match f.kind {
            Kind::User(id) => self.events.push_back(NodeEvent::Response {
                request: id,
                from,
                response: r,
            }),
            Kind::Query(qid, addr) => {
                let Some(qs) = self.queries.get_mut(&qid) else {
                    return;
                };
                let (steps, ok) = qs.q.on_reply(addr, valid_id, &r, f.slow);
                if ok && qs.kind == QueryKind::User {
                    self.events.push_back(NodeEvent::QueryReply {
                        query: qid,
                        from,
                        response: r,
                    });
                }
                self.down_hints(now, steps);
                self.pump_query(now, qid);
            }
            Kind::Commit(qid) => {
                if let Some(qs) = self.queries.get_mut(&qid) {
                    qs.commits_pending -= 1;
                    if r.error == 0 {
                        qs.commits_ok += 1;
                    }
                    if qs.commits_pending == 0 {
                        self.end_query(now, qid);
                    }
                }
            }
            Kind::TablePing {
                id,
                seen_before,
                newcomer,
            } => {
                self.eviction_pings = self
                    .eviction_pings
                    .saturating_sub(usize::from(newcomer.is_some()));
                let advanced = self
                    .table
                    .get(&id)
                    .is_some_and(|n| n.seen > seen_before || valid_id == Some(id));
                if !advanced {
                    self.table.remove(&id);
                    if let Some((nid, info)) = newcomer {
                        let _ = self.table.add(nid, info);
                    }
                }
            }
            Kind::PingNat => {
                if let Some(fc) = &mut self.firewall_check {
                    fc.pending -= 1;
                    if socket == SocketKind::Server {
                        fc.replies += 1;
                        fc.sampler.add(*r.to.ip(), r.to.port());
                    }
                    if fc.pending == 0 {
                        self.firewall_check_done(now);
                    }
                }
            }
            Kind::DownHintCheck(id) => {
                if valid_id != Some(id) {
                    self.table.remove(&id);
                }
            }
            Kind::Plain => {}
        }
    }

    fn down_hints(&mut self, now: Instant, steps: Vec<Step>) {
        for s in steps {
            if let Step::DownHint { to, down } = s {
                if self.down_hints_sent >= DOWN_HINTS_PER_TICK {
                    return;
                }
                self.down_hints_sent += 1;
                let mut v = down.ip().octets().to_vec();
                v.extend_from_slice(&down.port().to_le_bytes());
                self.send_request(
                    now,
                    to,
                    None,
                    commands::DOWN_HINT,
                    true,
                    None,
                    Some(v),
                    None,
                    0,
                    Kind::Plain,
                );
            }
        }
    }

    fn on_request_timeout(&mut self, now: Instant, f: &Inflight) {
        if let Some(id) = f.dest_id {
            self.table.remove(&id);
        }
        match f.kind {
            Kind::User(id) => self.events.push_back(NodeEvent::RequestFailed {
                request: id,
                error: RequestError::Timeout,
            }),
            Kind::Query(qid, addr) => {
                let Some(qs) = self.queries.get_mut(&qid) else {
                    return;
                };
                let steps = qs.q.on_timeout(addr, f.slow);
                self.down_hints(now, steps);
                self.pump_query(now, qid);
            }
            Kind::Commit(qid) => {
                if let Some(qs) = self.queries.get_mut(&qid) {
                    qs.commits_pending -= 1;
                    if qs.commits_pending == 0 {
                        self.end_query(now, qid);
                    }
                }
            }
            Kind::TablePing { id, newcomer, .. } => {
                self.eviction_pings = self
                    .eviction_pings
                    .saturating_sub(usize::from(newcomer.is_some()));
                self.table.remove(&id);
                if let Some((nid, info)) = newcomer {
                    let _ = self.table.add(nid, info);
                }
            }
            Kind::PingNat => {
                if let Some(fc) = &mut self.firewall_check {
                    fc.pending -= 1;
                    if fc.pending == 0 {
                        self.firewall_check_done(now);
                    }
                }
            }
            Kind::DownHintCheck(id) => {
                self.table.remove(&id);
            }
            Kind::Plain => {}
        }
    }

    // ------------------------------------------------------------------ timers

    /// When [`Node::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_tick.min(self.next_drain);
        for f in self.inflight.values() {
            if !f.waiting {
                t = t.min(f.deadline);
            }
        }
        for (d, _) in &self.delayed {
            t = t.min(*d);
        }
        Some(t)
    }

    /// Runs expired timers: retransmissions, timeouts, delayed pings, the window drain, ticks.
    pub fn handle_timeout(&mut self, now: Instant) {
        // delayed pings
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].0 <= now {
                let (_, t) = self.delayed.swap_remove(i);
                self.out.push_back(t);
            } else {
                i += 1;
            }
        }
        // retransmissions and timeouts
        let due: Vec<u16> = self
            .inflight
            .iter()
            .filter(|(_, f)| !f.waiting && f.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for tid in due {
            let Some(f) = self.inflight.get_mut(&tid) else {
                continue;
            };
            if f.retries_left > 0 {
                f.retries_left -= 1;
                f.deadline = now + REQUEST_TIMEOUT;
                let first_retry = !f.slow;
                f.slow = true;
                let kind = f.kind;
                if self.window_full() {
                    if let Some(f) = self.inflight.get_mut(&tid) {
                        f.waiting = true;
                    }
                    self.waiting.push_back(tid);
                } else if let Some(f) = self.inflight.remove(&tid) {
                    self.transmit_request(&f);
                    self.inflight.insert(tid, f);
                }
                if first_retry {
                    if let Kind::Query(qid, _) = kind {
                        if let Some(qs) = self.queries.get_mut(&qid) {
                            qs.q.on_slow();
                        }
                        self.pump_query(now, qid);
                    }
                }
            } else if let Some(f) = self.inflight.remove(&tid) {
                self.request_completed();
                self.on_request_timeout(now, &f);
            }
        }
        if now >= self.next_drain {
            self.next_drain = now + DRAIN;
            self.drain();
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.on_tick(now);
        }
    }

    fn drain(&mut self) {
        self.drains += 1;
        if self.drains % 10 == 0 {
            self.tokens.rotate();
        }
        self.bucket = (self.bucket + 1) % 4;
        self.window_total -= self.buckets[self.bucket];
        self.buckets[self.bucket] = 0;
        while !self.window_full() {
            let Some(tid) = self.waiting.pop_front() else {
                break;
            };
            if let Some(mut f) = self.inflight.remove(&tid) {
                f.waiting = false;
                self.transmit_request(&f);
                self.inflight.insert(tid, f);
            }
        }
    }

    fn on_tick(&mut self, now: Instant) {
        self.tick += 1;
        self.down_hints_sent = 0;
        if !self.bootstrapped {
            return;
        }
        if self.ephemeral && self.cfg.ephemeral.is_none() {
            self.stable_countdown = self.stable_countdown.saturating_sub(1);
            if self.stable_countdown == 0 {
                if self.nat.host().is_some() && self.nat.host() == self.last_checked_host {
                    self.stable_countdown = RECHECK_TICKS;
                } else {
                    self.stable_countdown = RECHECK_TICKS;
                    self.start_firewall_check(now);
                }
            }
        }
        if self.tick % 8 == 0 {
            self.ping_some(now);
        }
        self.refresh_countdown = self.refresh_countdown.saturating_sub(1);
        if (self.tick % 64 == 0 && self.table.len() < self.cfg.k) || self.refresh_countdown == 0 {
            self.refresh_countdown = REFRESH_TICKS;
            self.refresh(now);
        }
    }

    fn refresh(&mut self, now: Instant) {
        let target = if self.table.is_empty() {
            *self.table.local_id()
        } else {
            let r = self.rng.next_u64();
            self.table
                .random(r)
                .map_or(*self.table.local_id(), |(id, _)| *id)
        };
        self.start_query(
            now,
            QueryKind::Refresh,
            target,
            commands::FIND_NODE,
            true,
            None,
            false,
            &[],
        );
    }

    fn ping_some(&mut self, now: Instant) {
        if self.table.is_empty() {
            return self.refresh(now);
        }
        let mut nodes: Vec<([u8; 32], NodeInfo)> =
            self.table.iter().map(|(id, n)| (*id, *n)).collect();
        nodes.sort_by_key(|(_, n)| n.seen);
        let busy = self.inflight.len() > 2;
        let mut count = if busy { 3 } else { 5 };
        if nodes
            .first()
            .is_some_and(|(_, n)| n.pinged + RECENT_TICKS > self.tick)
        {
            count = 2;
        }
        let tick = self.tick;
        for (id, n) in nodes
            .into_iter()
            .filter(|(_, n)| n.pinged < tick)
            .take(count)
        {
            if let Some(e) = self.table.get_mut(&id) {
                e.pinged = tick;
            }
            self.send_request(
                now,
                n.addr,
                Some(id),
                commands::PING,
                true,
                None,
                None,
                None,
                3,
                Kind::TablePing {
                    id,
                    seen_before: n.seen,
                    newcomer: None,
                },
            );
        }
    }

    // ------------------------------------------------------------------ outputs

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// Fails every pending request and query (the node is going away).
    pub fn destroy(&mut self) {
        let users: Vec<u64> = self
            .inflight
            .values()
            .filter_map(|f| {
                if let Kind::User(id) = f.kind {
                    Some(id)
                } else {
                    None
                }
            })
            .collect();
        for id in users {
            self.events.push_back(NodeEvent::RequestFailed {
                request: id,
                error: RequestError::Destroyed,
            });
        }
        self.inflight.clear();
        self.waiting.clear();
        let qids: Vec<u64> = self
            .queries
            .iter()
            .filter(|(_, q)| q.kind == QueryKind::User)
            .map(|(id, _)| *id)
            .collect();
        for q in qids {
            self.events.push_back(NodeEvent::QueryDone {
                query: q,
                result: Err(QueryError::TooFewNodes),
                requests: 0,
            });
        }
        self.queries.clear();
    }
}
