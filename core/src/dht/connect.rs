//! Key-addressed connections (spec `hyperdht.md` §7–§9): servers listening on a key pair,
//! clients connecting to a public key through the DHT's handshake router, Noise IK inside
//! PEER_HANDSHAKE, then a UDX stream carrying a secret stream started from the finished
//! handshake -- directly, or over a hole-punched path (`punch.rs`) when both sides are behind
//! NATs.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::blind_relay::{pair_through, RelayPlan};
use super::holepunch::{holepunch_secret, RandomPunchLimiter, PASSIVE_WAIT};
use super::messages::{
    commands, ErrorCode, Firewall, Handshake, Holepunch, HolepunchInfo, Mode, NoisePayload,
    RelayInfo, RelayThroughInfo, SecretStreamInfo, UdxInfo,
};
use super::punch::{ClientPunchInput, ServerHpRequest, ServerPunchPlan, SessionInput};
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
    /// The hole punch ran out without a path, or could not start (HOLEPUNCH_ABORTED).
    #[error("hole punch aborted")]
    HolepunchAborted,
    /// A side's NAT stayed unclassified (HOLEPUNCH_PROBE_TIMEOUT).
    #[error("hole punch probe timed out")]
    HolepunchProbeTimeout,
    /// Both sides are behind randomizing NATs (HOLEPUNCH_DOUBLE_RANDOMIZED_NATS).
    #[error("both sides are behind randomizing NATs")]
    HolepunchDoubleRandomizedNats,
    /// The server is firewalled but offered no hole-punch relay (CANNOT_HOLEPUNCH).
    #[error("cannot hole punch")]
    CannotHolepunch,
    /// No punch strategy fits the two NATs (REMOTE_NOT_HOLEPUNCHABLE).
    #[error("remote not hole-punchable")]
    RemoteNotHolepunchable,
    /// The server did not start punching (REMOTE_NOT_HOLEPUNCHING).
    #[error("remote is not hole punching")]
    RemoteNotHolepunching,
    /// The server aborted the punch with this error code (REMOTE_ABORTED).
    #[error("remote aborted the hole punch (error {0})")]
    RemoteAborted(u64),
    /// A hole-punch reply did not decrypt (HOLEPUNCH_INVALID).
    #[error("invalid hole-punch payload")]
    HolepunchInvalid,
    /// A malformed PEER_HOLEPUNCH reply (BAD_HOLEPUNCH_REPLY).
    #[error("bad hole-punch reply")]
    BadHolepunchReply,
    /// A relayed PEER_HOLEPUNCH request got no answer (REQUEST_TIMEOUT).
    #[error("request timed out")]
    RequestTimeout,
    /// The blind relay did not pair us within 15 s (or its connection failed) and no other
    /// path worked (RELAY_ABORTED).
    #[error("blind relay aborted")]
    RelayAborted,
}

/// Per-connect options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// A blind-relay server's key to fall back on (hyperdht's `relayThrough`): sent in our
    /// handshake payload; the server's relay wins if it names one too.
    pub relay_through: Option<PublicKey>,
    /// `false`: neither the LAN shortcut nor hole punching is tried for a firewalled server
    /// (JS `holepunch: () => false` with `localConnection: false`), so only a blind relay (or
    /// a reachable server) can carry the connection. Default `true`.
    pub holepunch: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            relay_through: None,
            holepunch: true,
        }
    }
}

/// Decides whether a server accepts a client: `true` rejects (as the JS `firewall` option).
pub type FirewallFn = Arc<dyn Fn(&PublicKey, &NoisePayload, SocketAddrV4) -> bool + Send + Sync>;

struct ServerEntry {
    key_pair: KeyPair,
    firewall: Option<FirewallFn>,
    tx: mpsc::Sender<Connection>,
    /// The blind relay this server asks clients to meet it at (`relayThrough`).
    relay_through: Option<PublicKey>,
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
    /// The nodes each hosted key was announced to, with our address as they saw it (the
    /// `holepunch.relays` of handshake replies).
    relays: Mutex<HashMap<[u8; 32], Vec<RelayInfo>>>,
    /// Hole-punch slots (the index is the holepunch id): the session's number and request
    /// channel. Only this table holds a session's sender, so the channel is freed with the slot.
    slots: Mutex<Vec<Option<Slot>>>,
    /// Number of the next hole-punch session (tells a reused slot from the one a recent
    /// handshake reply refers to).
    next_session: std::sync::atomic::AtomicU64,
    /// The node-wide random-punch limiter (client and server punches).
    pub(crate) limiter: Mutex<RandomPunchLimiter>,
}

