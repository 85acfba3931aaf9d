//! The DHT API (JS `hyperdht`): a node, its servers, key pairs, and a loopback testnet.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarm_core::runtime::{self as rt, DhtHandle, Runtime, ServerHandle};
use tokio::sync::mpsc;

use crate::error::{P2pswarmError, Result};
use crate::hub::{lock, Connection, Hub};
use crate::{addrs, host, identity, key32, new_runtime};

/// An Ed25519 key pair.
#[derive(Debug, uniffi::Object)]
pub struct KeyPair {
    pub(crate) kp: swarm_core::crypto::KeyPair,
}

#[uniffi::export]
impl KeyPair {
    /// A random key pair.
    #[uniffi::constructor]
    pub fn generate() -> Arc<Self> {
        Arc::new(Self {
            kp: swarm_core::crypto::KeyPair::generate(),
        })
    }

    /// The key pair of a 32-byte seed (as hyperdht's `keyPair(seed)`).
    #[uniffi::constructor]
    pub fn from_seed(seed: Vec<u8>) -> Result<Arc<Self>> {
        let seed = key32(&seed, "seed")?;
        Ok(Arc::new(Self {
            kp: swarm_core::crypto::KeyPair::from_seed(&seed),
        }))
    }

    /// The key pair of a 64-byte libsodium secret key.
    #[uniffi::constructor]
    pub fn from_secret_key(secret_key: Vec<u8>) -> Result<Arc<Self>> {
        let (kp, _) = identity(None, Some(secret_key))?;
        kp.map(|kp| Arc::new(Self { kp }))
            .ok_or_else(|| P2pswarmError::invalid("secret key"))
    }

    /// The public key (32 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        self.kp.public_key().0.to_vec()
    }

    /// The secret key (64 bytes: seed then public key).
    pub fn secret_key(&self) -> Vec<u8> {
        self.kp.secret_key().to_vec()
    }
}

/// Options of a standalone DHT node.
#[derive(Debug, Default, uniffi::Record)]
pub struct DhtOptions {
    /// Seed of the node's default key pair.
    #[uniffi(default = None)]
    pub seed: Option<Vec<u8>>,
    /// The node's default key pair as a 64-byte secret key (wins over `seed`).
    #[uniffi(default = None)]
    pub secret_key: Option<Vec<u8>>,
    /// Bootstrap nodes as `A.B.C.D:PORT`.
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
}

impl DhtOptions {
    fn into_core(self) -> Result<rt::DhtOptions> {
        let mut o = rt::DhtOptions::new();
        (o.key_pair, o.seed) = identity(self.seed, self.secret_key)?;
        o.bootstrap = addrs(self.bootstrap)?;
        o.host = host(self.host)?;
        o.port = self.port;
        if let Some(ms) = self.bootstrap_timeout_ms {
            o.ready_timeout = Duration::from_millis(ms);
        }
        Ok(o)
    }
}

/// A peer record of a lookup.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PeerRecord {
    pub public_key: Vec<u8>,
    pub relay_addresses: Vec<String>,
}

/// One storage node's answer to a lookup.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LookupResult {
    pub from: String,
    pub peers: Vec<PeerRecord>,
}

/// A mutable value.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MutableValue {
    pub seq: u64,
    pub value: Vec<u8>,
    pub signature: Vec<u8>,
}

/// A DHT node: standalone (`Dht.create`) or a swarm's (`P2pswarm.dht()`).
#[derive(Debug, uniffi::Object)]
pub struct Dht {
    runtime: Runtime,
    /// Taken on shutdown: the sockets close even while handles are still referenced.
    node: Mutex<Option<DhtHandle>>,
    hub: Arc<Hub>,
    /// Standalone: the node owns its runtime.
    owned: bool,
    public_key: Vec<u8>,
}

impl Dht {
    pub(crate) fn shared(runtime: Runtime, dht: DhtHandle, hub: Arc<Hub>) -> Self {
        Self {
            runtime,
            public_key: dht.public_key().0.to_vec(),
            node: Mutex::new(Some(dht)),
            hub,
            owned: false,
        }
    }

    fn start(options: DhtOptions) -> Result<(Runtime, Arc<Hub>, rt::Reply<rt::Result<DhtHandle>>)> {
        let opts = options.into_core()?;
        let (runtime, hub) = new_runtime()?;
        let reply = runtime.dht(opts, hub.queue());
        Ok((runtime, hub, reply))
    }

