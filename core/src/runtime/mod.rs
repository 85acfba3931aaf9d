//! The runtime thread and the handle layer every binding wraps (C, Python, Node, uniffi).
//!
//! * [`Runtime`] starts one named thread (`p2pswarm-rt`) running a current-thread tokio
//!   runtime that owns every swarm, DHT node and connection created through it.
//! * Handles ([`SwarmHandle`], [`Discovery`], [`DhtHandle`], [`ServerHandle`], [`Conn`]) are
//!   cheap, `Send + Sync` clones. Each call is a message to the runtime thread (a task spawned
//!   on it); async calls return a [`Reply`], a future that awaits the oneshot the runtime fills,
//!   so any executor can await it (asyncio, napi promises, uniffi) and C can block on it with
//!   [`Reply::wait`].
//! * Events leave through one primitive, [`EventQueue::next_event`] (also: blocking pull with
//!   timeout, a readiness fd, a handler on the runtime thread). Received bytes are events too.
//! * [`Runtime::shutdown`] is idempotent and never joins the runtime thread from itself; dropping
//!   the last [`Runtime`] clone shuts it down. It joins the thread: a binding must not hold a
//!   lock the runtime thread may wait for (the GIL, the Node main loop) while calling it, nor
//!   block on a [`Reply`] while holding one.
//!
//! Only the private `adapter` module knows the swarm API of [`crate::swarm`].

mod adapter;
mod events;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

pub use events::{Event, EventQueue, Handler, Next, DATA_HIGH_WATER};

use crate::crypto::{KeyPair, PublicKey};
use crate::dht::{ConnectError, Dht, DhtError, LookupReply, MutableValue};

/// Why a runtime call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The runtime (or the object) is shut down.
    #[error("closed")]
    Closed,
    /// A blocking wait was attempted on the runtime thread (e.g. from an event handler).
    #[error("blocking call on the runtime thread would deadlock")]
    WouldDeadlock,
    /// An argument was invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The UDP sockets could not be bound.
    #[error("bind failed: {0}")]
    Bind(String),
    /// The node did not finish bootstrapping in time.
    #[error("bootstrap timed out")]
    BootstrapTimeout,
    /// A connect failed.
    #[error("connect failed: {0}")]
    Connect(ConnectError),
    /// A DHT operation failed.
    #[error("dht: {0}")]
    Dht(DhtError),
    /// The operation is not supported (yet).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A stream failed.
    #[error("i/o: {0}")]
    Io(String),
    /// The connection's write queue is full: wait for [`Event::Drain`].
    #[error("write queue full")]
    WouldBlock,
    /// The runtime thread could not be started.
    #[error("runtime: {0}")]
    Runtime(String),
}

/// Result of the handle layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

struct RtInner {
    handle: tokio::runtime::Handle,
    thread: ThreadId,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    join: Mutex<Option<std::thread::JoinHandle<()>>>,
    queues: Mutex<Vec<EventQueue>>,
}

impl RtInner {
    fn shutdown(&self) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let join = if std::thread::current().id() == self.thread {
            None // never join the runtime thread from itself: it exits on its own
        } else {
            self.join
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        };
        if let Some(j) = join {
            let _ = j.join();
        }
        let queues =
            std::mem::take(&mut *self.queues.lock().unwrap_or_else(PoisonError::into_inner));
        for q in queues {
            q.close();
        }
    }
}

impl Drop for RtInner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The runtime thread (cheap to clone; the last clone dropped shuts it down).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RtInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// The pending result of an async call: a future (any executor) or [`Reply::wait`].
#[derive(Debug)]
pub struct Reply<T> {
    rx: oneshot::Receiver<T>,
    thread: ThreadId,
}

impl<T> Future for Reply<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map_err(|_| Error::Closed)
    }
}

impl<T> Reply<T> {
    /// Blocks the calling thread until the result is there. Fails with
    /// [`Error::WouldDeadlock`] on the runtime thread, [`Error::Closed`] after shutdown.
    pub fn wait(self) -> Result<T> {
        if std::thread::current().id() == self.thread {
            return Err(Error::WouldDeadlock);
        }
        self.rx.blocking_recv().map_err(|_| Error::Closed)
    }
}

impl Reply<Result<()>> {
    /// [`Reply::wait`], flattened.
    pub fn wait_flat(self) -> Result<()> {
        self.wait()?
    }
}

