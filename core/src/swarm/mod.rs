//! The swarm: Hyperswarm's API on top of [`Dht`] (spec `hyperswarm.md`). Join topics as server
//! (announce) and/or client (look up and connect) and get one encrypted connection per remote
//! peer, with Hyperswarm's duplicate rule, connection queue, retry back-offs, flush accounting,
//! peer info, bans and firewall.
//!
//! Every decision lives in the sans-IO [`engine::Engine`]; this module is its tokio driver:
//! it runs the engine's actions (dial, query, unannounce, close) as tasks, feeds their results
//! back, keeps one timer armed at the engine's earliest deadline, and turns engine events into
//! [`SwarmEvent`]s and resolved futures.
//!
//! ```no_run
//! # async fn example(bootstrap: Vec<std::net::SocketAddrV4>) -> std::io::Result<()> {
//! use p2pswarm::swarm::{JoinOptions, Swarm, SwarmEvent, SwarmOptions};
//! use tokio::io::AsyncWriteExt;
//!
//! let (swarm, mut events) = Swarm::new(SwarmOptions {
//!     bootstrap: Some(bootstrap),
//!     ..SwarmOptions::default()
//! })
//! .await?;
//! let topic = p2pswarm::crypto::blake2b256(b"my topic");
//! let discovery = swarm.join(topic, JoinOptions::default()).expect("not destroyed");
//! discovery.flushed().await; // announced
//! while let Some(event) = events.next().await {
//!     if let SwarmEvent::Connection(mut conn, info) = event {
//!         println!("connected to {}", info.public_key);
//!         conn.write_all(b"hello").await?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod engine;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddrV4;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::AbortHandle;

use crate::crypto::{KeyPair, PublicKey};
use crate::dht::{Connection, Dht};
use crate::rpc::driver::DhtConfig;
use engine::{
    Action, CloseReason, ConnId, Engine, Event, PeerSnapshot, QueryId, QueryKind, WaitId,
};
pub use engine::{DiscoveryStatus, Stats, SwarmError};

/// Hyperswarm 4.17's defaults.
pub const DEFAULT_MAX_PEERS: usize = 64;
/// Concurrent outgoing attempts.
pub const DEFAULT_MAX_PARALLEL: usize = 3;

/// A swarm firewall: `true` rejects (and bans) the key. It runs inside the swarm's state
/// lock: it must not call the swarm.
pub type SwarmFirewall = Arc<dyn Fn(&PublicKey) -> bool + Send + Sync>;

/// Options of [`Swarm::new`] (hyperswarm's constructor options).
pub struct SwarmOptions {
    /// Identity (default: from `seed`, else the DHT node's, else random).
    pub key_pair: Option<KeyPair>,
    /// 32-byte seed for a deterministic key pair.
    pub seed: Option<[u8; 32]>,
    /// Soft cap on connections (64).
    pub max_peers: usize,
    /// Cap on outgoing connections (unbounded).
    pub max_client_connections: usize,
    /// Concurrent outgoing attempts (3).
    pub max_parallel: usize,
    /// `true` rejects (and bans) a remote key.
    pub firewall: Option<SwarmFirewall>,
    /// An existing DHT node (it is destroyed with the swarm).
    pub dht: Option<Dht>,
    /// Bootstrap nodes for a new DHT node (`None`: the public HyperDHT network).
    pub bootstrap: Option<Vec<SocketAddrV4>>,
    /// Preferred UDP port of a new DHT node (tried with the next four; else any port).
    pub port: Option<u16>,
    /// Retry delays S, M, L, X (default: hyperswarm's randomised 1 s / 5 s / 15 s / 10 min).
    pub backoffs: Option<[Duration; 4]>,
    /// Random extra delay per retry timer (500 ms).
    pub jitter: Duration,
    /// A blind-relay server's key (hyperswarm's `relayThrough`, non-function form): used when
    /// our NAT randomizes ports, and for a peer whose last attempt failed with a hole-punch
    /// error (HOLEPUNCH_ABORTED, HOLEPUNCH_DOUBLE_RANDOMIZED_NATS, CANNOT_HOLEPUNCH,
    /// REMOTE_NOT_HOLEPUNCHABLE), which is then retried at once through the relay.
    pub relay_through: Option<PublicKey>,
}

