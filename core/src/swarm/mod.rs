//! The swarm: Hyperswarm's API on top of [`Dht`] (spec `hyperswarm.md`). Join topics as server
//! (announce) and/or client (look up and connect), get one encrypted connection per remote peer,
//! with Hyperswarm's duplicate-connection rule, a bounded connection queue with retries, peer
//! info, bans and a firewall.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, Notify};

use crate::crypto::{KeyPair, PublicKey};
use crate::dht::{Connection, Dht, Server};

/// Defaults of Hyperswarm 4.17.
pub const DEFAULT_MAX_PEERS: usize = 64;
/// Concurrent outgoing attempts.
pub const DEFAULT_MAX_PARALLEL: usize = 3;
const ANNOUNCE_EVERY: Duration = Duration::from_secs(5 * 60);
const LOOKUP_EVERY: Duration = Duration::from_secs(10 * 60);
const BACKOFFS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(15),
];

/// A swarm firewall: `true` rejects (and bans) the key.
pub type SwarmFirewall = Arc<dyn Fn(&PublicKey) -> bool + Send + Sync>;

/// Swarm options.
pub struct SwarmConfig {
    /// Identity (default: random).
    pub key_pair: Option<KeyPair>,
    /// Soft cap on connections (64).
    pub max_peers: usize,
    /// Concurrent outgoing attempts (3).
    pub max_parallel: usize,
    /// `true` rejects (and bans) a remote key.
    pub firewall: Option<SwarmFirewall>,
}

impl std::fmt::Debug for SwarmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmConfig")
            .field("max_peers", &self.max_peers)
            .field("max_parallel", &self.max_parallel)
            .finish_non_exhaustive()
    }
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            key_pair: None,
            max_peers: DEFAULT_MAX_PEERS,
            max_parallel: DEFAULT_MAX_PARALLEL,
            firewall: None,
        }
    }
}

/// What the swarm knows about a remote peer (JS `PeerInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's key.
    pub public_key: PublicKey,
    /// Topics on which it was found (as a client).
    pub topics: Vec<[u8; 32]>,
    /// Whether reconnecting to it is prioritised.
    pub prioritized: bool,
    /// Whether it is banned.
    pub banned: bool,
    /// Whether it was added with `join_peer`.
    pub explicit: bool,
    attempts: u32,
    proven: bool,
    queued: bool,
}

/// Swarm events.
#[derive(Debug)]
#[non_exhaustive]
pub enum SwarmEvent {
    /// A new connection (one per remote peer at a time).
    Connection(Box<SwarmConnection>, PeerInfo),
    /// Counts changed.
    Update,
}

/// Server/client roles for a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinOptions {
    /// Announce ourselves under the topic and accept connections.
    pub server: bool,
    /// Look up the topic and connect to the peers found.
    pub client: bool,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            server: true,
            client: true,
        }
    }
}

#[derive(Debug)]
struct Cancel {
    flag: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Cancel {
    fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        for w in lock(&self.wakers).drain(..) {
            w.wake();
        }
    }

    fn check(&self, cx: &mut Context<'_>) -> Result<(), io::Error> {
        if self.flag.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "duplicate connection",
            ));
        }
        lock(&self.wakers).push(cx.waker().clone());
        Ok(())
    }
}

/// A swarm connection: the encrypted stream plus the swarm's bookkeeping (the swarm may close a
/// duplicate; dropping it tells the swarm the peer is gone).
pub struct SwarmConnection {
    conn: Connection,
    cancel: Arc<Cancel>,
    swarm: Weak<Inner>,
    key: PublicKey,
    id: u64,
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

    /// The underlying stream.
    pub fn stream(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for SwarmConnection {
    fn drop(&mut self) {
        if let Some(inner) = self.swarm.upgrade() {
            inner.on_close(&self.key, self.id);
        }
    }
}

impl AsyncRead for SwarmConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = self.cancel.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.conn).poll_read(cx, buf)
    }
}

impl AsyncWrite for SwarmConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.cancel.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.conn).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.conn).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.conn).poll_shutdown(cx)
    }
}

#[derive(Debug)]
struct ConnEntry {
    id: u64,
    opened: Instant,
    cancel: Arc<Cancel>,
}

