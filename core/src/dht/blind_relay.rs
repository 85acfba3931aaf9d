//! The blind-relay fallback (spec `hyperdht.md` §10, npm `blind-relay` 1.6): when two peers ask
//! for it (`relayThrough` in their Noise payloads), both connect to a relay server's key, open a
//! Protomux channel `"blind-relay"` (id = their own public key) and send
//! `pair {isInitiator, token, their UDX stream id}`. The relay matches the two halves by token,
//! creates two UDX streams that forward packets to each other, and answers each side with the
//! id of its relay-side stream. Each side then runs its UDX stream (and the secret stream
//! started from the already finished Noise handshake) to the relay's address: the relay only
//! ever sees ciphertext.
//!
//! * [`Pair`] / [`Unpair`]: the two channel messages;
//! * [`pair_through`]: the peer side (used by `connect` and by servers);
//! * [`BlindRelayServer`]: a relay server on a [`Dht`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::connect::{new_stream, ConnectError, ConnectOptions, Connection, Servers};
use super::{Dht, DhtError};
use crate::crypto::{KeyPair, PublicKey};
use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::protomux::{Event, Mux};
use crate::rpc::driver::DhtNode;
use crate::udx::{UdxSocket, UdxStream};

/// The Protomux protocol name.
pub const PROTOCOL: &str = "blind-relay";
/// How long a side waits for the relay to pair it (hyperdht's 15 s).
pub const PAIRING_TIMEOUT: Duration = Duration::from_secs(15);
/// Tokens a relay server keeps waiting for their second half.
const MAX_PENDING: usize = 4096;

/// Message 0: `bitfield(7) flags (bit0 isInitiator) || fixed32 token || uint id || uint seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The side's role.
    pub is_initiator: bool,
    /// The pairing token both sides present.
    pub token: [u8; 32],
    /// The sender's UDX stream id (requests) or the relay-side stream id (replies).
    pub id: u64,
    /// Always 0.
    pub seq: u64,
}

impl Pair {
    /// Encodes the message payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(48);
        e.uint8(u8::from(self.is_initiator))
            .raw(&self.token)
            .uint(self.id)
            .uint(self.seq);
        e.into_inner()
    }

    /// Decodes a message payload.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(b);
        let flags = d.uint8()?;
        Ok(Self {
            is_initiator: flags & 1 != 0,
            token: d.fixed()?,
            id: d.uint()?,
            seq: d.uint()?,
        })
    }
}

/// Message 1: `bitfield(7) flags (0) || fixed32 token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpair {
    /// The token whose pairing is cancelled.
    pub token: [u8; 32],
}

impl Unpair {
    /// Encodes the message payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(33);
        e.uint8(0).raw(&self.token);
        e.into_inner()
    }

    /// Decodes a message payload.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(b);
        d.uint8()?;
        Ok(Self { token: d.fixed()? })
    }
}

/// What a side asks the relay for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayPlan {
    /// The relay server's key.
    pub relay: PublicKey,
    /// Our role: the side whose relay was chosen is the initiator (the server's wins).
    pub is_initiator: bool,
    /// The pairing token.
    pub token: [u8; 32],
}

/// The future [`pair_through`] returns.
pub type PairFuture = Pin<Box<dyn Future<Output = Result<UdxStream, ConnectError>> + Send>>;

/// Connects to the relay, pairs, and returns a UDX stream connected to the relay-side stream
/// (on the relay connection's socket), within [`PAIRING_TIMEOUT`] else
/// [`ConnectError::RelayAborted`]. The relay connection stays up (kept alive, in a background
/// task) until the returned stream closes.
pub fn pair_through(
    rpc: DhtNode,
    servers: Arc<Servers>,
    key_pair: KeyPair,
    plan: RelayPlan,
) -> PairFuture {
    Box::pin(async move {
        match tokio::time::timeout(PAIRING_TIMEOUT, pair_inner(rpc, servers, key_pair, plan)).await
        {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "blind relay pairing failed");
                Err(ConnectError::RelayAborted)
            }
            Err(_) => {
                tracing::debug!("blind relay pairing timed out");
                Err(ConnectError::RelayAborted)
            }
        }
    })
}