impl std::fmt::Debug for SwarmOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmOptions")
            .field("max_peers", &self.max_peers)
            .field("max_parallel", &self.max_parallel)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl Default for SwarmOptions {
    fn default() -> Self {
        Self {
            key_pair: None,
            seed: None,
            max_peers: DEFAULT_MAX_PEERS,
            max_client_connections: usize::MAX,
            max_parallel: DEFAULT_MAX_PARALLEL,
            firewall: None,
            dht: None,
            bootstrap: None,
            port: None,
            backoffs: None,
            jitter: Duration::from_millis(500),
            relay_through: None,
        }
    }
}

/// Roles for a topic (`join(topic, {server, client, limit})`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinOptions {
    /// Announce ourselves under the topic and accept connections (default true).
    pub server: bool,
    /// Look up the topic and connect to the peers found (default true).
    pub client: bool,
    /// At most this many peer records per lookup are used (default unlimited).
    pub limit: Option<usize>,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            server: true,
            client: true,
            limit: None,
        }
    }
}

impl JoinOptions {
    /// Server only.
    pub fn server() -> Self {
        Self {
            client: false,
            ..Self::default()
        }
    }

    /// Client only.
    pub fn client() -> Self {
        Self {
            server: false,
            ..Self::default()
        }
    }
}

/// What the swarm knows about a remote peer (hyperswarm's `PeerInfo`), as of the event or
/// call that produced it; [`PeerInfo::ban`] and [`PeerInfo::reconnect`] act on the swarm.
#[derive(Clone)]
pub struct PeerInfo {
    /// The peer's key.
    pub public_key: PublicKey,
    /// Topics on which we found it as a client (in order; empty for peers that only dialled us).
    pub topics: Vec<[u8; 32]>,
    /// Priority ≥ normal.
    pub prioritized: bool,
    /// Banned.
    pub banned: bool,
    /// Added with `join_peer`.
    pub explicit: bool,
    /// Our last connection to it was outgoing.
    pub client: bool,
    /// Failed or short-lived attempts in a row.
    pub attempts: u32,
    /// Relay addresses from its record.
    pub relay_addresses: Vec<SocketAddrV4>,
    swarm: Weak<Shared>,
}

impl std::fmt::Debug for PeerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerInfo")
            .field("public_key", &self.public_key)
            .field("topics", &self.topics.len())
            .field("prioritized", &self.prioritized)
            .field("banned", &self.banned)
            .field("explicit", &self.explicit)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PeerInfo {
    fn eq(&self, other: &Self) -> bool {
        self.public_key == other.public_key
            && self.topics == other.topics
            && self.prioritized == other.prioritized
            && self.banned == other.banned
            && self.explicit == other.explicit
            && self.client == other.client
    }
}

impl PeerInfo {
    fn from_snapshot(p: PeerSnapshot, swarm: Weak<Shared>) -> Self {
        Self {
            public_key: p.public_key,
            topics: p.topics,
            prioritized: p.prioritized,
            banned: p.banned,
            explicit: p.explicit,
            client: p.client,
            attempts: p.attempts,
            relay_addresses: p.relay_addresses,
            swarm,
        }
    }

    /// Our last connection to it was incoming.
    pub fn server(&self) -> bool {
        !self.client
    }

    /// Bans (`true`) or un-bans the peer. Existing connections stay; no `Ban` event.
    pub fn ban(&self, banned: bool) {
        if let Some(s) = self.swarm.upgrade() {
            Swarm { shared: s }.ban(&self.public_key, banned);
        }
    }

    /// Whether the peer is retried after it disconnects (hyperswarm's `reconnect(val)`).
    pub fn reconnect(&self, val: bool) {
        if let Some(s) = self.swarm.upgrade() {
            with(&s, |st| st.engine.reconnect(&self.public_key, val));
        }
    }
}

/// Swarm events.
#[derive(Debug)]
#[non_exhaustive]
pub enum SwarmEvent {
    /// A new connection (one per remote peer at a time).
    Connection(Box<SwarmConnection>, PeerInfo),
    /// Counts changed (hyperswarm's `'update'`).
    Update,
    /// The firewall rejected and banned a peer ("Peer is firewalled").
    Ban(PeerInfo),
}

/// The swarm's event stream.
#[derive(Debug)]
pub struct SwarmEvents {
    rx: mpsc::UnboundedReceiver<SwarmEvent>,
}

impl SwarmEvents {
    /// The next event; `None` once the swarm is gone.
    pub async fn next(&mut self) -> Option<SwarmEvent> {
        self.rx.recv().await
    }