#[derive(Debug, Default)]
struct State {
    topics: HashMap<[u8; 32], JoinOptions>,
    peers: HashMap<PublicKey, PeerInfo>,
    connections: HashMap<PublicKey, ConnEntry>,
    connecting: HashSet<PublicKey>,
    queue: VecDeque<PublicKey>,
    discovering: usize,
    next_id: u64,
    server: bool,
    destroyed: bool,
}

struct Inner {
    dht: Dht,
    key_pair: KeyPair,
    cfg: SwarmConfig,
    state: Mutex<State>,
    events: mpsc::UnboundedSender<SwarmEvent>,
    changed: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    fn on_close(&self, key: &PublicKey, id: u64) {
        let mut st = lock(&self.state);
        if st.connections.get(key).is_some_and(|c| c.id == id) {
            let entry = st.connections.remove(key);
            let short = entry.is_some_and(|e| e.opened.elapsed() < Duration::from_secs(15));
            if let Some(p) = st.peers.get_mut(key) {
                if !short {
                    p.attempts = 0;
                }
            }
        }
        drop(st);
        let _ = self.events.send(SwarmEvent::Update);
        self.changed.notify_waiters();
    }

    fn firewalled(&self, key: &PublicKey) -> bool {
        if *key == *self.key_pair.public_key() {
            return true;
        }
        let mut st = lock(&self.state);
        if st.peers.get(key).is_some_and(|p| p.banned) {
            return true;
        }
        if self.cfg.firewall.as_ref().is_some_and(|f| f(key)) {
            let p = st.peers.entry(*key).or_insert_with(|| new_peer(*key));
            p.banned = true;
            return true;
        }
        false
    }
}

fn new_peer(key: PublicKey) -> PeerInfo {
    PeerInfo {
        public_key: key,
        topics: Vec::new(),
        prioritized: true,
        banned: false,
        explicit: false,
        attempts: 0,
        proven: false,
        queued: false,
    }
}

/// A Hyperswarm.
#[derive(Clone)]
pub struct Swarm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("public_key", self.inner.key_pair.public_key())
            .finish_non_exhaustive()
    }
}

