//! Key-addressed connections (spec `hyperdht.md` §7–§9, without hole punching yet): servers
//! listening on a key pair, clients connecting to a public key through the DHT's handshake
//! router, Noise IK inside PEER_HANDSHAKE, then a UDX stream carrying a secret stream started
//! from the finished handshake.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::messages::{
    commands, ErrorCode, Firewall, Handshake, Holepunch, Mode, NoisePayload, SecretStreamInfo,
    UdxInfo,
};
use crate::crypto::{ns, random_array, KeyPair, PublicKey};
use crate::encoding::{from_slice, to_vec};
use crate::noise::{Handshake as Noise, HandshakeResult, Pattern};
use crate::rpc::driver::DhtNode;
use crate::rpc::node::{IncomingRequest, SocketKind};
use crate::secret_stream::{Config as StreamConfig, SecretStream};
use crate::udx::{StreamConfig as UdxConfig, UdxSocket, UdxStream};

/// An encrypted connection to a peer identified by its public key.
pub type Connection = SecretStream<UdxStream>;

/// hyperdht's keep-alive on every connection.
pub const CONNECTION_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Why a connect failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No node knows a server for this key (PEER_NOT_FOUND).
    #[error("peer not found")]
    PeerNotFound,
    /// Nodes knew the server but no handshake completed (PEER_CONNECTION_FAILED).
    #[error("peer connection failed")]
    ConnectionFailed,
    /// The server refused us (its firewall rejected our key, or it reported an error).
    #[error("server rejected the connection (error {0})")]
    Rejected(u64),
    /// The handshake reply did not authenticate (wrong key or garbage).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The server sent no UDX stream information.
    #[error("server did not send UDX data")]
    ServerIncompatible,
    /// The node is closed.
    #[error("destroyed")]
    Destroyed,
}

/// Decides whether a server accepts a client: `true` rejects (as the JS `firewall` option).
pub type FirewallFn = Arc<dyn Fn(&PublicKey, &NoisePayload, SocketAddrV4) -> bool + Send + Sync>;

struct ServerEntry {
    key_pair: KeyPair,
    firewall: Option<FirewallFn>,
    tx: mpsc::Sender<Connection>,
}

impl std::fmt::Debug for ServerEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerEntry")
            .field("public_key", self.key_pair.public_key())
            .finish_non_exhaustive()
    }
}

/// Servers hosted by this node, by target `H256(public key)`.
#[derive(Debug, Default)]
pub struct Servers {
    map: Mutex<HashMap<[u8; 32], ServerEntry>>,
    /// Replies to recent handshakes by hash of the client's first message: a client may reach
    /// us through several relays with the same message; it gets the same answer and one stream
    /// (hyperdht keeps handshakes for `handshakeClearWait`, 10 s).
    recent: Mutex<HashMap<[u8; 32], RecentReply>>,
}

/// A handshake reply and when it was made.
type RecentReply = (Vec<u8>, std::time::Instant);

/// How long a handshake reply is remembered.
const HANDSHAKE_CLEAR_WAIT: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Servers {
    /// Registers a server; `false` if the key is already listening here.
    pub fn add(
        &self,
        target: [u8; 32],
        key_pair: KeyPair,
        firewall: Option<FirewallFn>,
        tx: mpsc::Sender<Connection>,
    ) -> bool {
        let mut m = lock(&self.map);
        if m.contains_key(&target) {
            return false;
        }
        m.insert(
            target,
            ServerEntry {
                key_pair,
                firewall,
                tx,
            },
        );
        true
    }

    /// Stops hosting a key.
    pub fn remove(&self, target: &[u8; 32]) {
        lock(&self.map).remove(target);
    }

    /// Whether this node hosts the server for `target`.
    pub fn hosts(&self, target: &[u8; 32]) -> bool {
        lock(&self.map).contains_key(target)
    }
}

fn v4(a: SocketAddr) -> Option<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

fn new_stream(socket: &UdxSocket) -> Option<UdxStream> {
    for _ in 0..16 {
        let id = u32::from_le_bytes(random_array());
        if let Ok(s) = socket.create_stream(id, UdxConfig::default()) {
            return Some(s);
        }
    }
    None
}

fn stream_config() -> StreamConfig {
    StreamConfig {
        keep_alive: Some(CONNECTION_KEEP_ALIVE),
        ..StreamConfig::default()
    }
}