impl Runtime {
    /// Starts the runtime thread.
    pub fn new() -> Result<Self> {
        let (htx, hrx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let join = std::thread::Builder::new()
            .name("p2pswarm-rt".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let _ = htx.send(Ok(rt.handle().clone()));
                        rt.block_on(async move {
                            let _ = stop_rx.await;
                        });
                        drop(rt); // cancels every task: closes sockets and connections
                    }
                    Err(e) => {
                        let _ = htx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let thread = join.thread().id();
        let handle = hrx
            .recv()
            .map_err(|e| Error::Runtime(e.to_string()))?
            .map_err(Error::Runtime)?;
        Ok(Self {
            inner: Arc::new(RtInner {
                handle,
                thread,
                stop: Mutex::new(Some(stop_tx)),
                join: Mutex::new(Some(join)),
                queues: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `fut` on the runtime thread; the reply carries its output.
    pub fn call<F, T>(&self, fut: F) -> Reply<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.inner.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        Reply {
            rx,
            thread: self.inner.thread,
        }
    }

    /// Runs `f` synchronously with the runtime entered (so it may spawn tasks).
    fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let _g = self.inner.handle.enter();
        f()
    }

    /// Whether the calling thread is the runtime thread (where blocking waits are refused).
    pub fn on_runtime_thread(&self) -> bool {
        std::thread::current().id() == self.inner.thread
    }

    /// A new event queue, closed when the runtime shuts down.
    pub fn event_queue(&self) -> Result<EventQueue> {
        let q = EventQueue::new().map_err(|e| Error::Runtime(e.to_string()))?;
        self.inner
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(q.clone());
        Ok(q)
    }

    /// Stops the runtime thread (idempotent): every swarm, node and connection is dropped, and
    /// event queues close. Joins the thread unless called on it.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Creates a swarm whose events go to `events`.
    pub fn swarm(&self, opts: SwarmOptions, events: &EventQueue) -> Reply<Result<SwarmHandle>> {
        let rt = self.clone();
        let q = events.clone();
        self.call(async move {
            let (swarm, mut ev) = adapter::create(opts).await?;
            let id = next_id();
            let thread = rt.inner.thread;
            tokio::spawn(async move {
                while let Some(e) = ev.next().await {
                    match e {
                        adapter::SwarmEvent::Connection(c, info) => {
                            let (remote, hh, init) = adapter::connection_meta(&c);
                            let conn = Conn::start(thread, &q, c, remote, hh, init);
                            q.push(Event::Connection {
                                source: id,
                                conn: conn.0,
                                peer: Some(info),
                            });
                            tokio::spawn(conn.1);
                        }
                        adapter::SwarmEvent::Update => q.push(Event::Update { source: id }),
                        adapter::SwarmEvent::Ban(peer) => q.push(Event::Ban { source: id, peer }),
                    }
                }
            });
            Ok(SwarmHandle { rt, swarm, id })
        })
    }

    /// Binds a DHT node (and waits until it is bootstrapped); connections it makes or accepts
    /// report to `events`.
    pub fn dht(&self, opts: DhtOptions, events: &EventQueue) -> Reply<Result<DhtHandle>> {
        let rt = self.clone();
        let q = events.clone();
        self.call(async move {
            let kp = adapter::key_pair(opts.key_pair.as_ref(), opts.seed.as_ref());
            let dht = adapter::bind_dht(
                adapter::dht_config(opts.bootstrap.as_ref(), opts.host, opts.port),
                kp,
                opts.ready_timeout,
            )
            .await?;
            Ok(DhtHandle { rt, dht, events: q })
        })
    }

    /// Starts a loopback testnet of `n` persistent nodes (the first is the bootstrapper).
    pub fn testnet(&self, n: usize) -> Reply<Result<Testnet>> {
        let rt = self.clone();
        self.call(async move {
            let net = crate::dht::Testnet::new(n.max(1), Ipv4Addr::LOCALHOST)
                .await
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::Other {
                        Error::BootstrapTimeout
                    } else {
                        Error::Bind(e.to_string())
                    }
                })?;
            Ok(Testnet { rt, net: Some(net) })
        })
    }
}

/// Options of a swarm (all optional).
#[derive(Clone, Default)]
pub struct SwarmOptions {
    /// Identity (wins over `seed`; default: random).
    pub key_pair: Option<KeyPair>,
    /// Seed of the identity.
    pub seed: Option<[u8; 32]>,
    /// Soft cap on connections (default 64).
    pub max_peers: Option<usize>,
    /// Concurrent outgoing attempts (default 3).
    pub max_parallel: Option<usize>,
    /// Cap on outgoing connections (default unbounded).
    pub max_client_connections: Option<usize>,
    /// `true` rejects a remote key. Runs on the runtime thread.
    pub firewall: Option<Firewall>,
    /// Bootstrap nodes (default: the public network).
    pub bootstrap: Option<Vec<SocketAddrV4>>,
    /// Local address to bind (default 0.0.0.0).
    pub host: Option<Ipv4Addr>,
    /// Preferred UDP port (tried with the next four, else any port).
    pub port: Option<u16>,
    /// How long to wait for bootstrapping.
    pub ready_timeout: Duration,
}

impl SwarmOptions {
    /// Defaults with a 30 s bootstrap timeout.
    pub fn new() -> Self {
        Self {
            ready_timeout: Duration::from_secs(30),
            ..Self::default()
        }
    }
}

impl std::fmt::Debug for SwarmOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmOptions")
            .field("max_peers", &self.max_peers)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

/// A firewall: `true` rejects the key.
pub type Firewall = Arc<dyn Fn(&PublicKey) -> bool + Send + Sync>;

/// Options of a DHT node.
#[derive(Debug, Clone, Default)]
pub struct DhtOptions {
    /// Default key pair of the node (wins over `seed`).
    pub key_pair: Option<KeyPair>,
    /// Seed of the default key pair.
    pub seed: Option<[u8; 32]>,
    /// Bootstrap nodes (default: the public network).
    pub bootstrap: Option<Vec<SocketAddrV4>>,
    /// Local address to bind.
    pub host: Option<Ipv4Addr>,
    /// Preferred UDP port (tried with the next four, else any port).
    pub port: Option<u16>,
    /// How long to wait for bootstrapping.
    pub ready_timeout: Duration,
}

impl DhtOptions {
    /// Defaults with a 30 s bootstrap timeout.
    pub fn new() -> Self {
        Self {
            ready_timeout: Duration::from_secs(30),
            ..Self::default()
        }
    }
}

/// Server/client roles of a joined topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinOptions {
    /// Announce and accept.
    pub server: bool,
    /// Look up and connect.
    pub client: bool,
}

/// The discovery state of a joined topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicStatus {
    /// Some session announces the topic.
    pub server: bool,
    /// Some session looks it up.
    pub client: bool,
    /// Live discovery sessions.
    pub sessions: usize,
    /// A query is in flight.
    pub refreshing: bool,
    /// The swarm is suspended.
    pub suspended: bool,
}

/// What a swarm knows about a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its key.
    pub public_key: PublicKey,
    /// Topics it was found on (as a client).
    pub topics: Vec<[u8; 32]>,
    /// Reconnects are prioritised.
    pub prioritized: bool,
    /// Banned.
    pub banned: bool,
    /// Added with `join_peer`.
    pub explicit: bool,
}

