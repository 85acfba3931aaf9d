//! `p2pswarm._native`: the pyo3 layer over the runtime handle layer (`p2pswarm::runtime`).
//!
//! Only conversions live here: every call goes to the runtime thread through a handle, async
//! calls are native pyo3 coroutines awaiting a `Reply`, and events are pulled from an
//! `EventQueue` by the Python side (its readiness fd is registered with the asyncio loop, so
//! events are handled on the loop's thread). The idiomatic API is the pure-Python package
//! `p2pswarm` on top of this module.
//!
//! GIL rules: no call blocks while holding the GIL (every blocking wait runs in `py.detach`),
//! and the runtime thread only takes the GIL for the firewall callback (with
//! `Python::try_attach`, so never during interpreter finalisation) and to wake an awaiting
//! coroutine. It drops the `bytes` objects given to `Conn.write` once written (immutable, read
//! there without the GIL): pyo3 defers those decrefs to the next call into this module.

mod joined;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList, PyTuple};
use swarm_core::crypto::{KeyPair, PublicKey};
use swarm_core::runtime::{
    self as rt, DhtOptions, Event, EventQueue, JoinOptions, Next, PeerInfo, Runtime, SwarmOptions,
};

pyo3::create_exception!(
    _native,
    P2PSwarmError,
    PyException,
    "Base class of p2pswarm errors."
);
pyo3::create_exception!(
    _native,
    ClosedError,
    P2PSwarmError,
    "The swarm, node, connection or runtime is closed."
);
pyo3::create_exception!(
    _native,
    WouldDeadlockError,
    P2PSwarmError,
    "A blocking call was made on the runtime thread (e.g. from a firewall callback)."
);
pyo3::create_exception!(
    _native,
    BindError,
    P2PSwarmError,
    "The UDP sockets could not be bound."
);
pyo3::create_exception!(
    _native,
    BootstrapTimeoutError,
    P2PSwarmError,
    "The DHT node did not finish bootstrapping in time."
);
pyo3::create_exception!(
    _native,
    ConnectError,
    P2PSwarmError,
    "A connection attempt failed."
);
pyo3::create_exception!(
    _native,
    PeerNotFoundError,
    ConnectError,
    "No DHT node knows a server for this key."
);
pyo3::create_exception!(
    _native,
    ConnectionRejectedError,
    ConnectError,
    "The server rejected the connection (e.g. its firewall)."
);
pyo3::create_exception!(_native, DHTError, P2PSwarmError, "A DHT operation failed.");
pyo3::create_exception!(
    _native,
    NotFoundError,
    DHTError,
    "No (valid) value was found on the DHT."
);
pyo3::create_exception!(
    _native,
    StreamError,
    P2PSwarmError,
    "A stream (connection) failed."
);
pyo3::create_exception!(
    _native,
    UnsupportedError,
    P2PSwarmError,
    "The operation is not supported."
);

fn err(e: rt::Error) -> PyErr {
    use swarm_core::dht::{ConnectError as CE, DhtError as DE};
    let msg = e.to_string();
    match e {
        rt::Error::Closed | rt::Error::Connect(CE::Destroyed) => ClosedError::new_err(msg),
        rt::Error::WouldDeadlock => WouldDeadlockError::new_err(msg),
        rt::Error::InvalidArgument(m) => PyValueError::new_err(m),
        rt::Error::Bind(_) => BindError::new_err(msg),
        rt::Error::BootstrapTimeout => BootstrapTimeoutError::new_err(msg),
        rt::Error::Connect(CE::PeerNotFound) => PeerNotFoundError::new_err(msg),
        rt::Error::Connect(CE::Rejected(_)) => ConnectionRejectedError::new_err(msg),
        rt::Error::Connect(_) => ConnectError::new_err(msg),
        rt::Error::Dht(DE::NotFound) => NotFoundError::new_err(msg),
        rt::Error::Dht(_) => DHTError::new_err(msg),
        rt::Error::Unsupported(_) => UnsupportedError::new_err(msg),
        rt::Error::Io(_) => StreamError::new_err(msg),
        _ => P2PSwarmError::new_err(msg),
    }
}

