//! Node.js addon of p2pswarm: a thin napi-rs layer over the handle API `p2pswarm::runtime`.
//!
//! No protocol logic lives here. One process-wide [`Runtime`] (the `p2pswarm-rt` thread) owns
//! every swarm, DHT node and connection. Events reach JavaScript through a pull: the JS wrapper
//! (`index.js`) awaits [`Queue::next`], a promise settled on the main thread via
//! `env.create_deferred()` with a batch of events. Data therefore leaves a queue only as fast as
//! JS asks for it, which keeps the runtime's flow control (connections stop reading while 4 MiB
//! waits in the queue). Async calls return promises the same way (no napi tokio runtime).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use napi::bindgen_prelude::{Buffer, Object};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;

use swarm_core::crypto::{KeyPair, PublicKey};
use swarm_core::dht::DhtError;
use swarm_core::runtime::{
    self as rt, DhtOptions, Event, EventQueue, JoinOptions, Next, Runtime, SwarmOptions,
};

mod trim;

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

fn runtime() -> Result<Runtime> {
    RUNTIME
        .get_or_init(|| {
            trim::start();
            Runtime::new().map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| Error::new(Status::GenericFailure, format!("p2pswarm runtime: {e}")))
}

fn type_err(msg: impl Into<String>) -> Error {
    Error::new(Status::InvalidArg, msg.into())
}

fn rt_err(e: &rt::Error) -> Error {
    let code = match e {
        rt::Error::InvalidArgument(_) => Status::InvalidArg,
        rt::Error::Closed => Status::Cancelled,
        _ => Status::GenericFailure,
    };
    Error::new(code, e.to_string())
}

fn arr32(b: &[u8], what: &str) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(b).map_err(|_| type_err(format!("{what} must be a 32-byte Buffer")))
}

fn key_pair_from_secret(secret: &[u8]) -> Result<KeyPair> {
    let sk = <[u8; 64]>::try_from(secret)
        .map_err(|_| type_err("keyPair.secretKey must be a 64-byte Buffer"))?;
    KeyPair::from_secret_key(&sk).map_err(|_| type_err("keyPair.secretKey is not a valid key"))
}

fn parse_bootstrap(list: &[String]) -> Result<Vec<SocketAddrV4>> {
    list.iter()
        .map(|s| {
            s.parse::<SocketAddrV4>().map_err(|_| {
                type_err(format!(
                    "bootstrap entry {s:?} must be an IPv4 address with a port (\"A.B.C.D:PORT\")"
                ))
            })
        })
        .collect()
}

fn parse_host(h: Option<&String>) -> Result<Option<Ipv4Addr>> {
    h.map(|h| {
        h.parse()
            .map_err(|_| type_err(format!("host {h:?} must be an IPv4 address")))
    })
    .transpose()
}

/// Runs `fut` on the runtime thread and settles a promise with `conv(output)` on the JS thread.
fn promise<T, F, C, D>(env: &Env, fut: F, conv: C) -> Result<Object<'_>>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
    C: FnOnce(Env, T) -> Result<D> + Send + 'static,
    D: napi::bindgen_prelude::ToNapiValue + 'static,
{
    let runtime = runtime()?;
    let (deferred, obj) = env.create_deferred()?;
    drop(runtime.call(async move {
        let out = fut.await;
        deferred.resolve(move |env| {
            trim::note_activity();
            conv(env, out)
        });
    }));
    Ok(obj)
}

/// How many times the addon handed freed memory back to the OS after a burst (see `trim.rs`);
/// `null` when that is turned off (`P2PSWARM_MALLOC_TRIM=0`), unsupported (not Linux with
/// glibc), or before the first swarm / node / queue. A diagnostic, not part of the public API.
#[napi]
pub fn memory_trims() -> Option<f64> {
    trim::trims().map(|n| n as f64)
}

/// An ed25519 key pair from a 32-byte seed (random without one): `{ publicKey, secretKey }`.
#[napi(object)]
pub struct JsKeyPair {
    pub public_key: Buffer,
    pub secret_key: Buffer,
}

fn js_key_pair(kp: &KeyPair) -> JsKeyPair {
    JsKeyPair {
        public_key: kp.public_key().as_bytes().to_vec().into(),
        secret_key: kp.secret_key().to_vec().into(),
    }
}