/// A swarm on the runtime thread.
#[derive(Clone)]
pub struct SwarmHandle {
    rt: Runtime,
    swarm: adapter::Swarm,
    id: u64,
}

impl std::fmt::Debug for SwarmHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SwarmHandle {
    /// The id in this swarm's events.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Our key.
    pub fn public_key(&self) -> PublicKey {
        adapter::public_key(&self.swarm)
    }

    /// Joins a topic.
    pub fn join(&self, topic: [u8; 32], opts: JoinOptions) -> Reply<Result<Discovery>> {
        let s = self.swarm.clone();
        let rt = self.rt.clone();
        self.rt.call(async move {
            let d = adapter::join(&s, topic, opts).await?;
            Ok(Discovery { rt, d })
        })
    }

    /// Leaves a topic (existing connections stay).
    pub fn leave(&self, topic: [u8; 32]) -> Reply<()> {
        let s = self.swarm.clone();
        self.rt.call(async move { adapter::leave(&s, topic).await })
    }

    /// Keeps a connection to `key`.
    pub fn join_peer(&self, key: PublicKey) {
        self.rt.enter(|| adapter::join_peer(&self.swarm, key));
    }

    /// Stops keeping a connection to `key`.
    pub fn leave_peer(&self, key: &PublicKey) {
        self.rt.enter(|| adapter::leave_peer(&self.swarm, key));
    }