// ---------------------------------------------------------------------------------------------
// The process-wide runtime

static RUNTIME: OnceLock<Mutex<Option<Runtime>>> = OnceLock::new();

fn slot() -> &'static Mutex<Option<Runtime>> {
    RUNTIME.get_or_init(|| Mutex::new(None))
}

/// The runtime, started on first use; `ClosedError` after `shutdown()`.
fn runtime() -> PyResult<Runtime> {
    static STARTED: OnceLock<()> = OnceLock::new();
    let mut g = slot().lock().unwrap_or_else(PoisonError::into_inner);
    if g.is_none() {
        if STARTED.get().is_some() {
            return Err(ClosedError::new_err("the p2pswarm runtime is shut down"));
        }
        *g = Some(Runtime::new().map_err(err)?);
        let _ = STARTED.set(());
    }
    g.clone()
        .ok_or_else(|| ClosedError::new_err("the p2pswarm runtime is shut down"))
}

/// Stops the runtime thread: every swarm, node and connection closes, pending awaits raise
/// `ClosedError`. Idempotent; registered with `atexit`. Releases the GIL while joining.
#[pyfunction]
fn shutdown(py: Python<'_>) {
    let rt = slot().lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(rt) = rt {
        py.detach(move || {
            rt.shutdown();
            drop(rt);
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Argument helpers

fn key32(name: &str, b: &[u8]) -> PyResult<[u8; 32]> {
    b.try_into()
        .map_err(|_| PyValueError::new_err(format!("{name} must be 32 bytes, got {}", b.len())))
}

fn public_key(name: &str, b: &[u8]) -> PyResult<PublicKey> {
    Ok(PublicKey(key32(name, b)?))
}

fn key_pair_from_secret(b: &[u8]) -> PyResult<KeyPair> {
    let sk: &[u8; 64] = b.try_into().map_err(|_| {
        PyValueError::new_err(format!("secret_key must be 64 bytes, got {}", b.len()))
    })?;
    KeyPair::from_secret_key(sk).map_err(|_| PyValueError::new_err("invalid secret key"))
}

fn parse_bootstrap(list: Option<Vec<String>>) -> PyResult<Option<Vec<SocketAddrV4>>> {
    list.map(|l| {
        l.iter()
            .map(|s| {
                s.parse::<SocketAddrV4>().map_err(|_| {
                    PyValueError::new_err(format!(
                        "bootstrap entries must be \"A.B.C.D:PORT\", got {s:?}"
                    ))
                })
            })
            .collect()
    })
    .transpose()
}

fn parse_host(host: Option<String>) -> PyResult<Option<Ipv4Addr>> {
    host.map(|h| {
        h.parse()
            .map_err(|_| PyValueError::new_err(format!("host must be an IPv4 address, got {h:?}")))
    })
    .transpose()
}

fn timeout(secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| PyValueError::new_err("timeout must be a non-negative number of seconds"))
}

fn bytes<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, b)
}

fn peer_tuple<'py>(py: Python<'py>, p: &PeerInfo) -> PyResult<Bound<'py, PyTuple>> {
    let topics = PyList::new(py, p.topics.iter().map(|t| bytes(py, t)))?;
    PyTuple::new(
        py,
        [
            bytes(py, p.public_key.as_bytes()).into_any(),
            topics.into_any(),
            p.prioritized.into_pyobject(py)?.to_owned().into_any(),
            p.banned.into_pyobject(py)?.to_owned().into_any(),
            p.explicit.into_pyobject(py)?.to_owned().into_any(),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// A value the runtime produces later (the swarm or node being bootstrapped), awaitable and
// blockingly waitable.

struct Lazy<T> {
    state: Mutex<Option<Result<T, rt::Error>>>,
    cond: Condvar,
    notify: tokio::sync::Notify,
}

impl<T: Clone + Send + 'static> Lazy<T> {
    fn start(runtime: &Runtime, reply: rt::Reply<Result<T, rt::Error>>) -> Arc<Self> {
        let lazy = Arc::new(Self {
            state: Mutex::new(None),
            cond: Condvar::new(),
            notify: tokio::sync::Notify::new(),
        });
        let l = lazy.clone();
        drop(runtime.call(async move {
            let r = reply.await.and_then(|r| r);
            *l.state.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
            l.cond.notify_all();
            l.notify.notify_waiters();
        }));
        lazy
    }

    fn peek(&self) -> Option<Result<T, rt::Error>> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn get(self: Arc<Self>) -> Result<T, rt::Error> {
        loop {
            let n = self.notify.notified();
            if let Some(r) = self.peek() {
                return r;
            }
            // `notify_waiters` wakes `n` even though it is not polled yet; the timeout is a
            // belt-and-braces re-check.
            let _ = tokio::time::timeout(Duration::from_millis(200), n).await;
        }
    }

    fn get_blocking(&self, py: Python<'_>) -> Result<T, rt::Error> {
        py.detach(|| {
            let mut g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(r) = g.clone() {
                    return r;
                }
                if slot()
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_none()
                {
                    return Err(rt::Error::Closed);
                }
                g = self
                    .cond
                    .wait_timeout(g, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        })
    }
}

/// Awaits a `Lazy` from Python (the coroutine is driven by asyncio, not tokio: wait on the
/// runtime thread instead).
async fn lazy_get<T: Clone + Send + 'static>(l: &Arc<Lazy<T>>) -> PyResult<T> {
    if let Some(r) = l.peek() {
        return r.map_err(err);
    }
    let rt = runtime()?;
    let l2 = l.clone();
    rt.call(async move { l2.get().await })
        .await
        .and_then(|r| r)
        .map_err(err)
}

// ---------------------------------------------------------------------------------------------
// Event queue

/// Most bytes of consecutive data events that `Queue.take` joins into one `bytes`: the
/// runtime's largest data event. Larger objects measured worse (1 MiB: the allocator kept
/// growing and trimming its heap, a page fault per 4 KiB received).
const JOIN_MAX: usize = 256 * 1024;

/// Consecutive data events of one connection, not yet turned into a tuple.
#[derive(Default)]
struct DataRun {
    conn: Option<u64>,
    len: usize,
    parts: Vec<Vec<u8>>,
}

impl DataRun {
    /// Appends the run as one `("data", id, bytes)` and recycles its buffers.
    fn flush(&mut self, py: Python<'_>, out: &Bound<'_, PyList>, q: &EventQueue) -> PyResult<()> {
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        let data = joined::bytes_joined(py, &self.parts);
        self.len = 0;
        for p in self.parts.drain(..) {
            q.recycle(p);
        }
        out.append(PyTuple::new(
            py,
            [
                "data".into_pyobject(py)?.into_any(),
                conn.into_pyobject(py)?.into_any(),
                data?.into_any(),
            ],
        )?)
    }
}

/// An event queue: swarms, DHT nodes and connections created with it report here.
#[pyclass(frozen, module = "p2pswarm._native")]
struct Queue {
    q: EventQueue,
}

fn event_tuple(py: Python<'_>, ev: Event) -> PyResult<Bound<'_, PyTuple>> {
    match ev {
        Event::Connection { source, conn, peer } => {
            let peer = match peer {
                Some(p) => peer_tuple(py, &p)?.into_any(),
                None => py.None().into_bound(py),
            };
            let conn = Bound::new(py, Conn { c: conn })?;
            PyTuple::new(
                py,
                [
                    "connection".into_pyobject(py)?.into_any(),
                    source.into_pyobject(py)?.into_any(),
                    conn.into_any(),
                    peer,
                ],
            )
        }
        Event::Data { conn, data } => PyTuple::new(
            py,
            [
                "data".into_pyobject(py)?.into_any(),
                conn.into_pyobject(py)?.into_any(),
                bytes(py, &data).into_any(),
            ],
        ),
        Event::End { conn } => PyTuple::new(
            py,
            [
                "end".into_pyobject(py)?.into_any(),
                conn.into_pyobject(py)?.into_any(),
            ],
        ),
        Event::Drain { conn } => PyTuple::new(
            py,
            [
                "drain".into_pyobject(py)?.into_any(),
                conn.into_pyobject(py)?.into_any(),
            ],
        ),
        Event::Close { conn, error } => PyTuple::new(
            py,
            [
                "close".into_pyobject(py)?.into_any(),
                conn.into_pyobject(py)?.into_any(),
                error.into_pyobject(py)?.into_any(),
            ],
        ),
        Event::Update { source } => PyTuple::new(
            py,
            [
                "update".into_pyobject(py)?.into_any(),
                source.into_pyobject(py)?.into_any(),
            ],
        ),
        Event::Ban { source, peer } => PyTuple::new(
            py,
            [
                "ban".into_pyobject(py)?.into_any(),
                source.into_pyobject(py)?.into_any(),
                peer_tuple(py, &peer)?.into_any(),
            ],
        ),
        _ => PyTuple::new(py, ["unknown".into_pyobject(py)?.into_any()]),
    }
}

#[pymethods]
impl Queue {
    #[new]
    fn new() -> PyResult<Self> {
        Ok(Self {
            q: runtime()?.event_queue().map_err(err)?,
        })
    }

    /// Readable while events are queued or the queue is closed (register with `add_reader`).
    fn fileno(&self) -> i32 {
        self.q.readiness_fd()
    }

    /// Up to `max` queued events as tuples, without waiting; `None` once closed and drained.
    ///
    /// Consecutive data events of one connection come as one `("data", id, bytes)` of up to
    /// 256 KiB (small messages are joined); their buffers go back to the runtime for its next
    /// reads.
    fn take<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Option<Bound<'py, PyList>>> {
        let out = PyList::empty(py);
        let mut run = DataRun::default();
        let mut closed = false;
        for _ in 0..max {
            match self.q.try_next() {
                Next::Event(Event::Data { conn, data }) => {
                    if run.conn != Some(conn) || run.len + data.len() > JOIN_MAX {
                        run.flush(py, &out, &self.q)?;
                    }
                    run.conn = Some(conn);
                    run.len += data.len();
                    run.parts.push(data);
                }
                Next::Event(ev) => {
                    run.flush(py, &out, &self.q)?;
                    out.append(event_tuple(py, ev)?)?;
                }
                Next::Timeout => break,
                Next::Closed => {
                    closed = true;
                    break;
                }
            }
        }
        run.flush(py, &out, &self.q)?;
        if closed && out.is_empty() {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// Closes the queue (no more events).
    fn close(&self) {
        self.q.close();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.q.is_closed()
    }
}

// ---------------------------------------------------------------------------------------------
// Swarm

fn firewall_fn(cb: Py<PyAny>) -> rt::Firewall {
    Arc::new(move |pk: &PublicKey| {
        // Runs on the runtime thread. Never during finalisation (try_attach); an exception
        // rejects the peer (fail closed) and is reported through `sys.unraisablehook`.
        Python::try_attach(|py| match cb.call1(py, (bytes(py, pk.as_bytes()),)) {
            Ok(v) => v.is_truthy(py).unwrap_or(true),
            Err(e) => {
                e.write_unraisable(py, Some(cb.bind(py)));
                true
            }
        })
        .unwrap_or(true)
    })
}

/// A swarm owned by the runtime thread.
#[pyclass(frozen, module = "p2pswarm._native")]
struct Swarm {
    lazy: Arc<Lazy<rt::SwarmHandle>>,
}

impl Swarm {
    fn h(&self, py: Python<'_>) -> PyResult<rt::SwarmHandle> {
        self.lazy.get_blocking(py).map_err(err)
    }
}

#[pymethods]
impl Swarm {
    #[new]
    #[pyo3(signature = (queue, seed=None, secret_key=None, max_peers=None, max_parallel=None, firewall=None, bootstrap=None, host=None, port=None, ready_timeout=30.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        queue: &Queue,
        seed: Option<&[u8]>,
        secret_key: Option<&[u8]>,
        max_peers: Option<usize>,
        max_parallel: Option<usize>,
        firewall: Option<Py<PyAny>>,
        bootstrap: Option<Vec<String>>,
        host: Option<String>,
        port: Option<u16>,
        ready_timeout: f64,
    ) -> PyResult<Self> {
        let mut o = SwarmOptions::new();
        o.seed = seed.map(|s| key32("seed", s)).transpose()?;
        o.key_pair = secret_key.map(key_pair_from_secret).transpose()?;
        o.max_peers = max_peers;
        o.max_parallel = max_parallel;
        o.firewall = firewall.map(firewall_fn);
        o.bootstrap = parse_bootstrap(bootstrap)?;
        o.host = parse_host(host)?;
        o.port = port;
        o.ready_timeout = timeout(ready_timeout)?;
        let rt = runtime()?;
        let reply = rt.swarm(o, &queue.q);
        Ok(Self {
            lazy: Lazy::start(&rt, reply),
        })
    }

    /// Waits until the DHT node is bootstrapped and the swarm exists.
    async fn ready(&self) -> PyResult<()> {
        lazy_get(&self.lazy).await.map(drop)
    }

    /// The id in this swarm's events (waits for `ready`, GIL released).
    #[getter]
    fn id(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.h(py)?.id())
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, self.h(py)?.public_key().as_bytes()))
    }

    fn join(
        &self,
        py: Python<'_>,
        topic: &[u8],
        server: bool,
        client: bool,
    ) -> PyResult<Discovery> {
        let topic = key32("topic", topic)?;
        let h = self.h(py)?;
        let reply = h.join(topic, JoinOptions { server, client });
        let d = py.detach(|| reply.wait()).and_then(|r| r).map_err(err)?;
        Ok(Discovery { d })
    }

    async fn leave(&self, topic: Vec<u8>) -> PyResult<()> {
        let topic = key32("topic", &topic)?;
        let h = lazy_get(&self.lazy).await?;
        h.leave(topic).await.map_err(err)
    }

    fn join_peer(&self, py: Python<'_>, public_key: &[u8]) -> PyResult<()> {
        let pk = self::public_key("public_key", public_key)?;
        self.h(py)?.join_peer(pk);
        Ok(())
    }

    fn leave_peer(&self, py: Python<'_>, public_key: &[u8]) -> PyResult<()> {
        let pk = self::public_key("public_key", public_key)?;
        self.h(py)?.leave_peer(&pk);
        Ok(())
    }

    async fn listen(&self) -> PyResult<()> {
        let h = lazy_get(&self.lazy).await?;
        h.listen().await.and_then(|r| r).map_err(err)
    }

    async fn flush(&self) -> PyResult<bool> {
        let h = lazy_get(&self.lazy).await?;
        h.flush().await.map_err(err)
    }

    async fn suspend(&self) -> PyResult<()> {
        let h = lazy_get(&self.lazy).await?;
        h.suspend().await.and_then(|r| r).map_err(err)
    }

    async fn resume(&self) -> PyResult<()> {
        let h = lazy_get(&self.lazy).await?;
        h.resume().await.and_then(|r| r).map_err(err)
    }

    async fn destroy(&self) -> PyResult<()> {
        let Ok(h) = lazy_get(&self.lazy).await else {
            return Ok(()); // never created (or runtime gone): nothing to destroy
        };
        match h.destroy().await {
            Ok(()) | Err(rt::Error::Closed) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    #[getter]
    fn connecting(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.h(py)?.connecting())
    }

    #[getter]
    fn connections(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.h(py)?.connections())
    }

    fn peers<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.h(py)?
            .peers()
            .iter()
            .map(|p| peer_tuple(py, p))
            .collect()
    }

    fn peer<'py>(
        &self,
        py: Python<'py>,
        public_key: &[u8],
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let pk = self::public_key("public_key", public_key)?;
        self.h(py)?
            .peer(&pk)
            .map(|p| peer_tuple(py, &p))
            .transpose()
    }

    /// `(server, client, sessions, refreshing, suspended)` or `None` when not joined.
    fn status(&self, py: Python<'_>, topic: &[u8]) -> PyResult<Option<StatusTuple>> {
        let topic = key32("topic", topic)?;
        Ok(self
            .h(py)?
            .status(&topic)
            .map(|s| (s.server, s.client, s.sessions, s.refreshing, s.suspended)))
    }

    fn ban(&self, py: Python<'_>, public_key: &[u8], banned: bool) -> PyResult<()> {
        let pk = self::public_key("public_key", public_key)?;
        self.h(py)?.ban(&pk, banned);
        Ok(())
    }

    /// The swarm's DHT node; its connections report to `queue`.
    fn dht(&self, py: Python<'_>, queue: &Queue) -> PyResult<Dht> {
        let d = self.h(py)?.dht(&queue.q);
        Ok(Dht {
            lazy: Arc::new(Lazy {
                state: Mutex::new(Some(Ok(d))),
                cond: Condvar::new(),
                notify: tokio::sync::Notify::new(),
            }),
        })
    }
}