#[napi]
pub fn key_pair(seed: Option<Buffer>) -> Result<JsKeyPair> {
    let kp = match seed {
        Some(s) => KeyPair::from_seed(&arr32(&s, "seed")?),
        None => KeyPair::generate(),
    };
    Ok(js_key_pair(&kp))
}

/// A peer as the swarm knows it.
#[napi(object)]
pub struct JsPeerInfo {
    pub public_key: Buffer,
    pub topics: Vec<Buffer>,
    pub prioritized: bool,
    pub banned: bool,
    pub explicit: bool,
}

fn js_peer(p: &rt::PeerInfo) -> JsPeerInfo {
    JsPeerInfo {
        public_key: p.public_key.as_bytes().to_vec().into(),
        topics: p.topics.iter().map(|t| t.to_vec().into()).collect(),
        prioritized: p.prioritized,
        banned: p.banned,
        explicit: p.explicit,
    }
}

/// One event for the JS dispatcher.
#[napi(object, object_from_js = false)]
pub struct JsEvent {
    /// connection | data | end | close | update | drain | ban
    pub kind: String,
    /// swarm or server id (connection, update, ban)
    pub source: Option<f64>,
    /// connection id (connection, data, end, close, drain)
    pub conn_id: Option<f64>,
    pub connection: Option<Connection>,
    pub data: Option<Buffer>,
    pub error: Option<String>,
    pub peer: Option<JsPeerInfo>,
}

impl JsEvent {
    fn new(kind: &str) -> Self {
        Self {
            kind: kind.into(),
            source: None,
            conn_id: None,
            connection: None,
            data: None,
            error: None,
            peer: None,
        }
    }
}

fn js_event(ev: Event) -> Option<JsEvent> {
    Some(match ev {
        Event::Connection { source, conn, peer } => JsEvent {
            source: Some(source as f64),
            conn_id: Some(conn.id() as f64),
            peer: peer.as_ref().map(js_peer),
            connection: Some(Connection { conn }),
            ..JsEvent::new("connection")
        },
        Event::Data { conn, data } => JsEvent {
            conn_id: Some(conn as f64),
            data: Some(data.into()),
            ..JsEvent::new("data")
        },
        Event::End { conn } => JsEvent {
            conn_id: Some(conn as f64),
            ..JsEvent::new("end")
        },
        Event::Close { conn, error } => JsEvent {
            conn_id: Some(conn as f64),
            error,
            ..JsEvent::new("close")
        },
        Event::Update { source } => JsEvent {
            source: Some(source as f64),
            ..JsEvent::new("update")
        },
        Event::Drain { conn } => JsEvent {
            conn_id: Some(conn as f64),
            ..JsEvent::new("drain")
        },
        Event::Ban { source, peer } => JsEvent {
            source: Some(source as f64),
            peer: Some(js_peer(&peer)),
            ..JsEvent::new("ban")
        },
        _ => return None,
    })
}

/// An event queue that swarms, DHT nodes, servers and connections feed.
#[napi]
pub struct Queue {
    q: EventQueue,
}

#[napi]
impl Queue {
    #[napi(constructor)]
    pub fn new() -> Result<Self> {
        let q = runtime()?.event_queue().map_err(|e| rt_err(&e))?;
        Ok(Self { q })
    }

    /// Resolves with the next events (at most `max`, at least one), or `null` once closed.
    #[napi(ts_return_type = "Promise<Array<JsEvent> | null>")]
    pub fn next<'e>(&self, env: &'e Env, max: u32) -> Result<Object<'e>> {
        let q = self.q.clone();
        let max = max.max(1) as usize;
        promise(
            env,
            async move {
                let first = q.next_event().await?;
                let mut out = vec![first];
                while out.len() < max {
                    match q.try_next() {
                        Next::Event(e) => out.push(e),
                        _ => break,
                    }
                }
                Some(out)
            },
            |_env, evs| Ok(evs.map(|v| v.into_iter().filter_map(js_event).collect::<Vec<_>>())),
        )
    }

    /// Closes the queue: a pending `next` resolves `null`.
    #[napi]
    pub fn close(&self) {
        self.q.close();
    }
}

/// An encrypted connection (bytes arrive as `data` events of its queue).
#[napi]
pub struct Connection {
    conn: rt::Conn,
}