async fn pair_inner(
    rpc: DhtNode,
    servers: Arc<Servers>,
    key_pair: KeyPair,
    plan: RelayPlan,
) -> Result<UdxStream, ConnectError> {
    let mut conn = super::connect::connect(
        &rpc,
        &servers,
        &key_pair,
        &plan.relay,
        &ConnectOptions::default(),
    )
    .await?;
    let relay_addr = conn
        .get_ref()
        .remote()
        .map(|r| r.addr)
        .ok_or(ConnectError::RelayAborted)?;
    let socket = conn.get_ref().socket();
    let stream = new_stream(&socket).ok_or(ConnectError::Destroyed)?;
    let mut mux = Mux::new();
    let (local_id, open) = mux.open(PROTOCOL, Some(&key_pair.public_key().0), &[]);
    let pair = Pair {
        is_initiator: plan.is_initiator,
        token: plan.token,
        id: u64::from(stream.id()),
        seq: 0,
    };
    let msg = encode_msg(local_id, 0, &pair.encode());
    send(&mut conn, &open).await?;
    send(&mut conn, &msg).await?;
    let remote_id = loop {
        let frame = conn
            .recv()
            .await
            .map_err(|_| ConnectError::RelayAborted)?
            .ok_or(ConnectError::RelayAborted)?;
        mux.receive(&frame)
            .map_err(|_| ConnectError::RelayAborted)?;
        let mut found = None;
        while let Some(ev) = mux.poll_event() {
            match ev {
                Event::Message {
                    local_id: l,
                    kind: 0,
                    payload,
                } if l == local_id => {
                    if let Ok(p) = Pair::decode(&payload) {
                        if p.token == plan.token && p.is_initiator == plan.is_initiator {
                            found = u32::try_from(p.id).ok();
                        }
                    }
                }
                Event::Closed { local_id: l } if l == local_id => {
                    return Err(ConnectError::RelayAborted);
                }
                Event::RemoteOpen { remote_id, .. } => {
                    if let Some(f) = mux.reject(remote_id) {
                        send(&mut conn, &f).await?;
                    }
                }
                _ => {}
            }
        }
        if let Some(id) = found {
            break id;
        }
    };
    stream
        .connect(remote_id, relay_addr)
        .map_err(|_| ConnectError::Destroyed)?;
    tracing::debug!(relay = %plan.relay, %relay_addr, remote_id, "paired through the blind relay");
    // keep the relay connection up (keep-alives, acks) until our stream closes
    let watch = stream.close_watch();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = watch.closed() => break,
                r = conn.recv() => match r {
                    Ok(Some(frame)) => {
                        if mux.receive(&frame).is_err() {
                            break;
                        }
                        while mux.poll_event().is_some() {}
                    }
                    _ => break,
                },
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.end()).await;
    });
    Ok(stream)
}

fn encode_msg(local_id: u64, kind: u64, payload: &[u8]) -> Vec<u8> {
    crate::protomux::encode_message(local_id, kind, payload)
}

async fn send(conn: &mut Connection, frame: &[u8]) -> Result<(), ConnectError> {
    conn.send(frame)
        .await
        .map_err(|_| ConnectError::RelayAborted)
}

/// Counters of a [`BlindRelayServer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Connections accepted.
    pub sessions: u64,
    /// Pair requests received.
    pub pair_requests: u64,
    /// Pairings matched (two streams joined).
    pub matched: u64,
    /// Pairings cancelled (unpair, or a session closed while waiting).
    pub cancelled: u64,
}

struct Half {
    session: u64,
    peer_stream: u32,
    socket: UdxSocket,
    /// The peer's address as its relay session runs (its raw stream shares that socket).
    path: Option<SocketAddr>,
    tx: mpsc::Sender<Paired>,
}

struct Paired {
    is_initiator: bool,
    token: [u8; 32],
    stream: UdxStream,
}

#[derive(Default)]
struct RelayState {
    /// Waiting halves by token, indexed by role (0 = responder, 1 = initiator).
    pending: HashMap<[u8; 32], [Option<Half>; 2]>,
    stats: RelayStats,
    next_session: u64,
}