    /// An event if one is ready.
    pub fn try_next(&mut self) -> Option<SwarmEvent> {
        self.rx.try_recv().ok()
    }

    /// Polls for the next event.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<SwarmEvent>> {
        self.rx.poll_recv(cx)
    }
}

#[derive(Debug, Default)]
struct ConnShared {
    cancelled: AtomicBool,
    reported: AtomicBool,
    raw_read: AtomicU64,
    raw_written: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl ConnShared {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        for w in lock(&self.wakers).drain(..) {
            w.wake();
        }
    }

    fn check(&self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "Duplicate connection",
            ));
        }
        let mut w = lock(&self.wakers);
        if !w.iter().any(|x| x.will_wake(cx.waker())) {
            w.push(cx.waker().clone());
        }
        Ok(())
    }

    fn established(&self) -> bool {
        self.raw_read.load(Ordering::Relaxed) > 0 && self.raw_written.load(Ordering::Relaxed) > 0
    }
}

/// A swarm connection: the encrypted stream plus the swarm's bookkeeping. The swarm may close
/// it (a duplicate, destroy, suspend): reads and writes then fail with `ConnectionAborted`.
/// Dropping it tells the swarm the peer is gone.
pub struct SwarmConnection {
    conn: Connection,
    shared: Arc<ConnShared>,
    swarm: Weak<Shared>,
    key: PublicKey,
    id: ConnId,
    is_initiator: bool,
}

impl std::fmt::Debug for SwarmConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmConnection")
            .field("remote", &self.key)
            .field("is_initiator", &self.is_initiator)
            .finish_non_exhaustive()
    }
}

impl SwarmConnection {
    /// The remote peer's key.
    pub fn remote_public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The handshake hash.
    pub fn handshake_hash(&self) -> Option<&[u8; 64]> {
        self.conn.handshake_hash()
    }

    /// Whether we dialled.
    pub fn is_initiator(&self) -> bool {
        self.is_initiator
    }

    /// Where the UDX stream runs to: the peer, or a blind relay's address when relayed.
    pub fn remote_address(&self) -> Option<std::net::SocketAddr> {
        self.conn.get_ref().remote().map(|r| r.addr)
    }

    /// Encrypted bytes read and written so far (frames incl. keep-alives).
    pub fn raw_bytes(&self) -> (u64, u64) {
        (
            self.conn.engine().raw_bytes_read(),
            self.conn.engine().raw_bytes_written(),
        )
    }

    /// The underlying stream (its use bypasses the swarm's close signal).
    pub fn stream(&mut self) -> &mut Connection {
        &mut self.conn
    }

    fn sync(&self) {
        let (r, w) = self.raw_bytes();
        self.shared.raw_read.store(r, Ordering::Relaxed);
        self.shared.raw_written.store(w, Ordering::Relaxed);
        let e = self.conn.engine();
        if e.error().is_some() || (e.is_local_ended() && e.is_remote_ended()) {
            self.report_closed();
        }
    }

    /// Tells the swarm this connection is over (once): it failed, or both sides ended. Like
    /// hyperswarm's `'close'`, this counts it out and may schedule a reconnect even while the
    /// object is still held.
    fn report_closed(&self) {
        if self.shared.reported.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(s) = self.swarm.upgrade() {
            let id = self.id;
            with(&s, |st| {
                st.conns.remove(&id);
                st.engine.handle_closed(Instant::now(), id);
            });
        }
    }

    fn cancelled(&self) -> io::Result<()> {
        if self.shared.cancelled.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "Duplicate connection",
            ));
        }
        Ok(())
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.cancelled()?;
        let r = self.conn.send(msg).await.map_err(io::Error::other);
        self.sync();
        r
    }

    /// The next message; `None` once the peer ended.
    pub async fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.cancelled()?;
        let shared = self.shared.clone();
        let r = {
            let recv = self.conn.recv();
            tokio::pin!(recv);
            std::future::poll_fn(|cx| {
                shared.check(cx)?;
                recv.as_mut().poll(cx).map_err(io::Error::other)
            })
            .await
        };
        self.sync();
        r
    }
}

use std::future::Future;

impl Drop for SwarmConnection {
    fn drop(&mut self) {
        self.report_closed();
    }
}