#[napi]
impl Connection {
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.conn.id() as f64
    }

    #[napi(getter)]
    pub fn remote_public_key(&self) -> Buffer {
        self.conn.remote_public_key().as_bytes().to_vec().into()
    }

    #[napi(getter)]
    pub fn handshake_hash(&self) -> Option<Buffer> {
        self.conn.handshake_hash().map(|h| h.to_vec().into())
    }

    #[napi(getter)]
    pub fn is_initiator(&self) -> bool {
        self.conn.is_initiator()
    }

    #[napi(getter)]
    pub fn queued_bytes(&self) -> f64 {
        self.conn.queued_bytes() as f64
    }

    /// Queues bytes: `true` taken, `false` the write queue is full (wait for `drain`).
    #[napi]
    pub fn write(&self, data: &[u8]) -> Result<bool> {
        trim::note_activity();
        match self.conn.write_nowait(data.to_vec()) {
            Ok(()) => Ok(true),
            Err(rt::Error::WouldBlock) => Ok(false),
            Err(e) => Err(rt_err(&e)),
        }
    }

    #[napi]
    pub fn end(&self) {
        let _ = self.conn.end();
    }

    #[napi]
    pub fn destroy(&self) {
        let _ = self.conn.destroy();
    }
}

#[napi(object)]
pub struct SwarmOpts {
    pub secret_key: Option<Buffer>,
    pub max_peers: Option<u32>,
    pub max_parallel: Option<u32>,
    pub max_client_connections: Option<u32>,
    pub bootstrap: Option<Vec<String>>,
    pub host: Option<String>,
    pub port: Option<u32>,
    pub bootstrap_timeout_ms: Option<u32>,
}

fn port(p: Option<u32>) -> Result<Option<u16>> {
    p.map(|p| u16::try_from(p).map_err(|_| type_err("port must be 0..65535")))
        .transpose()
}

/// Creates a swarm whose events go to `queue`. `firewall(hexKey) -> bool` runs on the JS thread
/// (the runtime thread waits up to 5 s for the answer, then rejects).
#[napi(ts_return_type = "Promise<Swarm>")]
pub fn create_swarm<'e>(
    env: &'e Env,
    opts: SwarmOpts,
    queue: &Queue,
    firewall: Option<ThreadsafeFunction<String, bool, String, Status, false, true>>,
) -> Result<Object<'e>> {
    let mut o = SwarmOptions::new();
    if let Some(sk) = &opts.secret_key {
        o.key_pair = Some(key_pair_from_secret(sk)?);
    }
    o.max_peers = opts.max_peers.map(|v| v as usize);
    o.max_parallel = opts.max_parallel.map(|v| v as usize);
    o.max_client_connections = opts.max_client_connections.map(|v| v as usize);
    o.bootstrap = opts.bootstrap.as_deref().map(parse_bootstrap).transpose()?;
    o.host = parse_host(opts.host.as_ref())?;
    o.port = port(opts.port)?;
    if let Some(ms) = opts.bootstrap_timeout_ms {
        o.ready_timeout = Duration::from_millis(ms.into());
    }
    if let Some(fw) = firewall {
        let fw = Arc::new(fw);
        o.firewall = Some(Arc::new(move |key: &PublicKey| {
            let (tx, rx) = std::sync::mpsc::channel();
            let status = fw.call_with_return_value(
                key.to_hex(),
                ThreadsafeFunctionCallMode::NonBlocking,
                move |r: Result<bool>, _env| {
                    let _ = tx.send(r.unwrap_or(true));
                    Ok(())
                },
            );
            if status != Status::Ok {
                return true;
            }
            rx.recv_timeout(Duration::from_secs(5)).unwrap_or(true)
        }));
    }
    let runtime = runtime()?;
    let reply = runtime.swarm(o, &queue.q);
    promise(env, reply, |_env, r| match r {
        Ok(Ok(s)) => Ok(Swarm { s }),
        Ok(Err(e)) | Err(e) => Err(rt_err(&e)),
    })
}

#[napi(object)]
pub struct TopicStatus {
    pub server: bool,
    pub client: bool,
    pub sessions: u32,
    pub refreshing: bool,
    pub suspended: bool,
}

/// A swarm on the runtime thread.
#[napi]
pub struct Swarm {
    s: rt::SwarmHandle,
}

fn flat(r: std::result::Result<rt::Result<()>, rt::Error>) -> Result<()> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) | Err(e) => Err(rt_err(&e)),
    }
}

