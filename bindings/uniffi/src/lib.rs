//! uniffi bindings of p2pswarm (Kotlin and Swift for mobile apps; uniffi's Python as a test
//! harness), in the shape of the JS `hyperswarm` API.
//!
//! A thin layer over the runtime handle layer [`swarm_core::runtime`]: each [`P2pswarm`],
//! standalone [`Dht`] and [`Testnet`] owns one runtime thread, and a dispatcher task ([`hub`])
//! routes its events to connection reads, server accepts and the swarm event stream. Async
//! methods return futures that await the runtime's replies, so any foreign executor (Kotlin
//! coroutines, Swift tasks, asyncio) can await them and cancel them (dropping the future).
//! No protocol logic lives here.

// uniffi passes every argument by value (owned `Vec<u8>`, `String`).
#![allow(clippy::needless_pass_by_value)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarm_core::crypto::PublicKey;
use swarm_core::runtime::{self as rt, JoinOptions, Runtime, SwarmHandle};

mod dht;
mod error;
mod hub;

pub use dht::{Dht, DhtOptions, KeyPair, LookupResult, MutableValue, PeerRecord, Server, Testnet};
pub use error::{P2pswarmError, Result};
pub use hub::{Connection, Hub};

use hub::{lock, ReadItem};

uniffi::setup_scaffolding!();

pub(crate) fn key32(b: &[u8], what: &str) -> Result<[u8; 32]> {
    b.try_into()
        .map_err(|_| P2pswarmError::invalid(format!("{what} must be 32 bytes, got {}", b.len())))
}

pub(crate) fn public_key(b: &[u8]) -> Result<PublicKey> {
    key32(b, "public key").map(PublicKey)
}

pub(crate) fn addrs(list: Option<Vec<String>>) -> Result<Option<Vec<SocketAddrV4>>> {
    list.map(|l| {
        l.iter()
            .map(|s| {
                s.parse::<SocketAddrV4>().map_err(|_| {
                    P2pswarmError::invalid(format!("bootstrap address {s:?} is not A.B.C.D:PORT"))
                })
            })
            .collect()
    })
    .transpose()
}

pub(crate) fn host(h: Option<String>) -> Result<Option<Ipv4Addr>> {
    h.map(|h| {
        h.parse()
            .map_err(|_| P2pswarmError::invalid(format!("host {h:?} is not an IPv4 address")))
    })
    .transpose()
}

pub(crate) fn identity(
    seed: Option<Vec<u8>>,
    secret_key: Option<Vec<u8>>,
) -> Result<(Option<swarm_core::crypto::KeyPair>, Option<[u8; 32]>)> {
    let kp = secret_key
        .map(|sk| {
            let sk: [u8; 64] = sk.as_slice().try_into().map_err(|_| {
                P2pswarmError::invalid(format!("secret key must be 64 bytes, got {}", sk.len()))
            })?;
            swarm_core::crypto::KeyPair::from_secret_key(&sk)
                .map_err(|e| P2pswarmError::invalid(e.to_string()))
        })
        .transpose()?;
    let seed = seed.map(|s| key32(&s, "seed")).transpose()?;
    Ok((kp, seed))
}

pub(crate) fn new_runtime() -> Result<(Runtime, Arc<Hub>)> {
    let runtime = Runtime::new()?;
    let q = runtime.event_queue()?;
    Ok((runtime, Hub::new(q)))
}

/// Decides whether a swarm accepts a peer, as the JS `firewall` option: `true` rejects. Runs
/// on the runtime thread: it must return quickly and must not call blocking methods.
#[uniffi::export(with_foreign)]
pub trait Firewall: Send + Sync {
    /// `true` rejects the peer with this public key.
    fn reject(&self, remote_public_key: Vec<u8>) -> bool;
}

/// Receives swarm events (on a thread of its own, one event at a time).
#[uniffi::export(with_foreign)]
pub trait SwarmListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: SwarmEvent);
}