    /// Accepts connections.
    pub fn listen(&self) -> Reply<Result<()>> {
        let s = self.swarm.clone();
        self.rt.call(async move { adapter::listen(&s).await })
    }

    /// Waits for pending announces and connection attempts.
    pub fn flush(&self) -> Reply<bool> {
        let s = self.swarm.clone();
        self.rt.call(async move { adapter::flush(&s).await })
    }

    /// Suspends networking.
    pub fn suspend(&self) -> Reply<Result<()>> {
        let s = self.swarm.clone();
        self.rt.call(async move { adapter::suspend(&s).await })
    }

    /// Resumes networking.
    pub fn resume(&self) -> Reply<Result<()>> {
        let s = self.swarm.clone();
        self.rt.call(async move { adapter::resume(&s).await })
    }

    /// Leaves everything, closes connections and the DHT node.
    pub fn destroy(&self) -> Reply<()> {
        let s = self.swarm.clone();
        self.rt.call(async move { adapter::destroy(&s).await })
    }

    /// Connection attempts in progress.
    pub fn connecting(&self) -> usize {
        adapter::connecting(&self.swarm)
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        adapter::connections(&self.swarm)
    }

    /// Known peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        adapter::peers(&self.swarm)
    }

    /// One peer.
    pub fn peer(&self, key: &PublicKey) -> Option<PeerInfo> {
        adapter::peer(&self.swarm, key)
    }

    /// The discovery state of a topic (`None`: not joined).
    pub fn status(&self, topic: &[u8; 32]) -> Option<TopicStatus> {
        adapter::status(&self.swarm, topic)
    }

    /// Bans or un-bans a peer.
    pub fn ban(&self, key: &PublicKey, banned: bool) {
        self.rt.enter(|| adapter::ban(&self.swarm, key, banned));
    }

    /// The swarm's DHT node; its connections report to `events`.
    pub fn dht(&self, events: &EventQueue) -> DhtHandle {
        DhtHandle {
            rt: self.rt.clone(),
            dht: adapter::dht(&self.swarm),
            events: events.clone(),
        }
    }
}

/// A joined topic.
#[derive(Debug, Clone)]
pub struct Discovery {
    rt: Runtime,
    d: adapter::Discovery,
}

impl Discovery {
    /// The topic.
    pub fn topic(&self) -> [u8; 32] {
        adapter::discovery_topic(&self.d)
    }

    /// Waits until the topic is announced (server) and looked up (client).
    pub fn flushed(&self) -> Reply<bool> {
        let d = self.d.clone();
        self.rt.call(async move { adapter::flushed(&d).await })
    }

    /// Changes the roles and re-announces.
    pub fn refresh(&self, opts: JoinOptions) -> Reply<Result<bool>> {
        let d = self.d.clone();
        self.rt
            .call(async move { adapter::refresh(&d, opts).await })
    }

    /// Stops discovering the topic.
    pub fn destroy(&self) -> Reply<()> {
        let d = self.d.clone();
        self.rt
            .call(async move { adapter::destroy_discovery(&d).await })
    }
}

/// A DHT node on the runtime thread.
#[derive(Debug, Clone)]
pub struct DhtHandle {
    rt: Runtime,
    dht: Dht,
    events: EventQueue,
}

impl DhtHandle {
    /// The node's default key.
    pub fn public_key(&self) -> PublicKey {
        *self.dht.key_pair().public_key()
    }

    /// Connects to the server on `remote` (with `key_pair`, default the node's).
    pub fn connect(&self, remote: PublicKey, key_pair: Option<KeyPair>) -> Reply<Result<Conn>> {
        let dht = self.dht.clone();
        let rt = self.rt.clone();
        let q = self.events.clone();
        self.rt.call(async move {
            let kp = key_pair.unwrap_or_else(|| dht.key_pair().clone());
            let c = dht
                .connect_with(&kp, &remote)
                .await
                .map_err(Error::Connect)?;
            let hh = c.handshake_hash().copied();
            let (conn, pump) = Conn::start(rt.inner.thread, &q, c, remote, hh, true);
            tokio::spawn(pump);
            Ok(conn)
        })
    }

