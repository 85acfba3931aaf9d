//! The hyperdht node: a dht-rpc [`DhtNode`] plus the storage a persistent node serves (§4) and
//! the client operations (§6): lookup, announce, unannounce, find_peer, immutable and mutable
//! put/get.

use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::connect::{self, ConnectError, ConnectOptions, Connection, FirewallFn, Servers};
use super::messages::{
    commands, Announce, LookupRawReply, MutableGetResponse, MutablePutRequest, PeerRecord,
};
use super::sign::{
    hash, immutable_target, public_key_target, sign_announce, sign_mutable, sign_unannounce,
    verify_mutable,
};
use super::storage::{Outcome, Storage};
use crate::crypto::{random_array, KeyPair, PublicKey};
use crate::encoding::{from_slice, to_vec, Encoder};
use crate::rpc::driver::{DhtConfig, DhtNode, QueryResponse};
use crate::rpc::message::errors as rpc_errors;
use crate::rpc::node::{QueryError, RequestError};

/// Why a hyperdht operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    /// The lookup found no node to talk to.
    #[error("query failed: {0}")]
    Query(#[from] QueryError),
    /// No storage node accepted the write.
    #[error("no node accepted the write")]
    NotStored,
    /// No valid value was found.
    #[error("not found")]
    NotFound,
    /// Another server on this node already listens on the key pair (KEYPAIR_ALREADY_USED).
    #[error("key pair already used by a server on this node")]
    KeyPairInUse,
    /// A storage node refused a mutable put: seq reused with another value (16) or too low (17).
    #[error("mutable put refused with error {0}")]
    MutableRefused(u64),
}

/// One peer-record reply of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupReply {
    /// The storage node that answered.
    pub from: SocketAddrV4,
    /// The peers it holds for the topic.
    pub peers: Vec<PeerRecord>,
    /// The stored bump (0 when none).
    pub bump: u64,
}

/// A mutable value found by [`Dht::mutable_get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutableValue {
    /// Sequence number.
    pub seq: u64,
    /// The value.
    pub value: Vec<u8>,
    /// Its signature.
    pub signature: [u8; 64],
    /// Node it came from.
    pub from: SocketAddrV4,
}