/// Options of a swarm (all optional; tests pass a testnet's `bootstrap`).
#[derive(uniffi::Record, Default)]
pub struct SwarmOptions {
    /// Seed of the identity (32 bytes).
    #[uniffi(default = None)]
    pub seed: Option<Vec<u8>>,
    /// The identity as a 64-byte secret key (wins over `seed`).
    #[uniffi(default = None)]
    pub secret_key: Option<Vec<u8>>,
    /// Soft cap on connections (default 64).
    #[uniffi(default = None)]
    pub max_peers: Option<u32>,
    /// Concurrent outgoing attempts (default 3).
    #[uniffi(default = None)]
    pub max_parallel: Option<u32>,
    /// Cap on outgoing connections.
    #[uniffi(default = None)]
    pub max_client_connections: Option<u32>,
    /// Bootstrap nodes as `A.B.C.D:PORT` (default: the public network).
    #[uniffi(default = None)]
    pub bootstrap: Option<Vec<String>>,
    /// Local IPv4 address to bind.
    #[uniffi(default = None)]
    pub host: Option<String>,
    /// Preferred UDP port.
    #[uniffi(default = None)]
    pub port: Option<u16>,
    /// How long to wait for bootstrapping (default 30 s).
    #[uniffi(default = None)]
    pub bootstrap_timeout_ms: Option<u64>,
    /// The firewall.
    #[uniffi(default = None)]
    pub firewall: Option<Arc<dyn Firewall>>,
}

impl std::fmt::Debug for SwarmOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmOptions")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl SwarmOptions {
    fn into_core(self) -> Result<rt::SwarmOptions> {
        let mut o = rt::SwarmOptions::new();
        (o.key_pair, o.seed) = identity(self.seed, self.secret_key)?;
        o.max_peers = self.max_peers.map(|n| n as usize);
        o.max_parallel = self.max_parallel.map(|n| n as usize);
        o.max_client_connections = self.max_client_connections.map(|n| n as usize);
        o.bootstrap = addrs(self.bootstrap)?;
        o.host = host(self.host)?;
        o.port = self.port;
        if let Some(ms) = self.bootstrap_timeout_ms {
            o.ready_timeout = Duration::from_millis(ms);
        }
        if let Some(fw) = self.firewall {
            // A firewall that fails (a foreign exception surfaces as a panic) rejects.
            o.firewall = Some(Arc::new(move |pk: &PublicKey| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fw.reject(pk.0.to_vec())))
                    .unwrap_or(true)
            }));
        }
        Ok(o)
    }
}

/// An event of a swarm.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum SwarmEvent {
    /// A new connection (JS `'connection'`).
    Connection {
        connection: Arc<Connection>,
        peer: Arc<PeerInfo>,
    },
    /// The connection counts changed (JS `'update'`).
    Update,
    /// A peer was banned (JS `'ban'`).
    Ban { peer: Arc<PeerInfo> },
}

/// The discovery state of a joined topic.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TopicStatus {
    pub server: bool,
    pub client: bool,
    pub sessions: u32,
    pub refreshing: bool,
    pub suspended: bool,
}

/// A swarm: finds peers by topic on the DHT and keeps encrypted connections to them.
#[derive(Debug, uniffi::Object)]
pub struct P2pswarm {
    runtime: Runtime,
    /// Taken on shutdown: the node's sockets close even while handles are still referenced.
    swarm: Mutex<Option<Arc<SwarmHandle>>>,
    public_key: Vec<u8>,
    hub: Arc<Hub>,
    discoveries: Mutex<Vec<std::sync::Weak<PeerDiscovery>>>,
    dhts: Mutex<Vec<std::sync::Weak<Dht>>>,
}

impl P2pswarm {
    fn start(
        options: SwarmOptions,
    ) -> Result<(Runtime, Arc<Hub>, rt::Reply<rt::Result<SwarmHandle>>)> {
        let opts = options.into_core()?;
        let (runtime, hub) = new_runtime()?;
        let reply = runtime.swarm(opts, hub.queue());
        Ok((runtime, hub, reply))
    }