#[napi]
impl Swarm {
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.s.id() as f64
    }

    #[napi(getter)]
    pub fn public_key(&self) -> Buffer {
        self.s.public_key().as_bytes().to_vec().into()
    }

    #[napi(ts_return_type = "Promise<Discovery>")]
    pub fn join<'e>(
        &self,
        env: &'e Env,
        topic: &[u8],
        server: bool,
        client: bool,
    ) -> Result<Object<'e>> {
        let topic = arr32(topic, "topic")?;
        promise(
            env,
            self.s.join(topic, JoinOptions { server, client }),
            |_env, r| match r {
                Ok(Ok(d)) => Ok(Discovery { d }),
                Ok(Err(e)) | Err(e) => Err(rt_err(&e)),
            },
        )
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn leave<'e>(&self, env: &'e Env, topic: &[u8]) -> Result<Object<'e>> {
        let topic = arr32(topic, "topic")?;
        promise(env, self.s.leave(topic), |_env, _r| Ok(()))
    }

    #[napi]
    pub fn join_peer(&self, key: &[u8]) -> Result<()> {
        self.s.join_peer(PublicKey(arr32(key, "publicKey")?));
        Ok(())
    }

    #[napi]
    pub fn leave_peer(&self, key: &[u8]) -> Result<()> {
        self.s.leave_peer(&PublicKey(arr32(key, "publicKey")?));
        Ok(())
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn listen<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        promise(env, self.s.listen(), |_env, r| flat(r))
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn flush<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        promise(env, self.s.flush(), |_env, r| Ok(r.unwrap_or(false)))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn suspend<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        promise(env, self.s.suspend(), |_env, r| flat(r))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn resume<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        promise(env, self.s.resume(), |_env, r| flat(r))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn destroy<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        promise(env, self.s.destroy(), |_env, _r| Ok(()))
    }

    #[napi(getter)]
    pub fn connecting(&self) -> u32 {
        self.s.connecting() as u32
    }

    #[napi(getter)]
    pub fn connections(&self) -> u32 {
        self.s.connections() as u32
    }

    #[napi]
    pub fn peers(&self) -> Vec<JsPeerInfo> {
        self.s.peers().iter().map(js_peer).collect()
    }

    #[napi]
    pub fn peer(&self, key: &[u8]) -> Result<Option<JsPeerInfo>> {
        Ok(self
            .s
            .peer(&PublicKey(arr32(key, "publicKey")?))
            .as_ref()
            .map(js_peer))
    }

    #[napi]
    pub fn status(&self, topic: &[u8]) -> Result<Option<TopicStatus>> {
        Ok(self.s.status(&arr32(topic, "topic")?).map(|s| TopicStatus {
            server: s.server,
            client: s.client,
            sessions: s.sessions as u32,
            refreshing: s.refreshing,
            suspended: s.suspended,
        }))
    }

    #[napi]
    pub fn ban(&self, key: &[u8], banned: bool) -> Result<()> {
        self.s.ban(&PublicKey(arr32(key, "publicKey")?), banned);
        Ok(())
    }

    /// The swarm's DHT node; its connections report to `queue`.
    #[napi]
    pub fn dht(&self, queue: &Queue) -> Dht {
        Dht {
            d: self.s.dht(&queue.q),
        }
    }
}

/// A joined topic.
#[napi]
pub struct Discovery {
    d: rt::Discovery,
}

#[napi]
impl Discovery {
    #[napi(getter)]
    pub fn topic(&self) -> Buffer {
        self.d.topic().to_vec().into()
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn flushed<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        promise(env, self.d.flushed(), |_env, r| Ok(r.unwrap_or(false)))
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn refresh<'e>(&self, env: &'e Env, server: bool, client: bool) -> Result<Object<'e>> {
        promise(
            env,
            self.d.refresh(JoinOptions { server, client }),
            |_env, r| match r {
                Ok(Ok(b)) => Ok(b),
                Ok(Err(e)) | Err(e) => Err(rt_err(&e)),
            },
        )
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn destroy<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        promise(env, self.d.destroy(), |_env, _r| Ok(()))
    }
}

#[napi(object)]
pub struct DhtOpts {
    pub secret_key: Option<Buffer>,
    pub bootstrap: Option<Vec<String>>,
    pub host: Option<String>,
    pub port: Option<u32>,
    pub bootstrap_timeout_ms: Option<u32>,
}