/// A hole-punch slot in use: the session's number and request channel.
type Slot = (u64, mpsc::Sender<SessionInput>);

/// Hole-punch slots a node keeps at once.
const MAX_SLOTS: usize = 1024;

/// A handshake reply, when it was made, and the hole-punch session that sends it (if any) as
/// (slot, session number): not its sender, which would keep the session's channel allocated
/// for [`HANDSHAKE_CLEAR_WAIT`] after the connection is made.
type RecentReply = (Vec<u8>, std::time::Instant, Option<(usize, u64)>);

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
                relay_through: None,
            },
        );
        true
    }

    /// Sets the blind relay a hosted server names in its handshake replies (`relayThrough`).
    pub fn set_relay_through(&self, target: &[u8; 32], relay: Option<PublicKey>) {
        if let Some(e) = lock(&self.map).get_mut(target) {
            e.relay_through = relay;
        }
    }

    /// Stops hosting a key.
    pub fn remove(&self, target: &[u8; 32]) {
        lock(&self.map).remove(target);
    }

    /// Whether this node hosts the server for `target`.
    pub fn hosts(&self, target: &[u8; 32]) -> bool {
        lock(&self.map).contains_key(target)
    }

    /// Records the relays a hosted key was announced to.
    pub fn set_relays(&self, target: [u8; 32], relays: Vec<RelayInfo>) {
        lock(&self.relays).insert(target, relays);
    }

    fn relays_of(&self, target: &[u8; 32]) -> Vec<RelayInfo> {
        lock(&self.relays).get(target).cloned().unwrap_or_default()
    }

    /// Whether `addr` is one of the nodes `target` was announced to.
    pub(crate) fn is_relay(&self, target: &[u8; 32], addr: SocketAddrV4) -> bool {
        lock(&self.relays)
            .get(target)
            .is_some_and(|r| r.iter().any(|x| x.relay_address == addr))
    }

    fn alloc_slot(&self, tx: mpsc::Sender<SessionInput>) -> Option<usize> {
        let id = self
            .next_session
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut slots = lock(&self.slots);
        if let Some(i) = slots.iter().position(Option::is_none) {
            slots[i] = Some((id, tx));
            return Some(i);
        }
        if slots.len() >= MAX_SLOTS {
            return None;
        }
        slots.push(Some((id, tx)));
        Some(slots.len() - 1)
    }

    /// Frees a hole-punch slot.
    pub(crate) fn free_slot(&self, slot: usize) {
        let mut slots = lock(&self.slots);
        if let Some(s) = slots.get_mut(slot) {
            *s = None;
        }
        while slots.last().is_some_and(Option::is_none) {
            slots.pop();
        }
    }

    fn slot_sender(&self, slot: u64) -> Option<mpsc::Sender<SessionInput>> {
        let slots = lock(&self.slots);
        usize::try_from(slot)
            .ok()
            .and_then(|i| slots.get(i).cloned().flatten())
            .map(|(_, tx)| tx)
    }

    /// The number of the session in `slot`.
    fn slot_session(&self, slot: usize) -> Option<u64> {
        lock(&self.slots).get(slot)?.as_ref().map(|(id, _)| *id)
    }

    /// The sender of session `id` in `slot`, if that session still runs.
    fn session_sender(&self, slot: usize, id: u64) -> Option<mpsc::Sender<SessionInput>> {
        lock(&self.slots)
            .get(slot)?
            .as_ref()
            .filter(|(i, _)| *i == id)
            .map(|(_, tx)| tx.clone())
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

pub(crate) fn new_stream(socket: &UdxSocket) -> Option<UdxStream> {
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

/// Our candidate addresses: the public address when the node is unfirewalled, then the
/// socket's own address when it is bound to a specific host.
fn our_addresses(rpc: &DhtNode, socket: &UdxSocket) -> Vec<SocketAddrV4> {
    let mut out = Vec::new();
    if !rpc.is_firewalled() {
        if let (Some(host), port) = rpc.public_address() {
            let port = if port == 0 {
                v4(socket.local_addr()).map_or(0, |a| a.port())
            } else {
                port
            };
            out.push(SocketAddrV4::new(host, port));
        }
    }
    let local = v4(socket.local_addr());
    let lan = match local {
        Some(a) if a.ip().is_unspecified() => rpc
            .node_addresses()
            .first()
            .and_then(|n| local_ip_towards(*n))
            .map(|ip| SocketAddrV4::new(ip, a.port())),
        other => other,
    };
    if let Some(a) = lan {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// The local interface address the kernel would use to reach `dest` (a UDP `connect`, which
/// sends nothing).
fn local_ip_towards(dest: SocketAddrV4) -> Option<std::net::Ipv4Addr> {
    let s = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect(dest).ok()?;
    match s.local_addr().ok()? {
        SocketAddr::V4(a) if !a.ip().is_unspecified() => Some(*a.ip()),
        _ => None,
    }
}

/// Same public IP as the server: the server's shared non-reserved local address that best
/// matches ours and answers a PING.
async fn lan_shortcut(rpc: &DhtNode, addresses4: &[SocketAddrV4]) -> Option<SocketAddrV4> {
    let lan: Vec<SocketAddrV4> = addresses4
        .iter()
        .copied()
        .filter(|a| !is_reserved(*a.ip()))
        .collect();
    let mine: Vec<std::net::Ipv4Addr> = lan
        .first()
        .and_then(|a| local_ip_towards(*a))
        .into_iter()
        .collect();
    let dest = match_address(&mine, &lan).or_else(|| lan.first().copied())?;
    let ping = rpc
        .request(
            dest,
            crate::rpc::message::commands::PING,
            true,
            None,
            None,
            None,
        )
        .await;
    ping.is_ok().then_some(dest)
}

/// The `bogon` package's reserved ranges (bogons that are not private-use).
fn is_reserved(ip: std::net::Ipv4Addr) -> bool {
    let o = ip.octets();
    let private = o[0] == 10
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || o[0] == 127
        || (o[0] == 169 && o[1] == 254)
        || (o[0] == 172 && (16..32).contains(&o[1]))
        || (o[0] == 192 && o[1] == 168);
    is_bogon(ip) && !private
}

/// hyperdht's `matchAddress`: the remote address sharing the most leading octets (1-3) with
/// one of ours, else `None`.
fn match_address(mine: &[std::net::Ipv4Addr], theirs: &[SocketAddrV4]) -> Option<SocketAddrV4> {
    let mut best: (usize, Option<SocketAddrV4>) = (1, None);
    for m in mine {
        let a = m.octets();
        for t in theirs {
            let b = t.ip().octets();
            let same = a.iter().zip(&b).take(3).take_while(|(x, y)| x == y).count();
            if same == 3 {
                return Some(*t);
            }
            if same + 1 > best.0 {
                best = (same + 1, Some(*t));
            }
        }
    }
    best.1
}

/// Addresses hyperdht never dials as a server's public address (the `bogon` package: private,
/// loopback, link-local, shared, documentation, multicast and reserved ranges).
pub(crate) fn is_bogon(ip: std::net::Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
}

/// What [`serve_handshake`] decided.
pub(crate) struct Served {
    /// The encoded Noise reply.
    pub(crate) msg2: Vec<u8>,
    /// When hole punching: the session to run (it sends the reply from its punch socket).
    pub(crate) punch: Option<ServerPunchPlan>,
    /// A repeated handshake whose session is running: it relays the reply.
    pub(crate) session: Option<mpsc::Sender<SessionInput>>,
}

/// Server logic for a PEER_HANDSHAKE addressed to a key this node hosts. `direct`: the client
/// asked our own node (no relay). Returns the reply (and maybe a hole-punch session) or `None`
/// to stay silent.
#[allow(clippy::too_many_lines)]
pub(crate) fn serve_handshake(
    rpc: &DhtNode,
    socket: &UdxSocket,
    servers: &Arc<Servers>,
    target: &[u8; 32],
    hs: &Handshake,
    client_addr: SocketAddrV4,
    direct: bool,
) -> Option<Served> {
    let msg_id = crate::crypto::blake2b256(&hs.noise);
    {
        let mut recent = lock(&servers.recent);
        recent.retain(|_, (_, at, _)| at.elapsed() < HANDSHAKE_CLEAR_WAIT);
        if let Some((reply, _, session)) = recent.get(&msg_id) {
            return Some(Served {
                msg2: reply.clone(),
                punch: None,
                session: session.and_then(|(slot, id)| servers.session_sender(slot, id)),
            });
        }
    }
    let (key_pair, firewall, tx, relay_through) = {
        let m = lock(&servers.map);
        let e = m.get(target)?;
        (
            e.key_pair.clone(),
            e.firewall.clone(),
            e.tx.clone(),
            e.relay_through,
        )
    };
    let relay_kp = key_pair.clone();
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
    let we_open = our_firewall(rpc) == Firewall::OPEN;
    let client_open = remote_payload.firewall == Firewall::OPEN;
    // §10: our relay (fresh token) wins over the client's; the choosing side is initiator
    let relay_plan = match (relay_through, &remote_payload.relay_through) {
        (Some(relay), _) => Some(RelayPlan {
            relay,
            is_initiator: true,
            token: random_array(),
        }),
        (None, Some(r)) => Some(RelayPlan {
            relay: r.public_key,
            is_initiator: false,
            token: r.token,
        }),
        (None, None) => None,
    };
    // A blind relay carries the connection when one is in play and neither side is reachable.
    // We do not hole-punch then (hyperdht punches in parallel and later moves the stream to
    // the punched path; our streams cannot change sockets, so the relay path is final): the
    // client's PEER_HOLEPUNCH rounds name a slot that does not exist and go unanswered.
    let relaying = error == ErrorCode::NONE && !we_open && !client_open && !direct;
    let relay_plan = relay_plan.filter(|_| relaying);
    // hole punching is set up unless either side is reachable or the client came directly
    let mut slot = None;
    if error == ErrorCode::NONE && !we_open && !client_open && !direct && relay_plan.is_none() {
        let (stx, srx) = mpsc::channel(super::punch::REQUEST_QUEUE);
        if let Some(i) = servers.alloc_slot(stx) {
            slot = Some((i, srx));
        }
    }
    let mut reply = NoisePayload::with_version(1);
    reply.error = error;
    reply.firewall = our_firewall(rpc);
    reply.addresses4 = our_addresses(rpc, socket);
    if !we_open {
        reply.holepunch = Some(HolepunchInfo {
            id: slot.as_ref().map_or(
                if relay_plan.is_some() {
                    MAX_SLOTS as u64
                } else {
                    0
                },
                |(i, _)| *i as u64,
            ),
            relays: servers.relays_of(target),
        });
    }
    if let Some(s) = &stream {
        reply.udx = Some(UdxInfo {
            version: 1,
            reusable_socket: false,
            id: u64::from(s.id()),
            seq: 0,
        });
        reply.secret_stream = Some(SecretStreamInfo { version: 1 });
    }
    if let Some(plan) = relay_plan
        .filter(|p| p.is_initiator)
        .or(relay_through.map(|relay| RelayPlan {
            relay,
            is_initiator: true,
            token: random_array(),
        }))
    {
        reply.relay_through = Some(RelayThroughInfo::new(plan.relay, plan.token));
    }
    let msg2 = noise.write_message(&to_vec(&reply)).ok()?;
    let session = slot
        .as_ref()
        .and_then(|(i, _)| Some((*i, servers.slot_session(*i)?)));
    lock(&servers.recent).insert(msg_id, (msg2.clone(), std::time::Instant::now(), session));
    let result = noise.finish().ok()?;
    let (Some(stream), Some(udx)) = (stream, &remote_payload.udx) else {
        return Some(Served {
            msg2,
            punch: None,
            session: None,
        });
    };
    let remote_id = udx.id as u32;
    if let Some(plan) = relay_plan {
        // the relay-side stream replaces the one announced in msg2 (the peer only ever sends
        // to the id the relay gives it)
        drop(stream);
        let pairing = pair_through(rpc.clone(), servers.clone(), relay_kp, plan);
        tokio::spawn(async move {
            match pairing.await {
                Ok(stream) => {
                    let mut conn = SecretStream::from_handshake(stream, result, &stream_config());
                    // our header goes out at once (as the JS stream does on start): our first
                    // packet is what connects the relay's stream towards us, so the client's
                    // packets stop being dropped there
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        tokio::io::AsyncWriteExt::flush(&mut conn),
                    )
                    .await;
                    tracing::debug!(client = %remote_key, "server accepted a relayed connection");
                    if tx.try_send(conn).is_err() {
                        tracing::warn!("server connection queue full; dropping a connection");
                    }
                }
                Err(e) => tracing::debug!(client = %remote_key, error = %e, "relay failed"),
            }
        });
        return Some(Served {
            msg2,
            punch: None,
            session: None,
        });
    }
    if let Some((slot, requests)) = slot {
        if stream.accept_first_packet(remote_id).is_err() {
            servers.free_slot(slot);
            return Some(Served {
                msg2,
                punch: None,
                session: None,
            });
        }
        let secret = holepunch_secret(&result.hash);
        let deliver = Box::new(move |stream: UdxStream| {
            let conn = SecretStream::from_handshake(stream, result, &stream_config());
            tracing::debug!(client = %remote_key, "server accepted a punched connection");
            if tx.try_send(conn).is_err() {
                tracing::warn!("server connection queue full; dropping a connection");
            }
        });
        return Some(Served {
            msg2,
            punch: Some(ServerPunchPlan {
                target: *target,
                slot,
                requests,
                secret,
                remote_firewall: remote_payload.firewall,
                main_stream: stream,
                remote_udx_id: remote_id,
                deliver,
                handshake_reply: None,
            }),
            session: None,
        });
    }
    // The client is reachable (or came directly): connect to it now; otherwise (we are OPEN)
    // the client's first packet shows its path.
    let ok = if client_open || direct {
        stream
            .connect(remote_id, SocketAddr::V4(client_addr))
            .is_ok()
    } else {
        stream.accept_first_packet(remote_id).is_ok()
    };
    if ok {
        let conn = SecretStream::from_handshake(stream, result, &stream_config());
        tracing::debug!(client = %remote_key, "server accepted a connection");
        if tx.try_send(conn).is_err() {
            tracing::warn!("server connection queue full; dropping a connection");
        }
    }
    Some(Served {
        msg2,
        punch: None,
        session: None,
    })
}

/// The router's part of PEER_HANDSHAKE (§7.3) on every node.
#[allow(clippy::too_many_lines)]
pub fn route_handshake(
    rpc: &DhtNode,
    servers: &Arc<Servers>,
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
        let direct = hs.mode == Mode::FROM_CLIENT;
        let client = if direct {
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
        let Some(served) = serve_handshake(rpc, socket, servers, &target, &hs, client, direct)
        else {
            return;
        };
        let msg2 = served.msg2;
        let forward = |relay: SocketAddrV4| {
            to_vec(&Handshake {
                mode: Mode::FROM_SERVER,
                noise: msg2.clone(),
                peer_address: hs.peer_address,
                relay_address: None,
            })
            .pipe(|v| (relay, v))
        };
        let dest = match hs.mode {
            Mode::FROM_CLIENT => {
                let reply = Handshake {
                    mode: Mode::REPLY,
                    noise: msg2.clone(),
                    peer_address: None,
                    relay_address: None,
                };
                rpc.reply(req.handle, Some(to_vec(&reply)), false, false);
                None
            }
            Mode::FROM_RELAY => Some(forward(from)),
            Mode::FROM_SECOND_RELAY => hs.relay_address.map(forward),
            _ => None,
        };
        match (served.punch, dest) {
            (Some(mut plan), Some((relay, value))) => {
                // the reply leaves from the punch socket so the relay reports its address
                plan.handshake_reply = Some((req.handle.tid(), relay, value));
                tokio::spawn(super::punch::server_session(
                    rpc.clone(),
                    servers.clone(),
                    plan,
                ));
            }
            (Some(plan), None) => servers.free_slot(plan.slot),
            (None, Some((relay, value))) => {
                let input = SessionInput::HandshakeReply {
                    tid: req.handle.tid(),
                    relay,
                    value: value.clone(),
                };
                let via_session = served.session.is_some_and(|tx| tx.try_send(input).is_ok());
                if !via_session {
                    rpc.forward_request(req.handle, relay, Some(value));
                }
            }
            (None, None) => {}
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

trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl<T> Pipe for T {}

/// Client connect flow: FIND_PEER, then PEER_HANDSHAKE through the nodes that know the server,
/// then a UDX stream to the server (directly, over a punched path or through a blind relay) and
/// a secret stream on it.
#[allow(clippy::too_many_lines)]
pub async fn connect(
    rpc: &DhtNode,
    servers: &Arc<Servers>,
    key_pair: &KeyPair,
    remote: &PublicKey,
    opts: &ConnectOptions,
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
    payload.addresses4 = our_addresses(rpc, socket);
    payload.udx = Some(UdxInfo {
        version: 1,
        reusable_socket: false,
        id: u64::from(stream.id()),
        seq: 0,
    });
    payload.secret_stream = Some(SecretStreamInfo { version: 1 });
    let our_relay = opts.relay_through.map(|relay| RelayPlan {
        relay,
        is_initiator: true,
        token: random_array(),
    });
    if let Some(plan) = &our_relay {
        payload.relay_through = Some(RelayThroughInfo::new(plan.relay, plan.token));
    }
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
            let reply = HandshakeReply {
                hs: &hs,
                relay: addr,
                client_addr: res.to,
            };
            let ctx = ClientCtx {
                rpc,
                servers,
                key_pair,
                target,
                remote,
                our_relay,
                holepunch: opts.holepunch,
            };
            return complete(&ctx, noise, stream, reply).await;
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

struct HandshakeReply<'a> {
    hs: &'a Handshake,
    /// The node that carried the handshake.
    relay: SocketAddrV4,
    /// Our address as that node saw it.
    client_addr: SocketAddrV4,
}

struct ClientCtx<'a> {
    rpc: &'a DhtNode,
    servers: &'a Arc<Servers>,
    key_pair: &'a KeyPair,
    target: [u8; 32],
    remote: &'a PublicKey,
    our_relay: Option<RelayPlan>,
    holepunch: bool,
}

/// Finishes the client side from the server's handshake reply: decides the path (§9.2 step 5)
/// and connects the stream.
#[allow(clippy::too_many_lines)]
async fn complete(
    ctx: &ClientCtx<'_>,
    mut noise: Noise,
    stream: UdxStream,
    reply: HandshakeReply<'_>,
) -> Result<Connection, ConnectError> {
    let ClientCtx {
        rpc,
        servers,
        target,
        remote,
        ..
    } = *ctx;
    let hs = reply.hs;
    let addr = reply.relay;
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
    let remote_id = udx.id as u32;
    let relayed = hs.peer_address.is_some();
    let server_addr = hs.peer_address.unwrap_or(addr);
    let holepunch = remote_payload
        .holepunch
        .clone()
        .filter(|h| !h.relays.is_empty());
    let direct_to = |dest: SocketAddrV4, stream: UdxStream, result: HandshakeResult| {
        stream
            .connect(remote_id, SocketAddr::V4(dest))
            .map_err(|_| ConnectError::Destroyed)?;
        tracing::debug!(server = %remote, %dest, "connected");
        Ok(SecretStream::from_handshake(
            stream,
            result,
            &stream_config(),
        ))
    };
    if !relayed {
        return direct_to(addr, stream, result);
    }
    if remote_payload.firewall == Firewall::OPEN || holepunch.is_none() {
        if remote_payload.firewall != Firewall::OPEN && our_firewall(rpc) != Firewall::OPEN {
            // JS: a firewalled server without relays cannot be punched; we still try its
            // relay-observed address (works when the server's NAT is lenient or local).
            tracing::debug!("server offered no hole-punch relays");
        }
        let dest = remote_payload
            .addresses4
            .iter()
            .copied()
            .find(|a| !is_bogon(*a.ip()))
            .unwrap_or(server_addr);
        return direct_to(dest, stream, result);
    }
    if our_firewall(rpc) == Firewall::OPEN {
        // the server connects to us: wait for its first packet
        stream
            .accept_first_packet(remote_id)
            .map_err(|_| ConnectError::Destroyed)?;
        let deadline = tokio::time::Instant::now() + PASSIVE_WAIT;
        while stream.remote().is_none() {
            if tokio::time::Instant::now() >= deadline {
                return Err(ConnectError::HolepunchAborted);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        return Ok(SecretStream::from_handshake(
            stream,
            result,
            &stream_config(),
        ));
    }
    // §10: the server's relay wins; otherwise ours. With a relay in play it carries the
    // connection (no LAN shortcut or hole punch: the stream could not move to that path later).
    let relay_plan = match (&remote_payload.relay_through, ctx.our_relay) {
        (Some(r), _) => Some(RelayPlan {
            relay: r.public_key,
            is_initiator: false,
            token: r.token,
        }),
        (None, ours) => ours,
    };
    let allowed = ctx.holepunch;
    let punch = punch_path(
        rpc,
        servers,
        PunchArgs {
            target,
            client_addr: reply.client_addr,
            server_addr,
            handshake_relay: addr,
            remote_payload: &remote_payload,
            holepunch,
            secret: holepunch_secret(&result.hash),
            stream,
            remote_id,
            allowed,
        },
    );
    let (path, relayed_path) = match relay_plan {
        None => (punch.await?, false),
        Some(plan) => {
            // relay only: the server does not punch while relaying either (see
            // `serve_handshake`), so both sides end up on the same path
            drop(punch);
            let pairing = pair_through(rpc.clone(), servers.clone(), ctx.key_pair.clone(), plan);
            (pairing.await?, true)
        }
    };
    tracing::debug!(server = %remote, relayed = relayed_path, "connected");
    let mut conn = SecretStream::from_handshake(path, result, &stream_config());
    // Put our header on the wire now (as the JS stream does on start): the server binds its
    // stream to the path of our first packet before it hands out the connection.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncWriteExt::flush(&mut conn),
    )
    .await;
    Ok(conn)
}

struct PunchArgs<'a> {
    target: [u8; 32],
    client_addr: SocketAddrV4,
    server_addr: SocketAddrV4,
    handshake_relay: SocketAddrV4,
    remote_payload: &'a NoisePayload,
    holepunch: Option<HolepunchInfo>,
    secret: [u8; 32],
    stream: UdxStream,
    remote_id: u32,
    allowed: bool,
}

/// The LAN shortcut, then the hole punch: a UDX stream connected to the server.
async fn punch_path(
    rpc: &DhtNode,
    servers: &Servers,
    a: PunchArgs<'_>,
) -> Result<UdxStream, ConnectError> {
    let PunchArgs {
        target,
        client_addr,
        server_addr,
        handshake_relay,
        remote_payload,
        holepunch,
        secret,
        stream,
        remote_id,
        allowed,
    } = a;
    if !allowed {
        return Err(ConnectError::HolepunchAborted);
    }
    // LAN shortcut (hyperdht races this with the punch; we try it first)
    if client_addr.ip() == server_addr.ip() {
        match lan_shortcut(rpc, &remote_payload.addresses4).await {
            Some(dest) => {
                tracing::debug!(%dest, "LAN shortcut");
                stream
                    .connect(remote_id, SocketAddr::V4(dest))
                    .map_err(|_| ConnectError::Destroyed)?;
                return Ok(stream);
            }
            None if holepunch.is_none() => return Err(ConnectError::HolepunchAborted),
            None => {}
        }
    }
    let Some(info) = holepunch else {
        return Err(ConnectError::CannotHolepunch);
    };
    let input = ClientPunchInput {
        target,
        holepunch_id: info.id,
        relays: info.relays,
        handshake_relay,
        server_address: server_addr,
        server_firewall: remote_payload.firewall,
        secret,
    };
    let (sock, from) = super::punch::client_holepunch(rpc, servers, input).await?;
    let id = stream.id();
    drop(stream);
    let punched = sock
        .create_stream(id, UdxConfig::default())
        .map_err(|_| ConnectError::Destroyed)?;
    tracing::debug!(%from, "connected over a punched path");
    punched
        .connect(remote_id, SocketAddr::V4(from))
        .map_err(|_| ConnectError::Destroyed)?;
    Ok(punched)
}

/// The router's part of PEER_HOLEPUNCH (§7.3) on every node: forwarding between other peers,
/// and handing messages for servers hosted here to their hole-punch session.
pub fn route_holepunch(
    rpc: &DhtNode,
    servers: &Arc<Servers>,
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
            if hp.peer_address.is_none() {
                return;
            }
            let Some(tx) = servers.slot_sender(hp.id) else {
                return;
            };
            let _ = tx.try_send(SessionInput::Holepunch(ServerHpRequest {
                tid: req.handle.tid(),
                relay: from,
                to: req.request.to,
                hp,
                on_punch_socket: false,
            }));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn a(s: &str) -> SocketAddrV4 {
        s.parse()
            .unwrap_or_else(|_| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
    }

    #[test]
    fn bogon_and_reserved_ranges_follow_the_bogon_package() {
        for ip in [
            "10.1.2.3",
            "127.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.0.2.1",
            "224.0.0.1",
            "0.1.2.3",
        ] {
            let ip: Ipv4Addr = ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            assert!(is_bogon(ip), "{ip} is a bogon");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "88.99.3.86"] {
            let ip: Ipv4Addr = ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            assert!(!is_bogon(ip), "{ip} is public");
        }
        // private-use ranges are bogons but not reserved (LAN candidates)
        assert!(!is_reserved(Ipv4Addr::new(192, 168, 1, 3)));
        assert!(!is_reserved(Ipv4Addr::LOCALHOST));
        assert!(is_reserved(Ipv4Addr::new(198, 51, 100, 1)));
        assert!(is_reserved(Ipv4Addr::new(240, 0, 0, 1)));
    }

    #[test]
    fn match_address_prefers_the_longest_shared_prefix() {
        let mine = [Ipv4Addr::new(192, 168, 122, 238)];
        let theirs = [a("10.0.0.1:1"), a("192.168.0.23:2"), a("192.168.122.1:3")];
        assert_eq!(match_address(&mine, &theirs), Some(a("192.168.122.1:3")));
        assert_eq!(
            match_address(&mine, &[a("10.0.0.1:1"), a("192.168.0.23:2")]),
            Some(a("192.168.0.23:2"))
        );
        assert_eq!(match_address(&mine, &[a("10.0.0.1:1")]), None);
        assert_eq!(match_address(&mine, &[]), None);
    }

    #[test]
    fn slots_are_reused_and_trimmed() {
        let servers = Servers::default();
        let (tx, _rx) = mpsc::channel(1);
        let s0 = servers.alloc_slot(tx.clone());
        let s1 = servers.alloc_slot(tx.clone());
        assert_eq!((s0, s1), (Some(0), Some(1)));
        servers.free_slot(0);
        assert_eq!(servers.alloc_slot(tx.clone()), Some(0));
        assert!(servers.slot_sender(1).is_some());
        servers.free_slot(1);
        servers.free_slot(0);
        assert!(servers.slot_sender(0).is_none());
        assert!(servers.slot_sender(u64::MAX).is_none());
    }

    #[test]
    fn a_recent_reply_reaches_only_its_own_session_and_holds_no_channel() {
        let servers = Servers::default();
        let (tx, rx) = mpsc::channel(1);
        let slot = servers.alloc_slot(tx).unwrap();
        let id = servers.slot_session(slot).unwrap();
        assert!(servers.session_sender(slot, id).is_some());
        // the session ends: its slot is freed and nothing else keeps the channel open
        servers.free_slot(slot);
        assert!(rx.is_closed());
        assert!(servers.session_sender(slot, id).is_none());
        // a new session in the same slot is not the one the recent reply refers to
        let (tx2, _rx2) = mpsc::channel(1);
        assert_eq!(servers.alloc_slot(tx2), Some(slot));
        assert!(servers.session_sender(slot, id).is_none());
        let id2 = servers.slot_session(slot).unwrap();
        assert_ne!(id, id2);
        assert!(servers.session_sender(slot, id2).is_some());
    }
}