    fn finish(runtime: Runtime, hub: Arc<Hub>, dht: DhtHandle) -> Arc<Self> {
        drop(runtime.call(hub.clone().run()));
        Arc::new(Self {
            runtime,
            public_key: dht.public_key().0.to_vec(),
            node: Mutex::new(Some(dht)),
            hub,
            owned: true,
        })
    }

    /// Drops the node handle (its swarm shut down).
    pub(crate) fn release(&self) {
        lock(&self.node).take();
    }

    fn d(&self) -> Result<DhtHandle> {
        lock(&self.node).clone().ok_or_else(P2pswarmError::closed)
    }

    fn key_pair(kp: Option<Arc<KeyPair>>) -> Option<swarm_core::crypto::KeyPair> {
        kp.map(|k| k.kp.clone())
    }
}

impl Drop for Dht {
    fn drop(&mut self) {
        if self.owned {
            self.runtime.shutdown();
            self.hub.close();
        }
    }
}

impl Dht {
    fn close(&self) {
        if let Some(d) = lock(&self.node).take() {
            d.destroy();
        }
        if self.owned {
            self.runtime.shutdown();
            self.hub.close();
        }
    }
}

#[uniffi::export]
impl Dht {
    /// Binds a node, blocking until it is bootstrapped (prefer `create`).
    #[uniffi::constructor]
    pub fn new(options: DhtOptions) -> Result<Arc<Self>> {
        let (runtime, hub, reply) = Self::start(options)?;
        let dht = reply.wait()??;
        Ok(Self::finish(runtime, hub, dht))
    }

    /// Binds a node (async: resolves once it is bootstrapped).
    #[uniffi::constructor]
    pub async fn create(options: DhtOptions) -> Result<Arc<Self>> {
        let (runtime, hub, reply) = Self::start(options)?;
        let dht = reply.await??;
        Ok(Self::finish(runtime, hub, dht))
    }

    /// The node's default public key.
    pub fn public_key(&self) -> Vec<u8> {
        self.public_key.clone()
    }

    /// Connects to the server listening on `remote_public_key` (as `key_pair`, default the
    /// node's).
    #[uniffi::method(default(key_pair = None))]
    pub async fn connect(
        &self,
        remote_public_key: Vec<u8>,
        key_pair: Option<Arc<KeyPair>>,
    ) -> Result<Arc<Connection>> {
        let remote = crate::public_key(&remote_public_key)?;
        let conn = self
            .d()?
            .connect(remote, Self::key_pair(key_pair))
            .await??;
        Ok(self.hub.register(conn))
    }

    /// Listens on `key_pair` (default the node's) and announces it.
    #[uniffi::method(default(key_pair = None))]
    pub async fn listen(&self, key_pair: Option<Arc<KeyPair>>) -> Result<Arc<Server>> {
        let server = self.d()?.listen(Self::key_pair(key_pair)).await??;
        let rx = self.hub.register_server(server.id());
        Ok(Arc::new(Server {
            handle: server,
            hub: self.hub.clone(),
            accept: tokio::sync::Mutex::new(rx),
        }))
    }

    /// The peers announced under a topic.
    pub async fn lookup(&self, topic: Vec<u8>) -> Result<Vec<LookupResult>> {
        let topic = key32(&topic, "topic")?;
        let replies = self.d()?.lookup(topic).await??;
        Ok(replies
            .into_iter()
            .map(|r| LookupResult {
                from: r.from.to_string(),
                peers: r
                    .peers
                    .into_iter()
                    .map(|p| PeerRecord {
                        public_key: p.public_key.0.to_vec(),
                        relay_addresses: p
                            .relay_addresses
                            .iter()
                            .map(ToString::to_string)
                            .collect(),
                    })
                    .collect(),
            })
            .collect())
    }

    /// Announces `key_pair` under a topic; returns how many nodes stored it.
    pub async fn announce(&self, topic: Vec<u8>, key_pair: Arc<KeyPair>) -> Result<u32> {
        let topic = key32(&topic, "topic")?;
        Ok(self.d()?.announce(topic, key_pair.kp.clone()).await?? as u32)
    }