/// A hyperdht node.
#[derive(Debug, Clone)]
pub struct Dht {
    rpc: DhtNode,
    storage: Arc<Mutex<Storage>>,
    servers: Arc<Servers>,
    key_pair: KeyPair,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Dht {
    /// Binds a node; persistent nodes serve storage commands.
    pub async fn bind(cfg: DhtConfig) -> std::io::Result<Self> {
        Self::bind_with_key_pair(cfg, KeyPair::generate()).await
    }

    /// Binds a node whose default key pair (for `connect`) is `key_pair`.
    pub async fn bind_with_key_pair(cfg: DhtConfig, key_pair: KeyPair) -> std::io::Result<Self> {
        let rpc = DhtNode::bind(cfg).await?;
        let storage = Arc::new(Mutex::new(Storage::new(
            tokio::time::Instant::now().into_std(),
        )));
        let servers = Arc::new(Servers::default());
        let incoming = rpc.take_incoming();
        let dht = Self {
            rpc: rpc.clone(),
            storage: storage.clone(),
            servers: servers.clone(),
            key_pair,
        };
        if let Some(mut incoming) = incoming {
            let weak_rpc = rpc.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tokio::select! {
                        req = incoming.recv() => {
                            let Some(req) = req else { return };
                            if req.request.command == commands::PEER_HANDSHAKE {
                                let relay = req.request.target.and_then(|t| lock(&storage).router.get(&t).and_then(|e| e.relay));
                                connect::route_handshake(&weak_rpc, &servers, relay, &req);
                                continue;
                            }
                            if req.request.command == commands::PEER_HOLEPUNCH {
                                let relay = req.request.target.and_then(|t| lock(&storage).router.get(&t).and_then(|e| e.relay));
                                connect::route_holepunch(&weak_rpc, &servers, relay, &req);
                                continue;
                            }
                            if weak_rpc.is_ephemeral() {
                                weak_rpc.reply_error(req.handle, rpc_errors::UNKNOWN_COMMAND);
                                continue;
                            }
                            let id = weak_rpc.id();
                            let rnd = u64::from_le_bytes(random_array());
                            let outcome = lock(&storage).on_request(&id, req.from, &req.request, rnd, now_ms());
                            match outcome {
                                Outcome::Reply { value, plain } => weak_rpc.reply(req.handle, value, plain, plain),
                                Outcome::Error(code) => weak_rpc.reply_error(req.handle, code),
                                Outcome::Silent => {}
                                Outcome::NotStorage => weak_rpc.reply_error(req.handle, rpc_errors::UNKNOWN_COMMAND),
                            }
                        }
                        _ = tick.tick() => lock(&storage).tick(tokio::time::Instant::now().into_std()),
                    }
                }
            });
        }
        Ok(dht)
    }

    /// The dht-rpc node underneath.
    pub fn rpc(&self) -> &DhtNode {
        &self.rpc
    }

    /// The node's default key pair.
    pub fn key_pair(&self) -> &KeyPair {
        &self.key_pair
    }

    /// Connects to the server listening on `remote` with this node's key pair.
    pub async fn connect(&self, remote: &PublicKey) -> Result<Connection, ConnectError> {
        connect::connect(
            &self.rpc,
            &self.servers,
            &self.key_pair,
            remote,
            &ConnectOptions::default(),
        )
        .await
    }

    /// Connects with options (`relay_through`: a blind relay to fall back on) and, if given,
    /// another key pair.
    pub async fn connect_with_options(
        &self,
        key_pair: Option<&KeyPair>,
        remote: &PublicKey,
        opts: &ConnectOptions,
    ) -> Result<Connection, ConnectError> {
        let kp = key_pair.unwrap_or(&self.key_pair);
        connect::connect(&self.rpc, &self.servers, kp, remote, opts).await
    }

    /// Connects with another key pair.
    pub async fn connect_with(
        &self,
        key_pair: &KeyPair,
        remote: &PublicKey,
    ) -> Result<Connection, ConnectError> {
        connect::connect(
            &self.rpc,
            &self.servers,
            key_pair,
            remote,
            &ConnectOptions::default(),
        )
        .await
    }

    /// Listens on `key_pair`: announces it on the DHT (and keeps the announcement fresh) and
    /// yields incoming connections. `firewall` returns `true` to reject a client.
    pub async fn listen(
        &self,
        key_pair: KeyPair,
        firewall: Option<FirewallFn>,
    ) -> Result<Server, DhtError> {
        let target = public_key_target(key_pair.public_key());
        let (tx, rx) = mpsc::channel(256);
        if !self.servers.add(target, key_pair.clone(), firewall, tx) {
            return Err(DhtError::KeyPairInUse);
        }
        if let Err(e) = self.announce_self(&key_pair).await {
            // A lone node (no storage neighbours) can still be reached directly.
            tracing::debug!(error = %e, "announce of the server key failed");
        }
        let dht = self.clone();
        let kp = key_pair.clone();
        let servers = Arc::downgrade(&self.servers);
        let refresh = tokio::spawn(async move {
            // Records live 13–27 min on storage nodes: re-announce every 5 minutes.
            loop {
                tokio::time::sleep(Duration::from_secs(300)).await;
                let Some(servers) = servers.upgrade() else {
                    return;
                };
                if !servers.hosts(&target) {
                    return;
                }
                if let Err(e) = dht.announce_self(&kp).await {
                    tracing::debug!(error = %e, "re-announce failed");
                }
            }
        });
        Ok(Server {
            dht: self.clone(),
            key_pair,
            target,
            incoming: rx,
            refresh,
        })
    }

    /// Announces the server key on the 3 closest nodes to `H256(pk)` (the announcer's round).
    async fn announce_self(&self, key_pair: &KeyPair) -> Result<usize, DhtError> {
        let target = public_key_target(key_pair.public_key());
        let (_, closest) = self.collect(target, commands::FIND_PEER, None).await?;
        let peer = PeerRecord {
            public_key: *key_pair.public_key(),
            relay_addresses: Vec::new(),
        };
        let mut tasks = Vec::new();
        for r in closest.into_iter().take(3) {
            let Some(token) = r.token else { continue };
            let signature = sign_announce(key_pair, &target, &r.id, &token, &peer, None);
            let value = to_vec(&Announce {
                peer: Some(peer.clone()),
                refresh: None,
                signature: Some(signature),
                bump: 0,
            });
            let rpc = self.rpc.clone();
            tasks.push(tokio::spawn(async move {
                rpc.request(
                    r.from,
                    commands::ANNOUNCE,
                    false,
                    Some(target),
                    Some(value),
                    Some(token),
                )
                .await
            }));
        }
        let mut ok = 0;
        let mut relays = Vec::new();
        for t in tasks {
            if let Ok(Ok((from, res))) = t.await {
                ok += usize::from(res.error == 0);
                if res.error == 0 {
                    // where the record lives, and our address as that node saw it: the relays
                    // a hole-punching client is told about (holepunch.relays)
                    relays.push(super::messages::RelayInfo {
                        relay_address: from,
                        peer_address: res.to,
                    });
                }
            }
        }
        self.servers.set_relays(target, relays);
        if ok == 0 {
            return Err(DhtError::NotStored);
        }
        Ok(ok)
    }

    /// Peer records this node itself stores for `topic` (as a storage node).
    pub fn stored_records(&self, topic: &[u8; 32]) -> Vec<PeerRecord> {
        lock(&self.storage)
            .records(topic)
            .iter()
            .filter_map(|r| from_slice::<PeerRecord>(r).ok())
            .collect()
    }

    /// Waits until bootstrapped.
    pub async fn ready(&self) {
        self.rpc.ready().await;
    }

    /// Closes the node.
    pub fn destroy(&self) {
        self.rpc.destroy();
    }

    async fn collect(
        &self,
        target: [u8; 32],
        command: u64,
        value: Option<Vec<u8>>,
    ) -> Result<(Vec<QueryResponse>, Vec<crate::rpc::query::Reply>), DhtError> {
        let (mut replies, done) = self.rpc.query(target, command, false, value, false);
        let closest = done.await.unwrap_or(Err(QueryError::TooFewNodes))?;
        let mut all = Vec::new();
        while let Ok(r) = replies.try_recv() {
            all.push(r);
        }
        Ok((all, closest))
    }

    /// LOOKUP: the peer records stored under `topic`, one entry per answering node.
    pub async fn lookup(&self, topic: [u8; 32]) -> Result<Vec<LookupReply>, DhtError> {
        let (replies, _) = self.collect(topic, commands::LOOKUP, None).await?;
        Ok(replies
            .into_iter()
            .filter_map(|r| {
                let v = r.response.value?;
                let raw = from_slice::<LookupRawReply>(&v).ok()?;
                Some(LookupReply {
                    from: r.from,
                    peers: raw.peers,
                    bump: raw.bump,
                })
            })
            .collect())
    }

    /// LOOKUP as a stream: each answering node's records as they arrive.
    pub fn lookup_stream(&self, topic: [u8; 32]) -> mpsc::UnboundedReceiver<LookupReply> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (mut replies, _done) = self.rpc.query(topic, commands::LOOKUP, false, None, false);
        tokio::spawn(async move {
            while let Some(r) = replies.recv().await {
                let Some(v) = r.response.value else { continue };
                if let Ok(raw) = from_slice::<LookupRawReply>(&v) {
                    if tx
                        .send(LookupReply {
                            from: r.from,
                            peers: raw.peers,
                            bump: raw.bump,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        rx
    }

    /// FIND_PEER: the record of a server key, if a node holds it.
    pub async fn find_peer(&self, public_key: &PublicKey) -> Result<Option<PeerRecord>, DhtError> {
        let (replies, _) = self
            .collect(public_key_target(public_key), commands::FIND_PEER, None)
            .await?;
        Ok(replies.into_iter().find_map(|r| {
            r.response
                .value
                .and_then(|v| from_slice::<PeerRecord>(&v).ok())
        }))
    }

    /// ANNOUNCE `key_pair`'s public key under `topic` on the closest storage nodes (each
    /// announcement signed for that node's id and token). Returns how many nodes stored it.
    pub async fn announce(
        &self,
        topic: [u8; 32],
        key_pair: &KeyPair,
        relay_addresses: &[SocketAddrV4],
    ) -> Result<usize, DhtError> {
        self.announce_inner(topic, key_pair, relay_addresses, false)
            .await
            .map(|(n, _)| n)
    }

    /// ANNOUNCE, also returning the peer records the announce's LOOKUP phase found (what a
    /// swarm that is both server and client of a topic connects to).
    pub async fn announce_and_lookup(
        &self,
        topic: [u8; 32],
        key_pair: &KeyPair,
        relay_addresses: &[SocketAddrV4],
    ) -> Result<(usize, Vec<LookupReply>), DhtError> {
        self.announce_inner(topic, key_pair, relay_addresses, false)
            .await
    }

    /// UNANNOUNCE from the closest storage nodes. Returns how many nodes confirmed.
    pub async fn unannounce(&self, topic: [u8; 32], key_pair: &KeyPair) -> Result<usize, DhtError> {
        self.announce_inner(topic, key_pair, &[], true)
            .await
            .map(|(n, _)| n)
    }

    async fn announce_inner(
        &self,
        topic: [u8; 32],
        key_pair: &KeyPair,
        relays: &[SocketAddrV4],
        unannounce: bool,
    ) -> Result<(usize, Vec<LookupReply>), DhtError> {
        let (replies, closest) = self.collect(topic, commands::LOOKUP, None).await?;
        let found: Vec<LookupReply> = replies
            .into_iter()
            .filter_map(|r| {
                let raw = from_slice::<LookupRawReply>(r.response.value.as_deref()?).ok()?;
                Some(LookupReply {
                    from: r.from,
                    peers: raw.peers,
                    bump: raw.bump,
                })
            })
            .collect();
        let peer = PeerRecord {
            public_key: *key_pair.public_key(),
            relay_addresses: relays.to_vec(),
        };
        let mut tasks = Vec::new();
        for r in closest {
            let Some(token) = r.token else { continue };
            let id = r.id;
            let signature = if unannounce {
                sign_unannounce(key_pair, &topic, &id, &token, &peer, None)
            } else {
                sign_announce(key_pair, &topic, &id, &token, &peer, None)
            };
            let value = to_vec(&Announce {
                peer: Some(peer.clone()),
                refresh: None,
                signature: Some(signature),
                bump: 0,
            });
            let command = if unannounce {
                commands::UNANNOUNCE
            } else {
                commands::ANNOUNCE
            };
            let rpc = self.rpc.clone();
            tasks.push(tokio::spawn(async move {
                rpc.request(
                    r.from,
                    command,
                    false,
                    Some(topic),
                    Some(value),
                    Some(token),
                )
                .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if let Ok(Ok((_, res))) = t.await {
                if res.error == 0 {
                    ok += 1;
                }
            }
        }
        if ok == 0 && !unannounce {
            return Err(DhtError::NotStored);
        }
        Ok((ok, found))
    }

    async fn commit(
        &self,
        target: [u8; 32],
        closest: Vec<crate::rpc::query::Reply>,
        command: u64,
        value: &[u8],
    ) -> Result<usize, DhtError> {
        let mut tasks = Vec::new();
        for r in closest {
            let Some(token) = r.token else { continue };
            let rpc = self.rpc.clone();
            let value = value.to_vec();
            tasks.push(tokio::spawn(async move {
                rpc.request(
                    r.from,
                    command,
                    false,
                    Some(target),
                    Some(value),
                    Some(token),
                )
                .await
            }));
        }
        let (mut ok, mut refused) = (0, None);
        for t in tasks {
            match t.await {
                Ok(Ok((_, res))) if res.error == 0 => ok += 1,
                Ok(Ok((_, res))) => refused = Some(res.error),
                Ok(Err(RequestError::Timeout | RequestError::Destroyed)) | Err(_) => {}
            }
        }
        match (ok, refused) {
            (0, Some(code)) => Err(DhtError::MutableRefused(code)),
            (0, None) => Err(DhtError::NotStored),
            (n, _) => Ok(n),
        }
    }

    /// IMMUTABLE_PUT: stores `value` under `H256(value)`; returns the target.
    pub async fn immutable_put(&self, value: &[u8]) -> Result<[u8; 32], DhtError> {
        let target = immutable_target(value);
        let (_, closest) = self.collect(target, commands::IMMUTABLE_GET, None).await?;
        self.commit(target, closest, commands::IMMUTABLE_PUT, value)
            .await?;
        Ok(target)
    }

    /// IMMUTABLE_GET: the first value whose hash is `target`.
    pub async fn immutable_get(&self, target: [u8; 32]) -> Result<Vec<u8>, DhtError> {
        let (replies, _) = self.collect(target, commands::IMMUTABLE_GET, None).await?;
        replies
            .into_iter()
            .filter_map(|r| r.response.value)
            .find(|v| hash(v) == target)
            .ok_or(DhtError::NotFound)
    }

    /// MUTABLE_PUT: signs `(seq, value)` once and stores it on the closest nodes.
    pub async fn mutable_put(
        &self,
        key_pair: &KeyPair,
        value: &[u8],
        seq: u64,
    ) -> Result<usize, DhtError> {
        let target = public_key_target(key_pair.public_key());
        let signature = sign_mutable(key_pair, seq, value);
        let mut enc = Encoder::default();
        enc.uint(0);
        let (_, closest) = self
            .collect(target, commands::MUTABLE_GET, Some(enc.into_inner()))
            .await?;
        let put = to_vec(&MutablePutRequest {
            public_key: *key_pair.public_key(),
            seq,
            value: value.to_vec(),
            signature,
        });
        self.commit(target, closest, commands::MUTABLE_PUT, &put)
            .await
    }

    /// MUTABLE_GET: the valid record with the highest seq ≥ `min_seq`.
    pub async fn mutable_get(
        &self,
        public_key: &PublicKey,
        min_seq: u64,
    ) -> Result<MutableValue, DhtError> {
        let target = public_key_target(public_key);
        let mut enc = Encoder::default();
        enc.uint(min_seq);
        let (replies, _) = self
            .collect(target, commands::MUTABLE_GET, Some(enc.into_inner()))
            .await?;
        replies
            .into_iter()
            .filter_map(|r| {
                let v = r.response.value?;
                let m = from_slice::<MutableGetResponse>(&v).ok()?;
                (m.seq >= min_seq && verify_mutable(&m.signature, m.seq, &m.value, public_key))
                    .then_some(MutableValue {
                        seq: m.seq,
                        value: m.value,
                        signature: m.signature,
                        from: r.from,
                    })
            })
            .max_by_key(|m| m.seq)
            .ok_or(DhtError::NotFound)
    }
}

fn lock(s: &Mutex<Storage>) -> MutexGuard<'_, Storage> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A listening server: yields incoming encrypted connections.
#[derive(Debug)]
pub struct Server {
    dht: Dht,
    key_pair: KeyPair,
    target: [u8; 32],
    incoming: mpsc::Receiver<Connection>,
    refresh: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The key clients connect to.
    pub fn public_key(&self) -> &PublicKey {
        self.key_pair.public_key()
    }

    /// Names a blind relay (hyperdht's server `relayThrough`) in later handshake replies: a
    /// client that cannot be hole-punched meets us there. The server's relay wins over the
    /// client's.
    pub fn set_relay_through(&self, relay: Option<PublicKey>) {
        self.dht.servers.set_relay_through(&self.target, relay);
    }

    /// The next incoming connection (`None` once closed).
    pub async fn accept(&mut self) -> Option<Connection> {
        self.incoming.recv().await
    }

    /// Stops listening and unannounces the key.
    pub async fn close(self) {
        self.dht.servers.remove(&self.target);
        self.refresh.abort();
        let _ = self.dht.unannounce(self.target, &self.key_pair).await;
    }
}