/// `(server, client, sessions, refreshing, suspended)`
type StatusTuple = (bool, bool, usize, bool, bool);

/// A joined topic.
#[pyclass(frozen, module = "p2pswarm._native")]
struct Discovery {
    d: rt::Discovery,
}

#[pymethods]
impl Discovery {
    #[getter]
    fn topic<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.d.topic())
    }

    async fn flushed(&self) -> PyResult<bool> {
        self.d.flushed().await.map_err(err)
    }

    async fn refresh(&self, server: bool, client: bool) -> PyResult<bool> {
        self.d
            .refresh(JoinOptions { server, client })
            .await
            .and_then(|r| r)
            .map_err(err)
    }

    async fn destroy(&self) -> PyResult<()> {
        match self.d.destroy().await {
            Ok(()) | Err(rt::Error::Closed) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connection

/// An encrypted connection; received bytes arrive as `("data", id, bytes)` events.
#[pyclass(frozen, module = "p2pswarm._native")]
struct Conn {
    c: rt::Conn,
}

#[pymethods]
impl Conn {
    #[getter]
    fn id(&self) -> u64 {
        self.c.id()
    }

    #[getter]
    fn remote_public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, self.c.remote_public_key().as_bytes())
    }

    #[getter]
    fn handshake_hash<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.c.handshake_hash().map(|h| bytes(py, &h))
    }

    #[getter]
    fn is_initiator(&self) -> bool {
        self.c.is_initiator()
    }

    /// Queues bytes (never blocks); returns how many were taken: all, or 0 when the runtime's
    /// write queue is full (a `("drain", id)` event follows once it has room).
    ///
    /// A `bytes` object is not copied: the runtime holds a reference to it until it is written
    /// (released on the next call into this module). Other buffers are copied once.
    fn write(&self, data: PyBackedBytes) -> PyResult<usize> {
        let n = data.len();
        match self.c.write_nowait_owned(data) {
            Ok(()) => Ok(n),
            Err(rt::Error::WouldBlock) => Ok(0),
            Err(e) => Err(err(e)),
        }
    }

    /// Completes when every byte written before was handed to the stream.
    async fn flush(&self) -> PyResult<()> {
        self.c.write(Vec::new()).await.and_then(|r| r).map_err(err)
    }

    fn end(&self) -> PyResult<()> {
        self.c.end().map_err(err)
    }

    fn destroy(&self) {
        let _ = self.c.destroy();
    }

    fn limit_reading(&self, high_water: usize) {
        self.c.limit_reading(high_water);
    }

    fn consumed(&self, n: usize) {
        self.c.consumed(n);
    }
}