    /// Listens on `key_pair` (default the node's): accepted connections are
    /// [`Event::Connection`]s with the server's id as source.
    pub fn listen(&self, key_pair: Option<KeyPair>) -> Reply<Result<ServerHandle>> {
        let dht = self.dht.clone();
        let rt = self.rt.clone();
        let q = self.events.clone();
        self.rt.call(async move {
            let kp = key_pair.unwrap_or_else(|| dht.key_pair().clone());
            let pk = *kp.public_key();
            let mut server = dht.listen(kp, None).await.map_err(Error::Dht)?;
            let id = next_id();
            let (stop_tx, mut stop_rx) = oneshot::channel::<oneshot::Sender<()>>();
            let thread = rt.inner.thread;
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        c = server.accept() => {
                            let Some(c) = c else { return };
                            let Some(remote) = c.remote_public_key().copied() else { continue };
                            let hh = c.handshake_hash().copied();
                            let (conn, pump) = Conn::start(thread, &q, c, remote, hh, false);
                            q.push(Event::Connection { source: id, conn, peer: None });
                            tokio::spawn(pump);
                        }
                        done = &mut stop_rx => {
                            server.close().await;
                            if let Ok(done) = done {
                                let _ = done.send(());
                            }
                            return;
                        }
                    }
                }
            });
            Ok(ServerHandle {
                rt,
                id,
                public_key: pk,
                stop: Arc::new(Mutex::new(Some(stop_tx))),
            })
        })
    }

    /// Peer records under `topic`.
    pub fn lookup(&self, topic: [u8; 32]) -> Reply<Result<Vec<LookupReply>>> {
        let dht = self.dht.clone();
        self.rt
            .call(async move { dht.lookup(topic).await.map_err(Error::Dht) })
    }

    /// Announces `key_pair` under `topic`.
    pub fn announce(&self, topic: [u8; 32], key_pair: KeyPair) -> Reply<Result<usize>> {
        let dht = self.dht.clone();
        self.rt.call(async move {
            dht.announce(topic, &key_pair, &[])
                .await
                .map_err(Error::Dht)
        })
    }

    /// Removes an announcement.
    pub fn unannounce(&self, topic: [u8; 32], key_pair: KeyPair) -> Reply<Result<usize>> {
        let dht = self.dht.clone();
        self.rt
            .call(async move { dht.unannounce(topic, &key_pair).await.map_err(Error::Dht) })
    }

    /// Stores an immutable value; returns its hash.
    pub fn immutable_put(&self, value: Vec<u8>) -> Reply<Result<[u8; 32]>> {
        let dht = self.dht.clone();
        self.rt
            .call(async move { dht.immutable_put(&value).await.map_err(Error::Dht) })
    }

    /// Fetches an immutable value.
    pub fn immutable_get(&self, hash: [u8; 32]) -> Reply<Result<Vec<u8>>> {
        let dht = self.dht.clone();
        self.rt
            .call(async move { dht.immutable_get(hash).await.map_err(Error::Dht) })
    }

    /// Stores a signed mutable value.
    pub fn mutable_put(&self, key_pair: KeyPair, value: Vec<u8>, seq: u64) -> Reply<Result<usize>> {
        let dht = self.dht.clone();
        self.rt.call(async move {
            dht.mutable_put(&key_pair, &value, seq)
                .await
                .map_err(Error::Dht)
        })
    }

    /// Fetches the latest mutable value with seq ≥ `min_seq`.
    pub fn mutable_get(&self, key: PublicKey, min_seq: u64) -> Reply<Result<MutableValue>> {
        let dht = self.dht.clone();
        self.rt
            .call(async move { dht.mutable_get(&key, min_seq).await.map_err(Error::Dht) })
    }

    /// Closes the node.
    pub fn destroy(&self) {
        self.rt.enter(|| self.dht.destroy());
    }
}

/// A listening DHT server.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    rt: Runtime,
    id: u64,
    public_key: PublicKey,
    stop: Arc<Mutex<Option<oneshot::Sender<oneshot::Sender<()>>>>>,
}

impl ServerHandle {
    /// The id in this server's events.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The key clients connect to.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// Stops listening and unannounces (idempotent).
    pub fn close(&self) -> Reply<()> {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.rt.call(async move {
            if let Some(stop) = stop {
                let (tx, rx) = oneshot::channel();
                if stop.send(tx).is_ok() {
                    let _ = rx.await;
                }
            }
        })
    }
}