/// Binds a DHT node (resolves once bootstrapped); its connections report to `queue`.
#[napi(ts_return_type = "Promise<Dht>")]
pub fn create_dht<'e>(env: &'e Env, opts: DhtOpts, queue: &Queue) -> Result<Object<'e>> {
    let mut o = DhtOptions::new();
    if let Some(sk) = &opts.secret_key {
        o.key_pair = Some(key_pair_from_secret(sk)?);
    }
    o.bootstrap = opts.bootstrap.as_deref().map(parse_bootstrap).transpose()?;
    o.host = parse_host(opts.host.as_ref())?;
    o.port = port(opts.port)?;
    if let Some(ms) = opts.bootstrap_timeout_ms {
        o.ready_timeout = Duration::from_millis(ms.into());
    }
    let reply = runtime()?.dht(o, &queue.q);
    promise(env, reply, |_env, r| match r {
        Ok(Ok(d)) => Ok(Dht { d }),
        Ok(Err(e)) | Err(e) => Err(rt_err(&e)),
    })
}

#[napi(object)]
pub struct JsAddress {
    pub host: String,
    pub port: u32,
}

fn js_addr(a: SocketAddrV4) -> JsAddress {
    JsAddress {
        host: a.ip().to_string(),
        port: a.port().into(),
    }
}

#[napi(object)]
pub struct JsPeerRecord {
    pub public_key: Buffer,
    pub relay_addresses: Vec<JsAddress>,
}

#[napi(object)]
pub struct JsLookupReply {
    pub from: JsAddress,
    pub peers: Vec<JsPeerRecord>,
}

#[napi(object)]
pub struct JsMutableValue {
    pub seq: f64,
    pub value: Buffer,
    pub signature: Buffer,
    pub from: JsAddress,
}

fn dht_result<T>(r: std::result::Result<rt::Result<T>, rt::Error>) -> Result<T> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) | Err(e) => Err(rt_err(&e)),
    }
}

fn not_found_is_none<T>(r: std::result::Result<rt::Result<T>, rt::Error>) -> Result<Option<T>> {
    match r {
        Ok(Ok(v)) => Ok(Some(v)),
        Ok(Err(rt::Error::Dht(DhtError::NotFound))) => Ok(None),
        Ok(Err(e)) | Err(e) => Err(rt_err(&e)),
    }
}

fn seq(v: f64) -> Result<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
        Ok(v as u64)
    } else {
        Err(type_err("seq must be a non-negative integer"))
    }
}

/// A hyperdht node.
#[napi]
pub struct Dht {
    d: rt::DhtHandle,
}

#[napi]
impl Dht {
    #[napi(getter)]
    pub fn public_key(&self) -> Buffer {
        self.d.public_key().as_bytes().to_vec().into()
    }