// ---------------------------------------------------------------------------------------------
// DHT

/// Returns `(public_key, secret_key)` of the key pair of `seed` (random without one).
#[pyfunction]
#[pyo3(signature = (seed=None))]
fn key_pair<'py>(
    py: Python<'py>,
    seed: Option<&[u8]>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let kp = match seed {
        Some(s) => KeyPair::from_seed(&key32("seed", s)?),
        None => KeyPair::generate(),
    };
    Ok((
        bytes(py, kp.public_key().as_bytes()),
        bytes(py, kp.secret_key()),
    ))
}

/// A DHT node owned by the runtime thread.
#[pyclass(frozen, module = "p2pswarm._native")]
struct Dht {
    lazy: Arc<Lazy<rt::DhtHandle>>,
}

#[pymethods]
impl Dht {
    #[new]
    #[pyo3(signature = (queue, seed=None, secret_key=None, bootstrap=None, host=None, port=None, ready_timeout=30.0))]
    fn new(
        queue: &Queue,
        seed: Option<&[u8]>,
        secret_key: Option<&[u8]>,
        bootstrap: Option<Vec<String>>,
        host: Option<String>,
        port: Option<u16>,
        ready_timeout: f64,
    ) -> PyResult<Self> {
        let mut o = DhtOptions::new();
        o.seed = seed.map(|s| key32("seed", s)).transpose()?;
        o.key_pair = secret_key.map(key_pair_from_secret).transpose()?;
        o.bootstrap = parse_bootstrap(bootstrap)?;
        o.host = parse_host(host)?;
        o.port = port;
        o.ready_timeout = timeout(ready_timeout)?;
        let rt = runtime()?;
        let reply = rt.dht(o, &queue.q);
        Ok(Self {
            lazy: Lazy::start(&rt, reply),
        })
    }