fn our_firewall(rpc: &DhtNode) -> Firewall {
    if rpc.is_firewalled() {
        Firewall::UNKNOWN
    } else {
        Firewall::OPEN
    }
}

fn our_addresses(socket: &UdxSocket) -> Vec<SocketAddrV4> {
    v4(socket.local_addr())
        .filter(|a| !a.ip().is_unspecified())
        .into_iter()
        .collect()
}

/// Server logic for a PEER_HANDSHAKE addressed to a key this node hosts. Returns the reply
/// handshake message (already encoded) or `None` to stay silent.
pub fn serve_handshake(
    rpc: &DhtNode,
    socket: &UdxSocket,
    servers: &Servers,
    target: &[u8; 32],
    hs: &Handshake,
    client_addr: SocketAddrV4,
) -> Option<Vec<u8>> {
    let msg_id = crate::crypto::blake2b256(&hs.noise);
    {
        let mut recent = lock(&servers.recent);
        recent.retain(|_, (_, at)| at.elapsed() < HANDSHAKE_CLEAR_WAIT);
        if let Some((reply, _)) = recent.get(&msg_id) {
            return Some(reply.clone());
        }
    }
    let (key_pair, firewall, tx) = {
        let m = lock(&servers.map);
        let e = m.get(target)?;
        (e.key_pair.clone(), e.firewall.clone(), e.tx.clone())
    };
    let mut noise = Noise::new(Pattern::IK, false, key_pair, &ns::PEER_HANDSHAKE, None).ok()?;
    let payload = noise.read_message(&hs.noise).ok()?;
    let remote_payload = from_slice::<NoisePayload>(&payload).ok()?;
    let remote_key = *noise.remote_static()?;
    let mut error = ErrorCode::NONE;
    if remote_payload.version != 1 {
        error = ErrorCode::VERSION_MISMATCH;
    } else if firewall.is_some_and(|f| f(&remote_key, &remote_payload, client_addr)) {
        error = ErrorCode::ABORTED;
    }
    let stream = if error == ErrorCode::NONE {
        new_stream(socket)
    } else {
        None
    };
    if error == ErrorCode::NONE && stream.is_none() {
        error = ErrorCode::TRY_LATER;
    }
    let mut reply = NoisePayload::with_version(1);
    reply.error = error;
    reply.firewall = our_firewall(rpc);
    reply.addresses4 = our_addresses(socket);
    if let Some(s) = &stream {
        reply.udx = Some(UdxInfo {
            version: 1,
            reusable_socket: false,
            id: u64::from(s.id()),
            seq: 0,
        });
        reply.secret_stream = Some(SecretStreamInfo { version: 1 });
    }
    let msg2 = noise.write_message(&to_vec(&reply)).ok()?;
    lock(&servers.recent).insert(msg_id, (msg2.clone(), std::time::Instant::now()));
    let result = noise.finish().ok()?;
    if let (Some(stream), Some(udx)) = (stream, &remote_payload.udx) {
        let remote_id = udx.id as u32;
        let client_open = remote_payload.firewall == Firewall::OPEN;
        let direct = client_open
            .then(|| remote_payload.addresses4.first().copied())
            .flatten();
        let ok = match direct {
            Some(addr) => stream.connect(remote_id, SocketAddr::V4(addr)).is_ok(),
            None => stream.accept_first_packet(remote_id).is_ok(),
        };
        if ok {
            let conn = SecretStream::from_handshake(stream, result, &stream_config());
            tracing::debug!(client = %remote_key, "server accepted a connection");
            if tx.try_send(conn).is_err() {
                tracing::warn!("server connection queue full; dropping a connection");
            }
        }
    }
    Some(msg2)
}