impl AsyncRead for SwarmConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.shared.check(cx)?;
        let r = Pin::new(&mut self.conn).poll_read(cx, buf);
        self.sync();
        if matches!(r, Poll::Ready(Err(_))) {
            self.report_closed();
        }
        r
    }
}

impl AsyncWrite for SwarmConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.shared.check(cx)?;
        let r = Pin::new(&mut self.conn).poll_write(cx, buf);
        self.sync();
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.conn).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.conn).poll_shutdown(cx);
        if r.is_ready() {
            self.sync();
        }
        r
    }
}

struct State {
    engine: Engine,
    waits: HashMap<WaitId, oneshot::Sender<bool>>,
    /// Connections handed to the user.
    conns: HashMap<ConnId, Arc<ConnShared>>,
    /// Streams waiting for the engine's decision (opened dials, accepted incoming).
    pending: HashMap<ConnId, (Connection, bool)>,
    dials: HashMap<ConnId, AbortHandle>,
    queries: HashMap<QueryId, AbortHandle>,
    tasks: Vec<AbortHandle>,
}

struct Shared {
    dht: Dht,
    key_pair: KeyPair,
    relay_through: Option<PublicKey>,
    state: Mutex<State>,
    events: mpsc::UnboundedSender<SwarmEvent>,
    timer: Arc<Notify>,
    self_ref: Weak<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f` on the state, then the engine's outputs. Events are queued while the state is
/// locked, so that they reach the user in the engine's order even when two tasks drive the
/// engine at once; events the user can no longer receive are dropped after unlocking (a
/// dropped connection locks the state).
fn with<R>(shared: &Arc<Shared>, f: impl FnOnce(&mut State) -> R) -> R {
    let (r, undelivered) = {
        let mut st = lock(&shared.state);
        let r = f(&mut st);
        let out = drive(shared, &mut st);
        let undelivered: Vec<SwarmEvent> = out
            .into_iter()
            .filter_map(|e| shared.events.send(e).err().map(|e| e.0))
            .collect();
        (r, undelivered)
    };
    drop(undelivered);
    shared.timer.notify_one();
    r
}

fn drive(shared: &Arc<Shared>, st: &mut State) -> Vec<SwarmEvent> {
    let mut out = Vec::new();
    loop {
        if let Some(a) = st.engine.poll_action() {
            run_action(shared, st, a);
        } else if let Some(e) = st.engine.poll_event() {
            match e {
                Event::Connection { conn, peer } => {
                    let Some((stream, is_initiator)) = st.pending.remove(&conn) else {
                        continue;
                    };
                    let cs = Arc::new(ConnShared::default());
                    st.conns.insert(conn, cs.clone());
                    // The transport's close is noticed even while nobody reads the connection
                    // (hyperswarm's 'close' is event-driven too).
                    let watch = stream.get_ref().close_watch();
                    let (weak, cs2) = (shared.self_ref.clone(), cs.clone());
                    spawn_tracked(st, async move {
                        let _ = watch.closed().await;
                        if cs2.reported.swap(true, Ordering::SeqCst) {
                            return;
                        }
                        if let Some(s) = weak.upgrade() {
                            with(&s, |st| {
                                st.conns.remove(&conn);
                                st.engine.handle_closed(Instant::now(), conn);
                            });
                        }
                    });
                    let sc = SwarmConnection {
                        conn: stream,
                        shared: cs,
                        swarm: shared.self_ref.clone(),
                        key: peer.public_key,
                        id: conn,
                        is_initiator,
                    };
                    let info = PeerInfo::from_snapshot(peer, shared.self_ref.clone());
                    out.push(SwarmEvent::Connection(Box::new(sc), info));
                }
                Event::Update => out.push(SwarmEvent::Update),
                Event::Ban { peer } => out.push(SwarmEvent::Ban(PeerInfo::from_snapshot(
                    peer,
                    shared.self_ref.clone(),
                ))),
                Event::Resolved { wait, ok } => {
                    if let Some(tx) = st.waits.remove(&wait) {
                        let _ = tx.send(ok);
                    }
                }
            }
        } else {
            return out;
        }
    }
}

fn spawn_tracked(st: &mut State, fut: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
    let h = tokio::spawn(fut).abort_handle();
    st.tasks.retain(|t| !t.is_finished());
    st.tasks.push(h.clone());
    h
}

#[allow(clippy::needless_pass_by_value)]
fn run_action(shared: &Arc<Shared>, st: &mut State, a: Action) {
    let weak = shared.self_ref.clone();
    match a {
        Action::Listen => {
            spawn_tracked(st, listen_task(weak));
        }
        Action::Dial {
            conn,
            key,
            force_relay,
            ..
        } => {
            let h = spawn_tracked(st, async move {
                let Some(s) = weak.upgrade() else { return };
                let (dht, kp) = (s.dht.clone(), s.key_pair.clone());
                let relay = s
                    .relay_through
                    .filter(|_| force_relay || nat_randomized(&dht));
                drop(s);
                let opts = crate::dht::ConnectOptions {
                    relay_through: relay,
                    ..crate::dht::ConnectOptions::default()
                };
                let result = dht.connect_with_options(Some(&kp), &key, &opts).await;
                let Some(s) = weak.upgrade() else { return };
                let late = with(&s, |st| {
                    // Not live: the engine closed the attempt (a duplicate won) while the dial
                    // finished; its connection is dropped below, outside the lock (the peer
                    // gets a DESTROY, as when JS destroys a losing attempt).
                    let live = st.dials.remove(&conn).is_some();
                    let now = Instant::now();
                    match result {
                        Ok(c) if !live => Some(c),
                        Ok(c) => {
                            st.pending.insert(conn, (c, true));
                            st.engine.handle_opened(now, conn);
                            None
                        }
                        Err(e) => {
                            tracing::debug!(peer = %key, error = %e, "swarm connect failed");
                            // hyperswarm's shouldForceRelaying
                            let holepunch = matches!(
                                e,
                                crate::dht::ConnectError::HolepunchAborted
                                    | crate::dht::ConnectError::HolepunchDoubleRandomizedNats
                                    | crate::dht::ConnectError::CannotHolepunch
                                    | crate::dht::ConnectError::RemoteNotHolepunchable
                            );
                            st.engine.handle_attempt_error(conn, holepunch);
                            st.engine.handle_closed(now, conn);
                            None
                        }
                    }
                });
                drop(late);
            });
            st.dials.insert(conn, h);
        }
        Action::Close { conn, reason } => {
            tracing::debug!(conn, ?reason, "swarm closes a connection");
            if let Some(h) = st.dials.remove(&conn) {
                h.abort();
            }
            st.pending.remove(&conn);
            if let Some(cs) = st.conns.remove(&conn) {
                cs.reported.store(true, Ordering::SeqCst);
                cs.cancel();
            }
            let _ = reason == CloseReason::Duplicate;
            st.engine.handle_closed(Instant::now(), conn);
        }
        Action::KeepAlive { conn } => {
            // Keep-alives already flow every 5 s on idle connections (hyperdht's
            // connectionKeepAlive); an extra probe is not needed for correctness.
            tracing::trace!(conn, "keep-alive probe requested");
        }
        Action::Query { id, topic, kind } => {
            let h = spawn_tracked(st, query_task(weak, id, topic, kind));
            st.queries.insert(id, h);
        }
        Action::CancelQuery { id } => {
            if let Some(h) = st.queries.remove(&id) {
                h.abort();
            }
        }
        Action::Unannounce { id, topic } => {
            spawn_tracked(st, async move {
                let Some(s) = weak.upgrade() else { return };
                let (dht, kp) = (s.dht.clone(), s.key_pair.clone());
                drop(s);
                let r =
                    tokio::time::timeout(Duration::from_secs(20), dht.unannounce(topic, &kp)).await;
                tracing::debug!(?r, "unannounced");
                if let Some(s) = weak.upgrade() {
                    with(&s, |st| {
                        st.engine.handle_unannounce_done(Instant::now(), id);
                    });
                }
            });
        }
    }
}

/// Whether our NAT randomizes ports (hyperdht's `dht.randomized`: a sampled public host whose
/// port is not consistent).
fn nat_randomized(dht: &Dht) -> bool {
    matches!(dht.rpc().public_address(), (Some(_), 0)) && dht.rpc().is_firewalled()
}

/// The relay a swarm's server names (hyperswarm: the relay when our NAT is randomized).
fn s_relay_for_server(weak: &Weak<Shared>) -> Option<PublicKey> {
    let s = weak.upgrade()?;
    s.relay_through.filter(|_| nat_randomized(&s.dht))
}

async fn listen_task(weak: Weak<Shared>) {
    let Some(s) = weak.upgrade() else { return };
    let (dht, kp) = (s.dht.clone(), s.key_pair.clone());
    drop(s);
    let fw_weak = weak.clone();
    let firewall: crate::dht::connect::FirewallFn = Arc::new(move |key, _, _| {
        fw_weak
            .upgrade()
            .is_none_or(|s| with(&s, |st| st.engine.handle_firewall(key)))
    });
    let relay = s_relay_for_server(&weak);
    let server = dht.listen(kp, Some(firewall)).await;
    if let Ok(server) = &server {
        server.set_relay_through(relay);
    }
    let Some(s) = weak.upgrade() else { return };
    with(&s, |st| st.engine.handle_listen_done(Instant::now()));
    drop(s);
    let mut server = match server {
        Ok(server) => server,
        Err(e) => {
            tracing::warn!(error = %e, "swarm could not listen");
            return;
        }
    };
    while let Some(conn) = server.accept().await {
        let Some(s) = weak.upgrade() else { return };
        let Some(key) = conn.remote_public_key().copied() else {
            continue;
        };
        with(&s, |st| {
            let id = st.engine.new_conn_id();
            st.pending.insert(id, (conn, false));
            let State { engine, conns, .. } = st;
            engine.handle_incoming(Instant::now(), id, key, &|c| {
                conns.get(&c).is_some_and(|cs| cs.established())
            });
        });
    }
}

async fn query_task(weak: Weak<Shared>, id: QueryId, topic: [u8; 32], kind: QueryKind) {
    let Some(s) = weak.upgrade() else { return };
    let (dht, kp) = (s.dht.clone(), s.key_pair.clone());
    drop(s);
    let report = |peers: Vec<crate::dht::messages::PeerRecord>| {
        if let Some(s) = weak.upgrade() {
            with(&s, |st| {
                for p in peers {
                    st.engine.handle_query_peer(
                        Instant::now(),
                        id,
                        p.public_key,
                        p.relay_addresses,
                    );
                }
            });
        }
    };
    let ok = match kind {
        QueryKind::Announce { client, .. } => {
            match dht.announce_and_lookup(topic, &kp, &[]).await {
                Ok((_, replies)) => {
                    if client {
                        for r in replies {
                            report(r.peers);
                        }
                    }
                    true
                }
                Err(e) => {
                    tracing::debug!(error = %e, "announce failed");
                    false
                }
            }
        }
        QueryKind::Lookup | QueryKind::LookupAndUnannounce => {
            let mut rx = dht.lookup_stream(topic);
            while let Some(r) = rx.recv().await {
                report(r.peers);
            }
            if kind == QueryKind::LookupAndUnannounce {
                let _ = dht.unannounce(topic, &kp).await;
            }
            true
        }
    };
    if let Some(s) = weak.upgrade() {
        with(&s, |st| {
            st.queries.remove(&id);
            st.engine.handle_query_done(Instant::now(), id, ok);
        });
    }
}

async fn timer_task(weak: Weak<Shared>) {
    loop {
        let Some(s) = weak.upgrade() else { return };
        let (deadline, destroyed) = {
            let st = lock(&s.state);
            (st.engine.poll_timeout(), st.engine.is_destroyed())
        };
        if destroyed {
            return;
        }
        let notify = s.timer.clone();
        drop(s);
        let notified = notify.notified();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {
                let Some(s) = weak.upgrade() else { return };
                with(&s, |st| st.engine.handle_timeout(Instant::now()));
            }
            () = notified => {}
        }
    }
}

/// A topic's discovery session (what [`Swarm::join`] returns; hyperswarm's
/// `PeerDiscoverySession`).
#[derive(Debug, Clone)]
pub struct PeerDiscovery {
    swarm: Swarm,
    session: engine::SessionId,
    topic: [u8; 32],
}

impl PeerDiscovery {
    /// The topic.
    pub fn topic(&self) -> &[u8; 32] {
        &self.topic
    }

    /// Waits for the discovery's query in flight (announce and/or lookup); `false` if it failed.
    pub async fn flushed(&self) -> bool {
        let sid = self.session;
        self.swarm.wait(|e, _| Ok(e.session_flushed(sid))).await
    }

    /// Changes this session's roles and refreshes now; `Ok(false)` if the query failed.
    pub async fn refresh(&self, opts: JoinOptions) -> Result<bool, SwarmError> {
        let sid = self.session;
        let rx = self
            .swarm
            .call(|e, now| e.session_refresh(now, sid, opts.server, opts.client, opts.limit))?;
        Ok(rx.await.unwrap_or(false))
    }

    /// Ends this session (the last one leaves the topic).
    pub async fn destroy(&self) {
        let sid = self.session;
        self.swarm
            .wait(|e, now| Ok(e.session_destroy(now, sid)))
            .await;
    }
}

/// A Hyperswarm.
#[derive(Clone)]
pub struct Swarm {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("public_key", self.shared.key_pair.public_key())
            .finish_non_exhaustive()
    }
}

impl Swarm {
    /// A swarm (binding a DHT node unless `opts.dht` is given). Events arrive on the returned
    /// stream.
    pub async fn new(opts: SwarmOptions) -> io::Result<(Self, SwarmEvents)> {
        let key_pair = opts
            .key_pair
            .clone()
            .or_else(|| opts.seed.map(|s| KeyPair::from_seed(&s)));
        let dht = if let Some(d) = opts.dht.clone() {
            d
        } else {
            {
                let mut cfg = DhtConfig::default();
                if let Some(b) = opts.bootstrap.clone() {
                    cfg.bootstrap = b;
                }
                if let Some(p) = opts.port {
                    cfg.port = p;
                }
                Dht::bind(cfg).await?
            }
        };
        let key_pair = key_pair.unwrap_or_else(|| dht.key_pair().clone());
        Ok(Self::with_dht(dht, key_pair, opts))
    }

    /// A swarm on an existing DHT node with `key_pair` (the `dht`, `key_pair`, `seed` and
    /// `bootstrap` fields of `opts` are ignored).
    pub fn with_dht(dht: Dht, key_pair: KeyPair, opts: SwarmOptions) -> (Self, SwarmEvents) {
        let cfg = engine::Config {
            max_peers: opts.max_peers,
            max_client_connections: opts.max_client_connections,
            max_parallel: opts.max_parallel,
            backoffs: opts.backoffs,
            jitter: opts.jitter,
            relay_configured: opts.relay_through.is_some(),
        };
        let seed: [u8; 8] = crate::crypto::random_array();
        let mut engine = Engine::new(*key_pair.public_key(), cfg, u64::from_le_bytes(seed));
        if let Some(f) = opts.firewall {
            engine.set_firewall(Box::new(move |k| f(k)));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let relay_through = opts.relay_through;
        let shared = Arc::new_cyclic(|w| Shared {
            dht,
            key_pair,
            relay_through,
            state: Mutex::new(State {
                engine,
                waits: HashMap::new(),
                conns: HashMap::new(),
                pending: HashMap::new(),
                dials: HashMap::new(),
                queries: HashMap::new(),
                tasks: Vec::new(),
            }),
            events: tx,
            timer: Arc::new(Notify::new()),
            self_ref: w.clone(),
        });
        let t = tokio::spawn(timer_task(Arc::downgrade(&shared))).abort_handle();
        lock(&shared.state).tasks.push(t);
        (Self { shared }, SwarmEvents { rx })
    }

    fn call(
        &self,
        f: impl FnOnce(&mut Engine, Instant) -> Result<WaitId, SwarmError>,
    ) -> Result<oneshot::Receiver<bool>, SwarmError> {
        with(&self.shared, |st| {
            let w = f(&mut st.engine, Instant::now())?;
            let (tx, rx) = oneshot::channel();
            st.waits.insert(w, tx);
            Ok(rx)
        })
    }

    async fn wait(
        &self,
        f: impl FnOnce(&mut Engine, Instant) -> Result<WaitId, SwarmError>,
    ) -> bool {
        match self.call(f) {
            Ok(rx) => rx.await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Our key.
    pub fn public_key(&self) -> &PublicKey {
        self.shared.key_pair.public_key()
    }

    /// Our key pair.
    pub fn key_pair(&self) -> &KeyPair {
        &self.shared.key_pair
    }

    /// The DHT node.
    pub fn dht(&self) -> &Dht {
        &self.shared.dht
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        lock(&self.shared.state).engine.connections()
    }

    /// Outgoing attempts in progress.
    pub fn connecting(&self) -> usize {
        lock(&self.shared.state).engine.connecting()
    }

    /// Known peers (connected or not).
    pub fn peers(&self) -> Vec<PeerInfo> {
        let snaps = lock(&self.shared.state).engine.peers();
        snaps
            .into_iter()
            .map(|p| PeerInfo::from_snapshot(p, self.shared.self_ref.clone()))
            .collect()
    }

    /// One peer.
    pub fn peer(&self, key: &PublicKey) -> Option<PeerInfo> {
        let snap = lock(&self.shared.state).engine.peer(key);
        snap.map(|p| PeerInfo::from_snapshot(p, self.shared.self_ref.clone()))
    }

    /// Peers added with `join_peer`, in order.
    pub fn explicit_peers(&self) -> Vec<PublicKey> {
        lock(&self.shared.state).engine.explicit_peers()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.state).engine.stats()
    }

    /// Bans or un-bans a peer (existing connections stay).
    pub fn ban(&self, key: &PublicKey, banned: bool) {
        with(&self.shared, |st| st.engine.ban(key, banned));
    }

    /// Joins a topic: a new discovery session that announces (server) and/or looks up and
    /// connects (client), refreshing every 10–12 minutes.
    pub fn join(&self, topic: [u8; 32], opts: JoinOptions) -> Result<PeerDiscovery, SwarmError> {
        let session = with(&self.shared, |st| {
            st.engine
                .join(Instant::now(), topic, opts.server, opts.client, opts.limit)
                .map(|(sid, _)| sid)
        })?;
        Ok(PeerDiscovery {
            swarm: self.clone(),
            session,
            topic,
        })
    }

    /// Leaves a topic: stops its discovery and unannounces it. Connections stay.
    pub async fn leave(&self, topic: [u8; 32]) {
        self.wait(|e, now| Ok(e.leave(now, topic))).await;
    }

    /// The topic's discovery state.
    pub fn status(&self, topic: &[u8; 32]) -> Option<DiscoveryStatus> {
        lock(&self.shared.state).engine.status(topic)
    }

    /// Joined topics in join order.
    pub fn topics(&self) -> Vec<[u8; 32]> {
        lock(&self.shared.state).engine.topics()
    }

    /// Keeps a connection to `key` (dialled now and re-dialled forever).
    pub fn join_peer(&self, key: PublicKey) {
        with(&self.shared, |st| st.engine.join_peer(Instant::now(), key));
    }

    /// Stops keeping a connection to `key` (an existing one stays).
    pub fn leave_peer(&self, key: &PublicKey) {
        with(&self.shared, |st| st.engine.leave_peer(key));
    }

    /// Starts accepting connections on our key (idempotent); resolves when listening.
    pub async fn listen(&self) -> Result<(), SwarmError> {
        let rx = self.call(|e, now| {
            e.listen()?;
            let w = e.flush_listen_wait(now);
            Ok(w)
        })?;
        let _ = rx.await;
        Ok(())
    }

    /// Waits until every discovery finished its query in flight and every peer queued so far
    /// was tried. `false` if the swarm was destroyed meanwhile.
    pub async fn flush(&self) -> bool {
        self.wait(|e, now| Ok(e.flush(now))).await
    }

    /// Drops every connection, stops discovery (unannouncing) and retries until
    /// [`Swarm::resume`] (what a mobile app calls when backgrounded).
    #[allow(clippy::unused_async)]
    pub async fn suspend(&self) {
        with(&self.shared, |st| st.engine.suspend(Instant::now()));
    }

    /// Refreshes every discovery and re-dials explicit peers.
    #[allow(clippy::unused_async)]
    pub async fn resume(&self) {
        with(&self.shared, |st| st.engine.resume(Instant::now()));
    }

    /// Leaves every topic (unannouncing), closes every connection and the DHT node.
    pub async fn destroy(&self) {
        let leaves: Vec<oneshot::Receiver<bool>> = with(&self.shared, |st| {
            let ws = st.engine.destroy(Instant::now());
            ws.into_iter()
                .map(|w| {
                    let (tx, rx) = oneshot::channel();
                    st.waits.insert(w, tx);
                    rx
                })
                .collect()
        });
        for rx in leaves {
            let _ = tokio::time::timeout(Duration::from_secs(20), rx).await;
        }
        let tasks: Vec<AbortHandle> = {
            let mut st = lock(&self.shared.state);
            st.dials.clear();
            st.queries.clear();
            let pending: Vec<_> = st.pending.drain().collect();
            drop(st);
            drop(pending);
            std::mem::take(&mut lock(&self.shared.state).tasks)
        };
        for t in tasks {
            t.abort();
        }
        self.shared.timer.notify_one();
        self.shared.dht.destroy();
    }
}