    async fn ready(&self) -> PyResult<()> {
        lazy_get(&self.lazy).await.map(drop)
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let h = self.lazy.get_blocking(py).map_err(err)?;
        Ok(bytes(py, h.public_key().as_bytes()))
    }

    #[pyo3(signature = (public_key, secret_key=None))]
    async fn connect(&self, public_key: Vec<u8>, secret_key: Option<Vec<u8>>) -> PyResult<Conn> {
        let pk = self::public_key("public_key", &public_key)?;
        let kp = secret_key
            .as_deref()
            .map(key_pair_from_secret)
            .transpose()?;
        let h = lazy_get(&self.lazy).await?;
        let c = h.connect(pk, kp).await.and_then(|r| r).map_err(err)?;
        Ok(Conn { c })
    }

    #[pyo3(signature = (secret_key=None))]
    async fn listen(&self, secret_key: Option<Vec<u8>>) -> PyResult<Server> {
        let kp = secret_key
            .as_deref()
            .map(key_pair_from_secret)
            .transpose()?;
        let h = lazy_get(&self.lazy).await?;
        let s = h.listen(kp).await.and_then(|r| r).map_err(err)?;
        Ok(Server { s })
    }

    /// `[(from "A.B.C.D:PORT", [(public_key, ["relay:port", ...]), ...], bump), ...]`
    async fn lookup(
        &self,
        topic: Vec<u8>,
    ) -> PyResult<Vec<(String, Vec<(Vec<u8>, Vec<String>)>, u64)>> {
        let topic = key32("topic", &topic)?;
        let h = lazy_get(&self.lazy).await?;
        let replies = h.lookup(topic).await.and_then(|r| r).map_err(err)?;
        Ok(replies
            .into_iter()
            .map(|r| {
                let peers = r
                    .peers
                    .iter()
                    .map(|p| {
                        (
                            p.public_key.as_bytes().to_vec(),
                            p.relay_addresses.iter().map(ToString::to_string).collect(),
                        )
                    })
                    .collect();
                (r.from.to_string(), peers, r.bump)
            })
            .collect())
    }