fn lock(m: &Mutex<RelayState>) -> std::sync::MutexGuard<'_, RelayState> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A blind-relay server: a hyperdht server on its key pair whose clients pair UDX streams
/// through it (npm `blind-relay`'s `Server` on a hyperdht server).
#[derive(Debug)]
pub struct BlindRelayServer {
    public_key: PublicKey,
    state: Arc<Mutex<RelayState>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RelayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayState")
            .field("pending", &self.pending.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl BlindRelayServer {
    /// Listens on `key_pair` on `dht` and relays for every client that pairs.
    pub async fn listen(dht: &Dht, key_pair: KeyPair) -> Result<Self, DhtError> {
        let public_key = *key_pair.public_key();
        let mut server = dht.listen(key_pair, None).await?;
        let state = Arc::new(Mutex::new(RelayState::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Some(conn) = server.accept().await {
                let session = {
                    let mut s = lock(&st);
                    s.stats.sessions += 1;
                    s.next_session += 1;
                    s.next_session
                };
                tokio::spawn(run_session(st.clone(), session, conn));
            }
        });
        Ok(Self {
            public_key,
            state,
            task,
        })
    }

    /// The key peers name in `relay_through`.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Counters so far.
    pub fn stats(&self) -> RelayStats {
        lock(&self.state).stats
    }

    /// Stops accepting sessions (running relays keep going until their peers close).
    pub fn close(&self) {
        self.task.abort();
    }
}

impl Drop for BlindRelayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[allow(clippy::too_many_lines)]
async fn run_session(state: Arc<Mutex<RelayState>>, session: u64, mut conn: Connection) {
    let socket = conn.get_ref().socket();
    let path = conn.get_ref().remote().map(|r| r.addr);
    let (tx, mut rx) = mpsc::channel::<Paired>(64);
    let mut mux = Mux::new();
    let mut channel: Option<u64> = None;
    let mut links: Vec<UdxStream> = Vec::new();
    let mut waiting: Vec<[u8; 32]> = Vec::new();
    'outer: loop {
        let frame = tokio::select! {
            r = conn.recv() => match r {
                Ok(Some(f)) => f,
                _ => break,
            },
            p = rx.recv() => {
                let Some(p) = p else { break };
                waiting.retain(|t| *t != p.token);
                if let Some(ch) = channel {
                    let reply = Pair {
                        is_initiator: p.is_initiator,
                        token: p.token,
                        id: u64::from(p.stream.id()),
                        seq: 0,
                    };
                    let f = encode_msg(ch, 0, &reply.encode());
                    if conn.send(&f).await.is_err() {
                        links.push(p.stream);
                        break;
                    }
                }
                links.push(p.stream);
                continue;
            }
        };
        if mux.receive(&frame).is_err() {
            break;
        }
        while let Some(ev) = mux.poll_event() {
            match ev {
                Event::RemoteOpen {
                    remote_id,
                    protocol,
                    id,
                } => {
                    let f = if protocol == PROTOCOL && channel.is_none() {
                        let (l, f) = mux.open(PROTOCOL, id.as_deref(), &[]);
                        channel = Some(l);
                        Some(f)
                    } else {
                        mux.reject(remote_id)
                    };
                    if let Some(f) = f {
                        if conn.send(&f).await.is_err() {
                            break 'outer;
                        }
                    }
                }
                Event::Closed { .. } => break 'outer,
                Event::Message {
                    local_id,
                    kind,
                    payload,
                } if Some(local_id) == channel => match kind {
                    0 => {
                        let Ok(p) = Pair::decode(&payload) else {
                            continue;
                        };
                        let Ok(peer_stream) = u32::try_from(p.id) else {
                            continue;
                        };
                        let half = Half {
                            session,
                            peer_stream,
                            socket: socket.clone(),
                            path,
                            tx: tx.clone(),
                        };
                        if on_pair(&state, p, half) {
                            waiting.push(p.token);
                        }
                    }
                    1 => {
                        if let Ok(u) = Unpair::decode(&payload) {
                            let mut s = lock(&state);
                            if s.pending.remove(&u.token).is_some() {
                                s.stats.cancelled += 1;
                            }
                        }
                    }
                    _ => {}
                },
                Event::Opened { .. } | Event::Message { .. } => {}
            }
        }
    }
    {
        let mut s = lock(&state);
        for t in &waiting {
            if let Some(halves) = s.pending.get_mut(t) {
                for h in halves.iter_mut() {
                    if h.as_ref().is_some_and(|h| h.session == session) {
                        *h = None;
                    }
                }
                if halves.iter().all(Option::is_none) {
                    s.pending.remove(t);
                    s.stats.cancelled += 1;
                }
            }
        }
    }
    for l in &links {
        l.destroy();
    }
    conn.destroy();
    tracing::debug!(session, "blind relay session closed");
}

/// Registers a half; joins the pair when the other half waits. `true` if the half now waits.
fn on_pair(state: &Mutex<RelayState>, p: Pair, half: Half) -> bool {
    let role = usize::from(p.is_initiator);
    let mut s = lock(state);
    s.stats.pair_requests += 1;
    if !s.pending.contains_key(&p.token) && s.pending.len() >= MAX_PENDING {
        return false;
    }
    let halves = s.pending.entry(p.token).or_default();
    if halves[role].is_some() {
        return false; // as JS: a second request for the same role is ignored
    }
    halves[role] = Some(half);
    if halves[1 - role].is_none() {
        return true;
    }
    let Some([Some(resp), Some(init)]) = s.pending.remove(&p.token) else {
        return false;
    };
    if let Some((rs, is)) = join(&resp, &init) {
        {
            s.stats.matched += 1;
            drop(s);
            let _ = resp.tx.try_send(Paired {
                is_initiator: false,
                token: p.token,
                stream: rs,
            });
            let _ = init.tx.try_send(Paired {
                is_initiator: true,
                token: p.token,
                stream: is,
            });
        }
    } else {
        s.stats.cancelled += 1;
        tracing::warn!("blind relay: the two halves are on different sockets; not paired");
    }
    false
}

/// Two relay streams, each on its half's socket, forwarding to each other.
///
/// Each is connected at once to the address its peer's relay session runs from (peers put
/// their raw stream on that same socket), not on the peer's first packet as blind-relay does:
/// the peer paired first may send before the other has its pairing reply, and those packets
/// then reach the other's (still unconnected) stream, which keeps them, instead of being
/// dropped here and retransmitted a whole RTO (1 s) later. Without a known session path the
/// stream connects to its peer's first packet.
fn join(a: &Half, b: &Half) -> Option<(UdxStream, UdxStream)> {
    if a.socket.local_addr() != b.socket.local_addr() {
        return None;
    }
    let sa = new_stream(&a.socket)?;
    let sb = new_stream(&a.socket)?;
    for (s, h) in [(&sa, a), (&sb, b)] {
        match h.path {
            Some(addr) => s.connect(h.peer_stream, addr).ok()?,
            None => s.accept_first_packet(h.peer_stream).ok()?,
        }
    }
    a.socket.relay(&sa, &sb).ok()?;
    Some((sa, sb))
}

/// Whether `addr` is the address a relay connection runs to (for diagnostics and tests).
pub fn is_relay_path(stream: &UdxStream, relay_addr: SocketAddr) -> bool {
    stream.remote().is_some_and(|r| r.addr == relay_addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_and_unpair_match_js_bytes() {
        // from tests/interop/js/gen-protomux-vectors.js (after the `uint localId || uint type`)
        let p = Pair {
            is_initiator: true,
            token: [0x11; 32],
            id: 1_234_567,
            seq: 0,
        };
        let mut want = vec![1u8];
        want.extend_from_slice(&[0x11; 32]);
        want.extend_from_slice(&[0xfe, 0x87, 0xd6, 0x12, 0x00, 0x00]);
        assert_eq!(p.encode(), want);
        assert_eq!(Pair::decode(&want), Ok(p));
        let r = Pair {
            is_initiator: false,
            token: [0x22; 32],
            id: 5,
            seq: 0,
        };
        let mut want = vec![0u8];
        want.extend_from_slice(&[0x22; 32]);
        want.extend_from_slice(&[5, 0]);
        assert_eq!(r.encode(), want);
        let u = Unpair { token: [0x33; 32] };
        let mut want = vec![0u8];
        want.extend_from_slice(&[0x33; 32]);
        assert_eq!(u.encode(), want);
        assert_eq!(Unpair::decode(&want), Ok(u));
        assert!(Pair::decode(&[1, 2, 3]).is_err());
    }
}