    fn finish(runtime: Runtime, hub: Arc<Hub>, swarm: SwarmHandle) -> Arc<Self> {
        let swarm = Arc::new(swarm);
        hub.set_swarm(swarm.clone());
        drop(runtime.call(hub.clone().run()));
        Arc::new(Self {
            runtime,
            public_key: swarm.public_key().0.to_vec(),
            swarm: Mutex::new(Some(swarm)),
            hub,
            discoveries: Mutex::new(Vec::new()),
            dhts: Mutex::new(Vec::new()),
        })
    }

    fn shutdown(&self) {
        self.runtime.shutdown();
        self.hub.close();
        lock(&self.swarm).take();
        for d in std::mem::take(&mut *lock(&self.discoveries)) {
            if let Some(d) = d.upgrade() {
                lock(&d.d).take();
            }
        }
        for d in std::mem::take(&mut *lock(&self.dhts)) {
            if let Some(d) = d.upgrade() {
                d.release();
            }
        }
    }

    fn s(&self) -> Result<Arc<SwarmHandle>> {
        lock(&self.swarm).clone().ok_or_else(P2pswarmError::closed)
    }
}

impl Drop for P2pswarm {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[uniffi::export]
impl P2pswarm {
    /// Creates a swarm, blocking until its DHT node is bound and bootstrapped (prefer
    /// `create` from coroutines and tasks).
    #[uniffi::constructor]
    pub fn new(options: SwarmOptions) -> Result<Arc<Self>> {
        let (runtime, hub, reply) = Self::start(options)?;
        let swarm = reply.wait()??;
        Ok(Self::finish(runtime, hub, swarm))
    }

    /// Creates a swarm (async: resolves once the DHT node is bootstrapped).
    #[uniffi::constructor]
    pub async fn create(options: SwarmOptions) -> Result<Arc<Self>> {
        let (runtime, hub, reply) = Self::start(options)?;
        let swarm = reply.await??;
        Ok(Self::finish(runtime, hub, swarm))
    }

    /// Our public key (32 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        self.public_key.clone()
    }

    /// Joins a topic (32 bytes) as server (announce, accept) and/or client (look up, connect).
    #[uniffi::method(default(server = true, client = true))]
    pub async fn join(
        &self,
        topic: Vec<u8>,
        server: bool,
        client: bool,
    ) -> Result<Arc<PeerDiscovery>> {
        let topic = key32(&topic, "topic")?;
        let d = self
            .s()?
            .join(topic, JoinOptions { server, client })
            .await??;
        let pd = Arc::new(PeerDiscovery {
            topic: topic.to_vec(),
            d: Mutex::new(Some(d)),
        });
        let mut ds = lock(&self.discoveries);
        ds.retain(|w| w.strong_count() > 0);
        ds.push(Arc::downgrade(&pd));
        Ok(pd)
    }

    /// Leaves a topic (connections stay).
    pub async fn leave(&self, topic: Vec<u8>) -> Result<()> {
        let topic = key32(&topic, "topic")?;
        Ok(self.s()?.leave(topic).await?)
    }

    /// Keeps a connection to a peer.
    pub fn join_peer(&self, public_key: Vec<u8>) -> Result<()> {
        self.s()?.join_peer(crate::public_key(&public_key)?);
        Ok(())
    }

    /// Stops keeping a connection to a peer.
    pub fn leave_peer(&self, public_key: Vec<u8>) -> Result<()> {
        self.s()?.leave_peer(&crate::public_key(&public_key)?);
        Ok(())
    }

    /// Waits for pending announces and connection attempts.
    pub async fn flush(&self) -> Result<bool> {
        Ok(self.s()?.flush().await?)
    }

    /// Accepts connections without joining a topic as server.
    pub async fn listen(&self) -> Result<()> {
        Ok(self.s()?.listen().await??)
    }

    /// Suspends networking (the app goes to the background).
    pub async fn suspend(&self) -> Result<()> {
        Ok(self.s()?.suspend().await??)
    }

    /// Resumes networking (the app is back in the foreground).
    pub async fn resume(&self) -> Result<()> {
        Ok(self.s()?.resume().await??)
    }