    async fn announce(&self, topic: Vec<u8>, secret_key: Vec<u8>) -> PyResult<usize> {
        let topic = key32("topic", &topic)?;
        let kp = key_pair_from_secret(&secret_key)?;
        let h = lazy_get(&self.lazy).await?;
        h.announce(topic, kp).await.and_then(|r| r).map_err(err)
    }

    async fn unannounce(&self, topic: Vec<u8>, secret_key: Vec<u8>) -> PyResult<usize> {
        let topic = key32("topic", &topic)?;
        let kp = key_pair_from_secret(&secret_key)?;
        let h = lazy_get(&self.lazy).await?;
        h.unannounce(topic, kp).await.and_then(|r| r).map_err(err)
    }

    async fn immutable_put(&self, value: Vec<u8>) -> PyResult<Vec<u8>> {
        let h = lazy_get(&self.lazy).await?;
        let hash = h.immutable_put(value).await.and_then(|r| r).map_err(err)?;
        Ok(hash.to_vec())
    }

    async fn immutable_get(&self, hash: Vec<u8>) -> PyResult<Vec<u8>> {
        let hash = key32("hash", &hash)?;
        let h = lazy_get(&self.lazy).await?;
        h.immutable_get(hash).await.and_then(|r| r).map_err(err)
    }