    /// Removes an announcement.
    pub async fn unannounce(&self, topic: Vec<u8>, key_pair: Arc<KeyPair>) -> Result<u32> {
        let topic = key32(&topic, "topic")?;
        Ok(self.d()?.unannounce(topic, key_pair.kp.clone()).await?? as u32)
    }

    /// Stores an immutable value; returns its 32-byte hash.
    pub async fn immutable_put(&self, value: Vec<u8>) -> Result<Vec<u8>> {
        Ok(self.d()?.immutable_put(value).await??.to_vec())
    }

    /// Fetches an immutable value by hash.
    pub async fn immutable_get(&self, hash: Vec<u8>) -> Result<Vec<u8>> {
        let hash = key32(&hash, "hash")?;
        Ok(self.d()?.immutable_get(hash).await??)
    }

    /// Stores a signed mutable value; returns how many nodes stored it.
    pub async fn mutable_put(
        &self,
        key_pair: Arc<KeyPair>,
        value: Vec<u8>,
        seq: u64,
    ) -> Result<u32> {
        Ok(self
            .d()?
            .mutable_put(key_pair.kp.clone(), value, seq)
            .await?? as u32)
    }

    /// Fetches the latest mutable value with `seq >= min_seq`.
    #[uniffi::method(default(min_seq = 0))]
    pub async fn mutable_get(&self, public_key: Vec<u8>, min_seq: u64) -> Result<MutableValue> {
        let key = crate::public_key(&public_key)?;
        let v = self.d()?.mutable_get(key, min_seq).await??;
        Ok(MutableValue {
            seq: v.seq,
            value: v.value,
            signature: v.signature.to_vec(),
        })
    }

    /// Closes the node (a standalone node also stops its runtime thread).
    pub fn destroy(&self) {
        self.close();
    }
}

/// A listening DHT server.
#[derive(Debug, uniffi::Object)]
pub struct Server {
    handle: ServerHandle,
    hub: Arc<Hub>,
    accept: tokio::sync::Mutex<mpsc::UnboundedReceiver<Arc<Connection>>>,
}

#[uniffi::export]
impl Server {
    /// The key clients connect to.
    pub fn public_key(&self) -> Vec<u8> {
        self.handle.public_key().0.to_vec()
    }

    /// The next accepted connection; `null` once closed. Cancelling the call loses none.
    pub async fn accept(&self) -> Option<Arc<Connection>> {
        self.accept.lock().await.recv().await
    }

    /// Stops listening and unannounces (idempotent).
    pub async fn close(&self) -> Result<()> {
        self.handle.close().await?;
        self.hub.unregister_server(self.handle.id());
        Ok(())
    }
}

/// A loopback testnet of DHT nodes, for tests (never the public network).
#[derive(Debug, uniffi::Object)]
pub struct Testnet {
    runtime: Runtime,
    net: Mutex<Option<rt::Testnet>>,
    bootstrap: String,
    size: u32,
}

impl Testnet {
    fn finish(runtime: Runtime, net: rt::Testnet) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            bootstrap: net.bootstrap().to_string(),
            size: net.len() as u32,
            net: Mutex::new(Some(net)),
        })
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        self.destroy();
    }
}

#[uniffi::export]
impl Testnet {
    /// Starts `size` nodes on 127.0.0.1 (blocking).
    #[uniffi::constructor(default(size = 3))]
    pub fn new(size: u32) -> Result<Arc<Self>> {
        let runtime = Runtime::new()?;
        let net = runtime.testnet(size as usize).wait()??;
        Ok(Self::finish(runtime, net))
    }

    /// Starts `size` nodes on 127.0.0.1.
    #[uniffi::constructor(default(size = 3))]
    pub async fn create(size: u32) -> Result<Arc<Self>> {
        let runtime = Runtime::new()?;
        let net = runtime.testnet(size as usize).await??;
        Ok(Self::finish(runtime, net))
    }

    /// The bootstrap list to pass as `bootstrap` in options.
    pub fn bootstrap(&self) -> Vec<String> {
        vec![self.bootstrap.clone()]
    }

    /// Number of nodes.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Stops the nodes and the runtime thread (idempotent).
    pub fn destroy(&self) {
        drop(lock(&self.net).take());
        self.runtime.shutdown();
    }
}