/// A loopback testnet ([`crate::dht::Testnet`] owned by the runtime thread); dropping it stops
/// the nodes.
#[derive(Debug)]
pub struct Testnet {
    rt: Runtime,
    net: Option<crate::dht::Testnet>,
}

impl Testnet {
    /// The bootstrap address (127.0.0.1:port).
    pub fn bootstrap(&self) -> SocketAddrV4 {
        self.net
            .as_ref()
            .map_or(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), |n| n.bootstrap)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.net.as_ref().map_or(0, |n| n.nodes.len())
    }

    /// Whether it has no nodes (never, while alive).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        if let Some(net) = self.net.take() {
            self.rt.enter(move || drop(net));
        }
    }
}

/// Bytes queued for writing: any owner of a byte slice (a `Vec`, or a binding's immutable
/// host-language buffer written without a copy).
type WriteBuf = Box<dyn AsRef<[u8]> + Send>;

enum ConnCmd {
    Write(WriteBuf, Option<oneshot::Sender<Result<()>>>),
    End,
    Destroy,
}

/// Opt-in read flow control of a connection (see [`Conn::limit_reading`]).
struct Flow {
    enabled: std::sync::atomic::AtomicBool,
    credit: tokio::sync::Semaphore,
}

/// Size of the reader's buffer: the largest `Event::Data` (and the capacity of its `data`).
const READ_CHUNK: usize = 256 * 1024;

/// A connection refuses writes ([`Error::WouldBlock`]) that would queue more than this many
/// bytes (a write into an empty queue is always taken).
pub const WRITE_HIGH_WATER: usize = 8 * 1024 * 1024;

/// After a refused write, [`Event::Drain`] is sent once at most this many bytes are queued
/// (half the high-water mark: the writer is refilled while it still has bytes to send, so
/// the stream never runs dry waiting for the consumer to wake up).
pub const WRITE_LOW_WATER: usize = WRITE_HIGH_WATER / 2;

#[derive(Debug, Default)]
struct WriteQueue {
    bytes: std::sync::atomic::AtomicUsize,
    refused: std::sync::atomic::AtomicBool,
}

struct ConnInner {
    flow: Arc<Flow>,
    id: u64,
    queued: Arc<WriteQueue>,
    remote: PublicKey,
    handshake_hash: Option<[u8; 64]>,
    is_initiator: bool,
    tx: mpsc::UnboundedSender<ConnCmd>,
    thread: ThreadId,
}

/// An encrypted connection owned by the runtime thread. Received bytes arrive as
/// [`Event::Data`]; dropping the last clone destroys the connection.
#[derive(Clone)]
pub struct Conn {
    inner: Arc<ConnInner>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.inner.id)
            .field("remote", &self.inner.remote)
            .finish_non_exhaustive()
    }
}