impl Swarm {
    /// A swarm on `dht`; events arrive on the returned receiver.
    pub fn new(dht: Dht, cfg: SwarmConfig) -> (Self, mpsc::UnboundedReceiver<SwarmEvent>) {
        let key_pair = cfg
            .key_pair
            .clone()
            .unwrap_or_else(|| dht.key_pair().clone());
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            dht,
            key_pair,
            cfg,
            state: Mutex::new(State::default()),
            events: tx,
            changed: Notify::new(),
        });
        (Self { inner }, rx)
    }

    /// Our key.
    pub fn public_key(&self) -> &PublicKey {
        self.inner.key_pair.public_key()
    }

    /// The DHT node.
    pub fn dht(&self) -> &Dht {
        &self.inner.dht
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        lock(&self.inner.state).connections.len()
    }

    /// Outgoing attempts in progress.
    pub fn connecting(&self) -> usize {
        lock(&self.inner.state).connecting.len()
    }

    /// Known peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        lock(&self.inner.state).peers.values().cloned().collect()
    }

    /// Bans or un-bans a peer (existing connections are not touched).
    pub fn ban(&self, key: &PublicKey, banned: bool) {
        lock(&self.inner.state)
            .peers
            .entry(*key)
            .or_insert_with(|| new_peer(*key))
            .banned = banned;
    }

    /// Joins a topic (again: updates the roles and runs a discovery round now). Returns once
    /// the round has started; [`Swarm::flush`] waits for it.
    pub async fn join(&self, topic: [u8; 32], opts: JoinOptions) {
        let inner = self.inner.clone();
        let fresh = {
            let mut st = lock(&inner.state);
            st.discovering += 1;
            st.topics.insert(topic, opts).is_none()
        };
        if opts.server {
            self.listen().await;
        }
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let opts = lock(&inner.state).topics.get(&topic).copied();
                if let Some(opts) = opts {
                    round(&inner, topic, opts).await;
                }
                if first {
                    first = false;
                    lock(&inner.state).discovering -= 1;
                    inner.changed.notify_waiters();
                }
                // Only the first join of a topic keeps refreshing it.
                let Some(opts) = opts.filter(|_| fresh) else {
                    return;
                };
                drop(inner);
                tokio::time::sleep(if opts.server {
                    ANNOUNCE_EVERY
                } else {
                    LOOKUP_EVERY
                })
                .await;
                let still = weak
                    .upgrade()
                    .is_some_and(|i| lock(&i.state).topics.contains_key(&topic));
                if !still {
                    return;
                }
            }
        });
    }

    /// Leaves a topic: stops announcing (and unannounces) and looking it up.
    pub async fn leave(&self, topic: [u8; 32]) {
        let was = lock(&self.inner.state).topics.remove(&topic);
        if was.is_some_and(|o| o.server) {
            let _ = self.inner.dht.unannounce(topic, &self.inner.key_pair).await;
        }
    }

    /// Keeps a connection to `key` open (reconnecting as needed).
    pub fn join_peer(&self, key: PublicKey) {
        {
            let mut st = lock(&self.inner.state);
            st.peers
                .entry(key)
                .or_insert_with(|| new_peer(key))
                .explicit = true;
        }
        enqueue(&self.inner, key);
    }

    /// Stops keeping a connection to `key`.
    pub fn leave_peer(&self, key: &PublicKey) {
        if let Some(p) = lock(&self.inner.state).peers.get_mut(key) {
            p.explicit = false;
        }
    }

    /// Starts accepting connections on our key (idempotent).
    pub async fn listen(&self) {
        {
            let mut st = lock(&self.inner.state);
            if st.server {
                return;
            }
            st.server = true;
        }
        let inner = self.inner.clone();
        let weak_fw = Arc::downgrade(&inner);
        let firewall: crate::dht::connect::FirewallFn =
            Arc::new(move |key, _, _| weak_fw.upgrade().is_some_and(|i| i.firewalled(key)));
        match inner
            .dht
            .listen(inner.key_pair.clone(), Some(firewall))
            .await
        {
            Ok(server) => {
                tokio::spawn(accept_loop(Arc::downgrade(&inner), server));
            }
            Err(e) => tracing::warn!(error = %e, "swarm could not listen"),
        }
    }

    /// Waits until every joined topic finished its first discovery round and every queued
    /// connection attempt has finished.
    pub async fn flush(&self) -> bool {
        loop {
            let notified = self.inner.changed.notified();
            {
                let st = lock(&self.inner.state);
                if st.destroyed {
                    return false;
                }
                if st.discovering == 0 && st.connecting.is_empty() && st.queue.is_empty() {
                    return true;
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(250), notified).await;
        }
    }

    /// Leaves everything and closes the DHT node.
    pub async fn destroy(&self) {
        let topics: Vec<[u8; 32]> = lock(&self.inner.state).topics.keys().copied().collect();
        for t in topics {
            self.leave(t).await;
        }
        let conns: Vec<Arc<Cancel>> = {
            let mut st = lock(&self.inner.state);
            st.destroyed = true;
            st.connections.values().map(|c| c.cancel.clone()).collect()
        };
        for c in conns {
            c.cancel();
        }
        self.inner.changed.notify_waiters();
        self.inner.dht.destroy();
    }
}

/// One discovery round: announce (server) and look up and connect (client).
async fn round(inner: &Arc<Inner>, topic: [u8; 32], opts: JoinOptions) {
    if opts.server {
        if let Err(e) = inner.dht.announce(topic, &inner.key_pair, &[]).await {
            tracing::debug!(error = %e, "announce failed");
        }
    }
    if opts.client {
        if let Ok(replies) = inner.dht.lookup(topic).await {
            for r in replies {
                for p in r.peers {
                    discovered(inner, p.public_key, topic);
                }
            }
        }
    }
}

fn discovered(inner: &Arc<Inner>, key: PublicKey, topic: [u8; 32]) {
    if key == *inner.key_pair.public_key() {
        return;
    }
    {
        let mut st = lock(&inner.state);
        let p = st.peers.entry(key).or_insert_with(|| new_peer(key));
        if !p.topics.contains(&topic) {
            p.topics.push(topic);
        }
        if !p.prioritized || !p.proven {
            p.attempts = 0;
        }
    }
    enqueue(inner, key);
}

fn enqueue(inner: &Arc<Inner>, key: PublicKey) {
    {
        let mut st = lock(&inner.state);
        if st.connections.contains_key(&key) || st.connecting.contains(&key) {
            return;
        }
        let Some(p) = st.peers.get_mut(&key) else {
            return;
        };
        if p.banned || p.queued || (p.attempts > 3 && !p.explicit) {
            return;
        }
        p.queued = true;
        st.queue.push_back(key);
    }
    schedule(inner);
}