/// The router's part of PEER_HANDSHAKE (§7.3) on every node.
pub fn route_handshake(
    rpc: &DhtNode,
    servers: &Servers,
    known_relay: Option<SocketAddrV4>,
    req: &IncomingRequest,
) {
    let Some(target) = req.request.target else {
        return;
    };
    let Some(hs) = req
        .request
        .value
        .as_deref()
        .and_then(|v| from_slice::<Handshake>(v).ok())
    else {
        return;
    };
    let from = req.from;
    if servers.hosts(&target) {
        let client = if hs.mode == Mode::FROM_CLIENT {
            from
        } else {
            hs.peer_address.unwrap_or(from)
        };
        // The stream lives on the socket the handshake came in on: that is the address the
        // relay saw, which the client will send its UDX packets to.
        let socket = match req.handle.socket() {
            SocketKind::Server => rpc.server_socket(),
            SocketKind::Client => rpc.client_socket(),
        };
        let Some(msg2) = serve_handshake(rpc, socket, servers, &target, &hs, client) else {
            return;
        };
        match hs.mode {
            Mode::FROM_CLIENT => {
                let reply = Handshake {
                    mode: Mode::REPLY,
                    noise: msg2,
                    peer_address: None,
                    relay_address: None,
                };
                rpc.reply(req.handle, Some(to_vec(&reply)), false, false);
            }
            Mode::FROM_RELAY => {
                let fwd = Handshake {
                    mode: Mode::FROM_SERVER,
                    noise: msg2,
                    peer_address: hs.peer_address,
                    relay_address: None,
                };
                rpc.forward_request(req.handle, from, Some(to_vec(&fwd)));
            }
            Mode::FROM_SECOND_RELAY => {
                if let Some(relay) = hs.relay_address {
                    let fwd = Handshake {
                        mode: Mode::FROM_SERVER,
                        noise: msg2,
                        peer_address: hs.peer_address,
                        relay_address: None,
                    };
                    rpc.forward_request(req.handle, relay, Some(to_vec(&fwd)));
                }
            }
            _ => {}
        }
        return;
    }
    match hs.mode {
        Mode::FROM_CLIENT => {
            let Some(relay) = hs.relay_address.or(known_relay) else {
                rpc.reply(req.handle, None, false, true);
                return;
            };
            let fwd = Handshake {
                mode: Mode::FROM_RELAY,
                noise: hs.noise,
                peer_address: Some(from),
                relay_address: None,
            };
            rpc.forward_request(req.handle, relay, Some(to_vec(&fwd)));
        }
        Mode::FROM_RELAY => {
            if let Some(relay) = known_relay {
                let fwd = Handshake {
                    mode: Mode::FROM_SECOND_RELAY,
                    noise: hs.noise,
                    peer_address: hs.peer_address,
                    relay_address: Some(from),
                };
                rpc.forward_request(req.handle, relay, Some(to_vec(&fwd)));
            }
        }
        Mode::FROM_SERVER => {
            if let Some(client) = hs.peer_address {
                let reply = Handshake {
                    mode: Mode::REPLY,
                    noise: hs.noise,
                    peer_address: Some(from),
                    relay_address: None,
                };
                rpc.reply_to(req.handle, client, Some(to_vec(&reply)));
            }
        }
        _ => {}
    }
}

/// Client connect flow: FIND_PEER, then PEER_HANDSHAKE through the nodes that know the server,
/// then a direct UDX stream to the server and a secret stream on it.
pub async fn connect(
    rpc: &DhtNode,
    key_pair: &KeyPair,
    remote: &PublicKey,
) -> Result<Connection, ConnectError> {
    let target = super::sign::public_key_target(remote);
    let socket = if rpc.is_firewalled() {
        rpc.client_socket()
    } else {
        rpc.server_socket()
    };
    let stream = new_stream(socket).ok_or(ConnectError::Destroyed)?;
    let mut noise = Noise::new(
        Pattern::IK,
        true,
        key_pair.clone(),
        &ns::PEER_HANDSHAKE,
        Some(*remote),
    )
    .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    let mut payload = NoisePayload::with_version(1);
    payload.firewall = our_firewall(rpc);
    if !rpc.is_firewalled() {
        payload.addresses4 = our_addresses(socket);
    }
    payload.udx = Some(UdxInfo {
        version: 1,
        reusable_socket: false,
        id: u64::from(stream.id()),
        seq: 0,
    });
    payload.secret_stream = Some(SecretStreamInfo { version: 1 });
    let msg1 = noise
        .write_message(&to_vec(&payload))
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    let request = to_vec(&Handshake {
        mode: Mode::FROM_CLIENT,
        noise: msg1,
        peer_address: None,
        relay_address: None,
    });

    // Nodes that hold the server's record (or host it) answer FIND_PEER with a value.
    let (mut replies, done) = rpc.query(target, commands::FIND_PEER, false, None, false);
    let mut candidates: Vec<SocketAddrV4> = Vec::new();
    let mut finished = false;
    let mut done = done;
    let mut attempts = 0;
    loop {
        // Try every candidate seen so far before waiting for more.
        while let Some(addr) = candidates.pop() {
            attempts += 1;
            let Ok((from, res)) = rpc
                .request(
                    addr,
                    commands::PEER_HANDSHAKE,
                    false,
                    Some(target),
                    Some(request.clone()),
                    None,
                )
                .await
            else {
                continue;
            };
            let Some(hs) = res
                .value
                .as_deref()
                .and_then(|v| from_slice::<Handshake>(v).ok())
            else {
                continue;
            };
            if hs.mode != Mode::REPLY || hs.noise.is_empty() || from != addr {
                continue;
            }
            return complete(noise, stream, &hs, addr, remote);
        }
        if finished {
            break;
        }
        tokio::select! {
            r = replies.recv() => match r {
                Some(r) if r.response.value.is_some() => candidates.insert(0, r.from),
                Some(_) => {}
                None => finished = true,
            },
            _ = &mut done => finished = true,
        }
        if finished {
            while let Ok(r) = replies.try_recv() {
                if r.response.value.is_some() {
                    candidates.insert(0, r.from);
                }
            }
        }
    }
    Err(if attempts == 0 {
        ConnectError::PeerNotFound
    } else {
        ConnectError::ConnectionFailed
    })
}