    #[napi(ts_return_type = "Promise<Connection>")]
    pub fn connect<'e>(
        &self,
        env: &'e Env,
        remote: &[u8],
        secret_key: Option<&[u8]>,
    ) -> Result<Object<'e>> {
        let remote = PublicKey(arr32(remote, "remotePublicKey")?);
        let kp = secret_key.map(key_pair_from_secret).transpose()?;
        promise(env, self.d.connect(remote, kp), |_env, r| {
            dht_result(r).map(|conn| Connection { conn })
        })
    }

    #[napi(ts_return_type = "Promise<Server>")]
    pub fn listen<'e>(&self, env: &'e Env, secret_key: Option<&[u8]>) -> Result<Object<'e>> {
        let kp = secret_key.map(key_pair_from_secret).transpose()?;
        promise(env, self.d.listen(kp), |_env, r| {
            dht_result(r).map(|s| Server { s })
        })
    }

    #[napi(ts_return_type = "Promise<Array<JsLookupReply>>")]
    pub fn lookup<'e>(&self, env: &'e Env, topic: &[u8]) -> Result<Object<'e>> {
        let topic = arr32(topic, "topic")?;
        promise(env, self.d.lookup(topic), |_env, r| {
            dht_result(r).map(|v| {
                v.into_iter()
                    .map(|l| JsLookupReply {
                        from: js_addr(l.from),
                        peers: l
                            .peers
                            .into_iter()
                            .map(|p| JsPeerRecord {
                                public_key: p.public_key.as_bytes().to_vec().into(),
                                relay_addresses: p
                                    .relay_addresses
                                    .into_iter()
                                    .map(js_addr)
                                    .collect(),
                            })
                            .collect(),
                    })
                    .collect::<Vec<_>>()
            })
        })
    }

    #[napi(ts_return_type = "Promise<number>")]
    pub fn announce<'e>(
        &self,
        env: &'e Env,
        topic: &[u8],
        secret_key: &[u8],
    ) -> Result<Object<'e>> {
        let topic = arr32(topic, "topic")?;
        let kp = key_pair_from_secret(secret_key)?;
        promise(env, self.d.announce(topic, kp), |_env, r| {
            dht_result(r).map(|n| n as u32)
        })
    }

    #[napi(ts_return_type = "Promise<number>")]
    pub fn unannounce<'e>(
        &self,
        env: &'e Env,
        topic: &[u8],
        secret_key: &[u8],
    ) -> Result<Object<'e>> {
        let topic = arr32(topic, "topic")?;
        let kp = key_pair_from_secret(secret_key)?;
        promise(env, self.d.unannounce(topic, kp), |_env, r| {
            dht_result(r).map(|n| n as u32)
        })
    }

    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn immutable_put<'e>(&self, env: &'e Env, value: &[u8]) -> Result<Object<'e>> {
        promise(env, self.d.immutable_put(value.to_vec()), |_env, r| {
            dht_result(r).map(|h| Buffer::from(h.to_vec()))
        })
    }

    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub fn immutable_get<'e>(&self, env: &'e Env, hash: &[u8]) -> Result<Object<'e>> {
        let hash = arr32(hash, "hash")?;
        promise(env, self.d.immutable_get(hash), |_env, r| {
            not_found_is_none(r).map(|v| v.map(Buffer::from))
        })
    }

    #[napi(ts_return_type = "Promise<number>")]
    pub fn mutable_put<'e>(
        &self,
        env: &'e Env,
        secret_key: &[u8],
        value: &[u8],
        seq_no: f64,
    ) -> Result<Object<'e>> {
        let kp = key_pair_from_secret(secret_key)?;
        let s = seq(seq_no)?;
        promise(env, self.d.mutable_put(kp, value.to_vec(), s), |_env, r| {
            dht_result(r).map(|n| n as u32)
        })
    }

    #[napi(ts_return_type = "Promise<JsMutableValue | null>")]
    pub fn mutable_get<'e>(&self, env: &'e Env, key: &[u8], min_seq: f64) -> Result<Object<'e>> {
        let key = PublicKey(arr32(key, "publicKey")?);
        let s = seq(min_seq)?;
        promise(env, self.d.mutable_get(key, s), |_env, r| {
            not_found_is_none(r).map(|v| {
                v.map(|m| JsMutableValue {
                    seq: m.seq as f64,
                    value: m.value.into(),
                    signature: m.signature.to_vec().into(),
                    from: js_addr(m.from),
                })
            })
        })
    }

    #[napi]
    pub fn destroy(&self) {
        self.d.destroy();
    }
}

/// A listening DHT server: accepted connections are `connection` events with its id as source.
#[napi]
pub struct Server {
    s: rt::ServerHandle,
}

#[napi]
impl Server {
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.s.id() as f64
    }

    #[napi(getter)]
    pub fn public_key(&self) -> Buffer {
        self.s.public_key().as_bytes().to_vec().into()
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        promise(env, self.s.close(), |_env, _r| Ok(()))
    }
}

/// A loopback testnet of persistent nodes (the first is the bootstrapper).
#[napi]
pub struct Testnet {
    t: std::sync::Mutex<Option<rt::Testnet>>,
}

#[napi(ts_return_type = "Promise<Testnet>")]
pub fn create_testnet(env: &Env, size: u32) -> Result<Object<'_>> {
    if size == 0 || size > 64 {
        return Err(type_err("testnet size must be 1..64"));
    }
    promise(env, runtime()?.testnet(size as usize), |_env, r| {
        dht_result(r).map(|t| Testnet {
            t: std::sync::Mutex::new(Some(t)),
        })
    })
}

#[napi]
impl Testnet {
    /// `"127.0.0.1:PORT"` of the bootstrap node, or `null` once destroyed.
    #[napi(getter)]
    pub fn bootstrap(&self) -> Option<String> {
        self.t
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|t| t.bootstrap().to_string())
    }

    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.t
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map_or(0, |t| t.len() as u32)
    }

    /// Stops the nodes.
    #[napi]
    pub fn destroy(&self) {
        let t = self
            .t
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(t);
    }
}