/// Starts queued attempts while capacity allows.
fn schedule(inner: &Arc<Inner>) {
    loop {
        let key = {
            let mut st = lock(&inner.state);
            let total = st.connections.len() + st.connecting.len();
            if st.destroyed
                || st.connecting.len() >= inner.cfg.max_parallel
                || total >= inner.cfg.max_peers
            {
                return;
            }
            let Some(key) = st.queue.pop_front() else {
                return;
            };
            if let Some(p) = st.peers.get_mut(&key) {
                p.queued = false;
            }
            if st.connections.contains_key(&key) || st.connecting.contains(&key) {
                continue;
            }
            st.connecting.insert(key);
            key
        };
        if inner.firewalled(&key) {
            lock(&inner.state).connecting.remove(&key);
            continue;
        }
        let _ = inner.events.send(SwarmEvent::Update);
        tokio::spawn(attempt(Arc::downgrade(inner), key));
    }
}

async fn attempt(weak: Weak<Inner>, key: PublicKey) {
    let Some(inner) = weak.upgrade() else { return };
    let result = inner.dht.connect_with(&inner.key_pair, &key).await;
    lock(&inner.state).connecting.remove(&key);
    match result {
        Ok(conn) => {
            if let Some(p) = lock(&inner.state).peers.get_mut(&key) {
                p.proven = true;
            }
            add_connection(&inner, conn, key, true);
        }
        Err(e) => {
            tracing::debug!(peer = %key, error = %e, "swarm connect failed");
            let (retry, delay) = {
                let mut st = lock(&inner.state);
                let topics_joined = !st.topics.is_empty();
                let p = st.peers.entry(key).or_insert_with(|| new_peer(key));
                p.attempts += 1;
                p.prioritized = p.attempts < 3;
                let delay = BACKOFFS[(p.attempts as usize - 1).min(2)];
                (
                    !p.banned && (p.explicit || (topics_joined && p.attempts <= 3)),
                    delay,
                )
            };
            if retry {
                let w = weak.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(inner) = w.upgrade() {
                        enqueue(&inner, key);
                    }
                });
            }
        }
    }
    inner.changed.notify_waiters();
    schedule(&inner);
}

async fn accept_loop(weak: Weak<Inner>, mut server: Server) {
    while let Some(conn) = server.accept().await {
        let Some(inner) = weak.upgrade() else { return };
        let Some(key) = conn.remote_public_key().copied() else {
            continue;
        };
        add_connection(&inner, conn, key, false);
    }
}

/// Registers a new connection, resolving duplicates as Hyperswarm does: the connection dialled
/// by the peer with the larger public key wins.
fn add_connection(inner: &Arc<Inner>, conn: Connection, key: PublicKey, is_initiator: bool) {
    let cancel = Arc::new(Cancel {
        flag: AtomicBool::new(false),
        wakers: Mutex::new(Vec::new()),
    });
    let (id, info) = {
        let mut st = lock(&inner.state);
        if st.destroyed {
            return;
        }
        if let Some(existing) = st.connections.get(&key) {
            // JS: keep the new one iff the existing one is established (it has read and written
            // frames; with 5 s keep-alives that holds for any connection older than ~5 s: we
            // use the age) or the new one was dialled by the expected initiator.
            let outdated = existing.opened.elapsed() > Duration::from_secs(5);
            let expected_initiator = inner.key_pair.public_key().0 > key.0;
            if !outdated && expected_initiator != is_initiator {
                tracing::debug!(peer = %key, "dropping a duplicate connection");
                return; // keep the existing one; the new one is dropped (destroyed)
            }
            existing.cancel.cancel();
        }
        st.next_id += 1;
        let id = st.next_id;
        st.connections.insert(
            key,
            ConnEntry {
                id,
                opened: Instant::now(),
                cancel: cancel.clone(),
            },
        );
        let p = st.peers.entry(key).or_insert_with(|| new_peer(key));
        p.prioritized = true;
        (id, p.clone())
    };
    let sc = SwarmConnection {
        conn,
        cancel,
        swarm: Arc::downgrade(inner),
        key,
        id,
        is_initiator,
    };
    let _ = inner
        .events
        .send(SwarmEvent::Connection(Box::new(sc), info));
    let _ = inner.events.send(SwarmEvent::Update);
    inner.changed.notify_waiters();
}