    /// Leaves everything, closes connections and the node, and stops the runtime thread:
    /// afterwards calls fail with `Closed`, `next_event` returns `null`, listeners stop.
    pub async fn destroy(&self) -> Result<()> {
        let Ok(swarm) = self.s() else {
            return Ok(());
        };
        let r = swarm.destroy().await;
        drop(swarm);
        self.shutdown();
        match r {
            Ok(()) | Err(rt::Error::Closed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Connection attempts in progress.
    pub fn connecting(&self) -> u32 {
        self.s().map_or(0, |s| s.connecting() as u32)
    }

    /// Open connections (JS `swarm.connections`).
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        self.hub.connections()
    }

    /// Known peers (JS `swarm.peers`).
    pub fn peers(&self) -> Vec<Arc<PeerInfo>> {
        self.s()
            .map(|s| s.peers())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| self.hub.peer_info(p))
            .collect()
    }

    /// One peer.
    pub fn peer(&self, public_key: Vec<u8>) -> Result<Option<Arc<PeerInfo>>> {
        let key = crate::public_key(&public_key)?;
        Ok(self.s()?.peer(&key).and_then(|p| self.hub.peer_info(p)))
    }

    /// The discovery state of a topic (`null`: not joined).
    pub fn status(&self, topic: Vec<u8>) -> Result<Option<TopicStatus>> {
        let topic = key32(&topic, "topic")?;
        Ok(self.s()?.status(&topic).map(|s| TopicStatus {
            server: s.server,
            client: s.client,
            sessions: s.sessions as u32,
            refreshing: s.refreshing,
            suspended: s.suspended,
        }))
    }

    /// The swarm's DHT node (its servers' connections are accepted through `Server.accept`).
    pub fn dht(&self) -> Result<Arc<Dht>> {
        let dht = Arc::new(Dht::shared(
            self.runtime.clone(),
            self.s()?.dht(self.hub.queue()),
            self.hub.clone(),
        ));
        let mut ds = lock(&self.dhts);
        ds.retain(|w| w.strong_count() > 0);
        ds.push(Arc::downgrade(&dht));
        Ok(dht)
    }

    /// The next event (`null` once destroyed). Events go here while no listener is added.
    /// Cancelling the call loses no event.
    pub async fn next_event(&self) -> Option<SwarmEvent> {
        self.hub.next_event().await
    }

    /// Sends events to `listener` (on a thread of its own) until the returned handle is
    /// cancelled or dropped. While a listener is added, `next_event` gets no events.
    pub fn add_listener(&self, listener: Arc<dyn SwarmListener>) -> Result<Arc<ListenerHandle>> {
        let id = self.hub.add_listener(listener)?;
        Ok(Arc::new(ListenerHandle {
            hub: Arc::downgrade(&self.hub),
            id,
        }))
    }
}

/// Keeps a listener registered; cancelling or dropping it removes the listener.
#[derive(Debug, uniffi::Object)]
pub struct ListenerHandle {
    hub: std::sync::Weak<Hub>,
    id: u64,
}

#[uniffi::export]
impl ListenerHandle {
    /// Removes the listener (idempotent).
    pub fn cancel(&self) {
        if let Some(h) = self.hub.upgrade() {
            h.remove_listener(self.id);
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// A joined topic (JS `PeerDiscovery`).
#[derive(Debug, uniffi::Object)]
pub struct PeerDiscovery {
    topic: Vec<u8>,
    /// Taken when the swarm shuts down (a discovery keeps the swarm's sockets alive).
    d: Mutex<Option<rt::Discovery>>,
}

impl PeerDiscovery {
    fn d(&self) -> Result<rt::Discovery> {
        lock(&self.d).clone().ok_or_else(P2pswarmError::closed)
    }
}

#[uniffi::export]
impl PeerDiscovery {
    /// The topic.
    pub fn topic(&self) -> Vec<u8> {
        self.topic.clone()
    }

    /// Waits until the topic is announced (server) and looked up (client).
    pub async fn flushed(&self) -> Result<bool> {
        Ok(self.d()?.flushed().await?)
    }

    /// Changes the roles and re-announces.
    pub async fn refresh(&self, server: bool, client: bool) -> Result<bool> {
        Ok(self.d()?.refresh(JoinOptions { server, client }).await??)
    }

    /// Stops discovering the topic.
    pub async fn destroy(&self) -> Result<()> {
        Ok(self.d()?.destroy().await?)
    }
}

/// What a swarm knows about a peer (JS `PeerInfo`); getters read the swarm's current state.
#[derive(Debug, uniffi::Object)]
pub struct PeerInfo {
    pub(crate) swarm: std::sync::Weak<SwarmHandle>,
    pub(crate) snapshot: Mutex<rt::PeerInfo>,
}

impl PeerInfo {
    fn current(&self) -> rt::PeerInfo {
        let mut s = lock(&self.snapshot);
        if let Some(now) = self.swarm.upgrade().and_then(|w| w.peer(&s.public_key)) {
            *s = now;
        }
        s.clone()
    }
}

#[uniffi::export]
impl PeerInfo {
    /// The peer's public key.
    pub fn public_key(&self) -> Vec<u8> {
        lock(&self.snapshot).public_key.0.to_vec()
    }

    /// Topics the peer was found on.
    pub fn topics(&self) -> Vec<Vec<u8>> {
        self.current().topics.iter().map(|t| t.to_vec()).collect()
    }

    /// Reconnects are prioritised.
    pub fn prioritized(&self) -> bool {
        self.current().prioritized
    }

    /// Banned.
    pub fn banned(&self) -> bool {
        self.current().banned
    }

    /// Added with `join_peer`.
    pub fn explicit(&self) -> bool {
        self.current().explicit
    }

    /// Bans (or un-bans) the peer.
    pub fn ban(&self, banned: bool) {
        let key = lock(&self.snapshot).public_key;
        if let Some(s) = self.swarm.upgrade() {
            s.ban(&key, banned);
        }
    }
}

#[uniffi::export]
impl Connection {
    /// The id in the runtime's events.
    pub fn id(&self) -> u64 {
        self.conn.id()
    }

    /// The remote public key.
    pub fn remote_public_key(&self) -> Vec<u8> {
        self.conn.remote_public_key().0.to_vec()
    }

    /// The Noise handshake hash (64 bytes).
    pub fn handshake_hash(&self) -> Option<Vec<u8>> {
        self.conn.handshake_hash().map(|h| h.to_vec())
    }

    /// Whether we dialled.
    pub fn is_initiator(&self) -> bool {
        self.conn.is_initiator()
    }

    /// The next received bytes; `null` at end of stream. Fails with `Io` when the connection
    /// closed with an error. Cancelling the call loses no data.
    pub async fn read(&self) -> Result<Option<Vec<u8>>> {
        let mut rx = self.state.rx.lock().await;
        if self.state.eof.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(None);
        }
        let item = rx.recv().await;
        if !matches!(item, Some(ReadItem::Data(_))) {
            self.state
                .eof
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        match item {
            Some(ReadItem::Data(d)) => {
                if let Some(h) = self.hub.upgrade() {
                    h.release(d.len());
                }
                Ok(Some(d))
            }
            Some(ReadItem::Close(Some(e))) => Err(P2pswarmError::Io { detail: e }),
            _ => Ok(None),
        }
    }

    /// Writes bytes; resolves once they are handed to the stream.
    pub async fn write(&self, data: Vec<u8>) -> Result<()> {
        Ok(self.conn.write(data).await??)
    }

    /// Queues bytes without waiting; `WouldBlock` past 8 MiB queued.
    pub fn try_write(&self, data: Vec<u8>) -> Result<()> {
        Ok(self.conn.write_nowait(data)?)
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> u64 {
        self.conn.queued_bytes() as u64
    }

    /// Ends our side (the remote reads end of stream; we can still read).
    pub fn end(&self) -> Result<()> {
        Ok(self.conn.end()?)
    }

    /// Closes the connection now; idempotent.
    pub fn destroy(&self) {
        let _ = self.conn.destroy();
    }

    /// Whether the connection closed.
    pub fn is_closed(&self) -> bool {
        self.state.closed.borrow().is_some()
    }

    /// Waits until the connection is closed; returns the error it closed with, if any.
    pub async fn closed(&self) -> Option<String> {
        let mut rx = self.state.closed.subscribe();
        let closed = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().flatten(),
            Err(_) => None,
        };
        closed
    }
}