type Pump = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Conn {
    /// Wraps a stream: returns the handle and the task that pumps it (to spawn after the
    /// connection event is queued, so that its data events follow it).
    fn start<S>(
        thread: ThreadId,
        q: &EventQueue,
        stream: S,
        remote: PublicKey,
        handshake_hash: Option<[u8; 64]>,
        is_initiator: bool,
    ) -> (Conn, Pump)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let id = next_id();
        let (tx, rx) = mpsc::unbounded_channel();
        let flow = Arc::new(Flow {
            enabled: std::sync::atomic::AtomicBool::new(false),
            credit: tokio::sync::Semaphore::new(0),
        });
        let queued = Arc::new(WriteQueue::default());
        let conn = Conn {
            inner: Arc::new(ConnInner {
                flow: flow.clone(),
                id,
                queued: queued.clone(),
                remote,
                handshake_hash,
                is_initiator,
                tx,
                thread,
            }),
        };
        (
            conn,
            Box::pin(pump(id, q.clone(), stream, rx, flow, queued)),
        )
    }

    /// The id in this connection's events.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The remote key.
    pub fn remote_public_key(&self) -> PublicKey {
        self.inner.remote
    }

    /// The Noise handshake hash.
    pub fn handshake_hash(&self) -> Option<[u8; 64]> {
        self.inner.handshake_hash
    }

    /// Whether we dialled.
    pub fn is_initiator(&self) -> bool {
        self.inner.is_initiator
    }

    /// Bounds the received bytes queued as [`Event::Data`] but not yet reported consumed with
    /// [`Conn::consumed`] to `high_water` (at least 256 KiB, the largest data event): past it
    /// the runtime stops reading the stream (so the sender is slowed down) until the consumer
    /// catches up. Off by default; only the first call counts. Bytes already queued when it is
    /// called are not counted.
    pub fn limit_reading(&self, high_water: usize) {
        let f = &self.inner.flow;
        if !f.enabled.swap(true, Ordering::SeqCst) {
            let n = high_water.clamp(READ_CHUNK, tokio::sync::Semaphore::MAX_PERMITS / 2);
            f.credit.add_permits(n);
        }
    }

    /// Reports `n` received bytes consumed (with [`Conn::limit_reading`]; a no-op otherwise).
    pub fn consumed(&self, n: usize) {
        let f = &self.inner.flow;
        if n > 0 && f.enabled.load(Ordering::SeqCst) {
            // Never past the semaphore's maximum (which would panic), whatever the caller says.
            let room = (tokio::sync::Semaphore::MAX_PERMITS / 2)
                .saturating_sub(f.credit.available_permits());
            f.credit.add_permits(n.min(room));
        }
    }

    fn reserve(&self, n: usize) -> Result<()> {
        let q = &self.inner.queued;
        let mut cur = q.bytes.load(Ordering::SeqCst);
        loop {
            if cur > 0 && cur + n > WRITE_HIGH_WATER {
                q.refused.store(true, Ordering::SeqCst);
                // Re-check after flagging: if the writer emptied the queue meanwhile it may have
                // missed the flag, so try again; otherwise it will see the flag and send Drain.
                let now = q.bytes.load(Ordering::SeqCst);
                if now == cur {
                    return Err(Error::WouldBlock);
                }
                cur = now;
                continue;
            }
            match q
                .bytes
                .compare_exchange(cur, cur + n, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    /// Queues bytes without waiting. [`Error::WouldBlock`] (nothing queued) when more than
    /// [`WRITE_HIGH_WATER`] bytes would wait: an [`Event::Drain`] follows once at most
    /// [`WRITE_LOW_WATER`] bytes are queued. A write failure closes the connection with a
    /// `Close` event.
    pub fn write_nowait(&self, data: Vec<u8>) -> Result<()> {
        self.write_nowait_owned(data)
    }

    /// [`Conn::write_nowait`] for any owner of the bytes, which are written without being
    /// copied first (e.g. a binding's immutable host-language buffer): `data` is dropped on
    /// the runtime thread once written (or when the connection closes), and its bytes must not
    /// change meanwhile. One call is one message of the encrypted stream (up to its maximum
    /// message size).
    pub fn write_nowait_owned<B>(&self, data: B) -> Result<()>
    where
        B: AsRef<[u8]> + Send + 'static,
    {
        let n = data.as_ref().len();
        self.reserve(n)?;
        self.inner
            .tx
            .send(ConnCmd::Write(Box::new(data), None))
            .map_err(|_| Error::Closed)
    }

    /// Bytes queued and not yet handed to the stream.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued.bytes.load(Ordering::SeqCst)
    }

    /// Writes bytes; the reply says when they were handed to the stream (no write limit: the
    /// caller awaits each write).
    pub fn write(&self, data: Vec<u8>) -> Reply<Result<()>> {
        self.inner
            .queued
            .bytes
            .fetch_add(data.len(), Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        // On failure the sender is dropped with the command: the reply reports `Closed`.
        let _ = self.inner.tx.send(ConnCmd::Write(Box::new(data), Some(tx)));
        Reply {
            rx,
            thread: self.inner.thread,
        }
    }

    /// Ends our side (the remote sees end of stream; reading goes on).
    pub fn end(&self) -> Result<()> {
        self.inner.tx.send(ConnCmd::End).map_err(|_| Error::Closed)
    }

    /// Closes the connection now.
    pub fn destroy(&self) -> Result<()> {
        self.inner
            .tx
            .send(ConnCmd::Destroy)
            .map_err(|_| Error::Closed)
    }
}

/// Reads once from `rd` into a buffer of `q`'s pool; the bytes read (empty at end of stream),
/// as the pool buffer itself when `q`'s consumer recycles buffers, else as an exact-size copy.
/// The pool buffer goes back to the pool unless it is handed out.
fn read_pooled<R: AsyncRead>(
    q: &EventQueue,
    mut rd: Pin<&mut R>,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<Vec<u8>>> {
    let mut buf = q.read_buffer();
    let r = {
        let mut read = std::pin::pin!(rd.read_buf(&mut buf));
        read.as_mut().poll(cx)
    };
    match r {
        Poll::Ready(Ok(_)) if q.recycles() => Poll::Ready(Ok(buf)),
        Poll::Ready(Ok(_)) => {
            let data = buf.clone(); // exact capacity: the bytes read
            q.put_back(buf);
            Poll::Ready(Ok(data))
        }
        Poll::Ready(Err(e)) => {
            q.put_back(buf);
            Poll::Ready(Err(e))
        }
        Poll::Pending => {
            q.put_back(buf);
            Poll::Pending
        }
    }
}

/// Runs a connection: a reader task turns received bytes into events while this task writes
/// (so that a blocked write never stops reading: no deadlock when both sides send in bulk).
async fn pump<S>(
    id: u64,
    q: EventQueue,
    stream: S,
    mut rx: mpsc::UnboundedReceiver<ConnCmd>,
    flow: Arc<Flow>,
    queued: Arc<WriteQueue>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (done_tx, mut done_rx) = oneshot::channel::<Option<String>>();
    let rq = q.clone();
    let reader = tokio::spawn(async move {
        let result = loop {
            rq.wait_room().await;
            // Read into a pooled buffer that is held only during the poll (an idle connection
            // holds none). A consumer that recycles buffers (`EventQueue::recycle`) gets the
            // buffer itself (no copy); others get an exact-size copy and the buffer stays in
            // the pool (one warm buffer instead of a fresh allocation, and its page faults, per
            // read).
            let read = std::future::poll_fn(|cx| read_pooled(&rq, Pin::new(&mut rd), cx)).await;
            match read.map(|buf| (buf.len(), buf)) {
                Ok((0, _)) => {
                    rq.push(Event::End { conn: id });
                    break None;
                }
                Ok((n, buf)) => {
                    if flow.enabled.load(Ordering::SeqCst) {
                        // Wait for the consumer (credit for these bytes) before queueing them.
                        if let Ok(p) = flow.credit.acquire_many(n as u32).await {
                            p.forget();
                        }
                    }
                    rq.push(Event::Data {
                        conn: id,
                        data: buf,
                    });
                }
                Err(e) => break Some(e.to_string()),
            }
        };
        let _ = done_tx.send(result);
    });
    let mut read_done = false;
    let mut ended = false;
    let error = loop {
        if read_done && ended {
            break None;
        }
        tokio::select! {
            r = &mut done_rx, if !read_done => match r {
                Ok(None) => read_done = true,
                Ok(Some(e)) => break Some(e),
                Err(_) => break None,
            },
            cmd = rx.recv() => match cmd {
                Some(ConnCmd::Write(data, done)) => {
                    let n = (*data).as_ref().len();
                    let r = if ended {
                        Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "write after end"))
                    } else {
                        wr.write_all((*data).as_ref()).await
                    };
                    let failed = (!ended).then(|| r.as_ref().err().map(ToString::to_string)).flatten();
                    if let Some(done) = done {
                        let _ = done.send(r.map_err(|e| Error::Io(e.to_string())));
                    }
                    if let Some(e) = failed {
                        break Some(e);
                    }
                    // A refused writer set `refused` while some write was still queued: this one
                    // or a later one gets here with the flag set (at the latest, emptying it).
                    if queued.bytes.fetch_sub(n, Ordering::SeqCst) - n <= WRITE_LOW_WATER
                        && queued.refused.swap(false, Ordering::SeqCst)
                    {
                        q.push(Event::Drain { conn: id });
                    }
                }
                Some(ConnCmd::End) => {
                    if !ended {
                        ended = true;
                        if let Err(e) = wr.shutdown().await {
                            break Some(e.to_string());
                        }
                    }
                }
                Some(ConnCmd::Destroy) | None => break None,
            },
        }
    };
    // On the current-thread runtime the aborted reader is never polled again: no event of
    // this connection follows `Close`.
    reader.abort();
    drop(wr);
    q.push(Event::Close { conn: id, error });
}