/// Finishes the client side from the server's handshake reply received via `addr`.
fn complete(
    mut noise: Noise,
    stream: UdxStream,
    hs: &Handshake,
    addr: SocketAddrV4,
    remote: &PublicKey,
) -> Result<Connection, ConnectError> {
    let payload = noise
        .read_message(&hs.noise)
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    let remote_payload =
        from_slice::<NoisePayload>(&payload).map_err(|e| ConnectError::Handshake(e.to_string()))?;
    let result: HandshakeResult = noise
        .finish()
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    if remote_payload.version != 1 {
        return Err(ConnectError::ServerIncompatible);
    }
    if remote_payload.error != ErrorCode::NONE {
        return Err(ConnectError::Rejected(remote_payload.error.0));
    }
    let Some(udx) = remote_payload.udx else {
        return Err(ConnectError::ServerIncompatible);
    };
    let server_addr = hs.peer_address.unwrap_or(addr);
    let dest = if remote_payload.firewall == Firewall::OPEN {
        remote_payload
            .addresses4
            .iter()
            .copied()
            .find(|a| !a.ip().is_loopback() && !a.ip().is_private())
            .unwrap_or(server_addr)
    } else {
        server_addr
    };
    stream
        .connect(udx.id as u32, SocketAddr::V4(dest))
        .map_err(|_| ConnectError::Destroyed)?;
    tracing::debug!(server = %remote, %dest, "connected");
    Ok(SecretStream::from_handshake(
        stream,
        result,
        &stream_config(),
    ))
}

/// The router's part of PEER_HOLEPUNCH (§7.3) on every node. Hole punching of servers hosted
/// here is not implemented yet; forwarding between other peers is.
pub fn route_holepunch(
    rpc: &DhtNode,
    servers: &Servers,
    known_relay: Option<SocketAddrV4>,
    req: &IncomingRequest,
) {
    let Some(target) = req.request.target else {
        return;
    };
    let Some(hp) = req
        .request
        .value
        .as_deref()
        .and_then(|v| from_slice::<Holepunch>(v).ok())
    else {
        return;
    };
    let from = req.from;
    match hp.mode {
        Mode::FROM_CLIENT => {
            let Some(dest) = hp.peer_address.or(known_relay) else {
                return;
            };
            let fwd = Holepunch {
                mode: Mode::FROM_RELAY,
                id: hp.id,
                payload: hp.payload,
                peer_address: Some(from),
            };
            rpc.forward_request(req.handle, dest, Some(to_vec(&fwd)));
        }
        Mode::FROM_SERVER => {
            if let Some(client) = hp.peer_address {
                let reply = Holepunch {
                    mode: Mode::REPLY,
                    id: hp.id,
                    payload: hp.payload,
                    peer_address: Some(from),
                };
                rpc.reply_to(req.handle, client, Some(to_vec(&reply)));
            }
        }
        Mode::FROM_RELAY if servers.hosts(&target) => {
            tracing::debug!("hole punch for a server hosted here: not supported yet");
        }
        _ => {}
    }
}