    async fn mutable_put(&self, secret_key: Vec<u8>, value: Vec<u8>, seq: u64) -> PyResult<usize> {
        let kp = key_pair_from_secret(&secret_key)?;
        let h = lazy_get(&self.lazy).await?;
        h.mutable_put(kp, value, seq)
            .await
            .and_then(|r| r)
            .map_err(err)
    }

    /// `(seq, value, signature, from)`
    async fn mutable_get(
        &self,
        public_key: Vec<u8>,
        min_seq: u64,
    ) -> PyResult<(u64, Vec<u8>, Vec<u8>, String)> {
        let pk = self::public_key("public_key", &public_key)?;
        let h = lazy_get(&self.lazy).await?;
        let v = h
            .mutable_get(pk, min_seq)
            .await
            .and_then(|r| r)
            .map_err(err)?;
        Ok((v.seq, v.value, v.signature.to_vec(), v.from.to_string()))
    }

    fn destroy(&self, py: Python<'_>) {
        if let Some(Ok(h)) = self.lazy.peek() {
            py.detach(|| h.destroy());
        }
    }
}

/// A listening DHT server.
#[pyclass(frozen, module = "p2pswarm._native")]
struct Server {
    s: rt::ServerHandle,
}

#[pymethods]
impl Server {
    #[getter]
    fn id(&self) -> u64 {
        self.s.id()
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, self.s.public_key().as_bytes())
    }

    async fn close(&self) -> PyResult<()> {
        match self.s.close().await {
            Ok(()) | Err(rt::Error::Closed) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}

/// A loopback testnet of DHT nodes on 127.0.0.1.
#[pyclass(frozen, module = "p2pswarm._native")]
struct Testnet {
    net: Mutex<Option<rt::Testnet>>,
    bootstrap: String,
    size: usize,
}

#[pymethods]
impl Testnet {
    /// Starts `n` nodes (blocking, GIL released; takes well under a second).
    #[new]
    #[pyo3(signature = (n=3))]
    fn new(py: Python<'_>, n: usize) -> PyResult<Self> {
        if n == 0 || n > 64 {
            return Err(PyValueError::new_err("testnet size must be in 1..=64"));
        }
        let rt = runtime()?;
        let net = py
            .detach(|| rt.testnet(n).wait())
            .and_then(|r| r)
            .map_err(err)?;
        Ok(Self {
            bootstrap: net.bootstrap().to_string(),
            size: net.len(),
            net: Mutex::new(Some(net)),
        })
    }

    #[getter]
    fn bootstrap(&self) -> Vec<String> {
        vec![self.bootstrap.clone()]
    }

    fn __len__(&self) -> usize {
        self.size
    }

    /// Stops the nodes (idempotent).
    fn close(&self, py: Python<'_>) {
        let net = self
            .net
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        py.detach(move || drop(net));
    }
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(key_pair, m)?)?;
    m.add_class::<Queue>()?;
    m.add_class::<Swarm>()?;
    m.add_class::<Discovery>()?;
    m.add_class::<Conn>()?;
    m.add_class::<Dht>()?;
    m.add_class::<Server>()?;
    m.add_class::<Testnet>()?;
    m.add("P2PSwarmError", py.get_type::<P2PSwarmError>())?;
    m.add("ClosedError", py.get_type::<ClosedError>())?;
    m.add("WouldDeadlockError", py.get_type::<WouldDeadlockError>())?;
    m.add("BindError", py.get_type::<BindError>())?;
    m.add(
        "BootstrapTimeoutError",
        py.get_type::<BootstrapTimeoutError>(),
    )?;
    m.add("ConnectError", py.get_type::<ConnectError>())?;
    m.add("PeerNotFoundError", py.get_type::<PeerNotFoundError>())?;
    m.add(
        "ConnectionRejectedError",
        py.get_type::<ConnectionRejectedError>(),
    )?;
    m.add("DHTError", py.get_type::<DHTError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("StreamError", py.get_type::<StreamError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
