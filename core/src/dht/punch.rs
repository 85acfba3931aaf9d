//! The tokio driver of hole punching (spec `hyperdht.md` §9.2 step 5, §9.3 steps 11–13, §9.4,
//! §9.5): punch sockets with their own small dht-rpc request/response layer (PEER_HOLEPUNCH and
//! NAT-sampling PINGs leave from the punch socket, so relays and samplers see its address), the
//! client's probe and punch rounds, and the server's hole-punch sessions. The decisions about
//! NAT kinds and probe schedules live in the sans-IO [`NatAnalyzer`] and [`Puncher`].

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant as TokioInstant;

use super::connect::{ConnectError, Servers};
use super::holepunch::{
    PunchAction, Puncher, RandomPunchLimiter, RemoteAddr, SecurePayload, TtlLadder, DEFAULT_TTL,
    LADDER_DATAGRAM, LADDER_MAX_WAIT, LOW_TTL, PASSIVE_WAIT, PROBE, UNKNOWN_FIREWALL_WAIT,
};
use super::messages::{
    commands, ErrorCode, Firewall, Holepunch, HolepunchPayload, Mode, RelayInfo,
};
use super::nat::NatAnalyzer;
use crate::crypto::random_array;
use crate::encoding::{from_slice, to_vec};
use crate::rpc::driver::DhtNode;
use crate::rpc::message::{Message, Request, Response};
use crate::udx::{StreamConfig as UdxConfig, UdxSocket, UdxStream};

/// `streams` index of the server's stream on the handshake socket (not a punch socket).
const HANDSHAKE_SOCKET: usize = usize::MAX;
/// Fresh punch sockets tried when the NAT analysis is unstable.
const MAX_REOPENS: usize = 3;
/// Tries of a relayed PEER_HOLEPUNCH request (1 s each).
const HOLEPUNCH_TRIES: u32 = 4;
/// Timeout of one request try.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// NAT sampling pings per pass.
const SAMPLE_PINGS: usize = 4;
/// Events queued per punch session before new ones are dropped.
const EVENT_QUEUE: usize = 1024;
/// PEER_HOLEPUNCH requests queued per server session before new ones are dropped.
pub(crate) const REQUEST_QUEUE: usize = 64;
/// Upper bound on a server hole-punch session.
const SERVER_SESSION_MAX: Duration = Duration::from_secs(60);

fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
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

/// Something a punch socket received that is not a response.
#[derive(Debug)]
pub(crate) enum SockEvent {
    /// A 1-byte probe on socket `.0` from `.1`.
    Probe(usize, SocketAddrV4),
    /// A PEER_HOLEPUNCH request on socket `.0` from `.1`.
    Request(usize, SocketAddrV4, Request),
}

type Pending = Arc<Mutex<HashMap<u16, oneshot::Sender<(SocketAddrV4, Response)>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A UDP socket used for punching, carrying its own dht-rpc requests.
#[derive(Debug, Clone)]
pub(crate) struct PunchSocket {
    pub(crate) socket: UdxSocket,
    pending: Pending,
}

impl PunchSocket {
    /// Binds a punch socket on `host` and starts its reader (which ends when `events` closes).
    pub(crate) async fn open(
        host: Ipv4Addr,
        index: usize,
        events: mpsc::Sender<SockEvent>,
    ) -> std::io::Result<Self> {
        let socket = UdxSocket::bind(SocketAddr::V4(SocketAddrV4::new(host, 0))).await?;
        let pending: Pending = Arc::default();
        tokio::spawn(read_loop(socket.clone(), index, pending.clone(), events));
        Ok(Self { socket, pending })
    }

    /// Sends a probe.
    pub(crate) fn probe(&self, dest: SocketAddrV4, ttl: u8) {
        self.socket
            .send_raw(SocketAddr::V4(dest), &PROBE, Some(ttl).filter(|t| *t != 64));
    }

    /// One dht-rpc request from this socket with `tries` tries of 1 s.
    pub(crate) async fn request(
        &self,
        dest: SocketAddrV4,
        command: u64,
        internal: bool,
        target: Option<[u8; 32]>,
        value: Option<Vec<u8>>,
        tries: u32,
    ) -> Option<(SocketAddrV4, Response)> {
        let mut tid = u16::from_le_bytes(random_array());
        {
            let p = lock(&self.pending);
            while p.contains_key(&tid) {
                tid = tid.wrapping_add(1);
            }
        }
        let data = Message::Request(Request {
            tid,
            to: dest,
            id: None,
            token: None,
            internal,
            command,
            target,
            value,
        })
        .encode();
        for _ in 0..tries {
            let (tx, rx) = oneshot::channel();
            lock(&self.pending).insert(tid, tx);
            self.socket.send_raw(SocketAddr::V4(dest), &data, None);
            if let Ok(Ok(r)) = tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
                return Some(r);
            }
        }
        lock(&self.pending).remove(&tid);
        None
    }

    /// Relays a request with someone else's tid from this socket (dht-rpc "relay").
    pub(crate) fn relay(
        &self,
        command: u64,
        tid: u16,
        dest: SocketAddrV4,
        target: [u8; 32],
        value: Vec<u8>,
    ) {
        let data = Message::Request(Request {
            tid,
            to: dest,
            id: None,
            token: None,
            internal: false,
            command,
            target: Some(target),
            value: Some(value),
        })
        .encode();
        self.socket.send_raw(SocketAddr::V4(dest), &data, None);
    }
}

async fn read_loop(
    socket: UdxSocket,
    index: usize,
    pending: Pending,
    events: mpsc::Sender<SockEvent>,
) {
    loop {
        tokio::select! {
            r = socket.recv_raw() => {
                let Some((from, data)) = r else { return };
                let Some(from) = v4(from) else { continue };
                if data.len() <= 1 {
                    // a full queue drops the probe (floods cannot grow memory)
                    if let Err(mpsc::error::TrySendError::Closed(_)) =
                        events.try_send(SockEvent::Probe(index, from))
                    {
                        return;
                    }
                    continue;
                }
                match Message::decode(&data) {
                    Ok(Message::Response(r)) => {
                        if let Some(w) = lock(&pending).remove(&r.tid) {
                            let _ = w.send((from, r));
                        }
                    }
                    Ok(Message::Request(q)) if !q.internal && q.command == commands::PEER_HOLEPUNCH => {
                        let sent = events.try_send(SockEvent::Request(index, from, q));
                        if let Err(mpsc::error::TrySendError::Closed(_)) = sent {
                            return;
                        }
                    }
                    _ => {}
                }
            }
            () = events.closed() => return,
        }
    }
}

/// Starts NAT sampling from `socket`: PINGs to up to 4 known nodes (another pass if fewer
/// answered); samples `(observed, referrer)` arrive on the returned channel, which closes when
/// sampling is over.
fn start_sampling(
    rpc: &DhtNode,
    socket: &PunchSocket,
) -> mpsc::UnboundedReceiver<(SocketAddrV4, SocketAddrV4)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut nodes = rpc.node_addresses();
    if nodes.len() >= 8 {
        nodes.drain(..5);
    }
    let socket = socket.clone();
    tokio::spawn(async move {
        let mut got = 0;
        for pass in nodes.chunks(SAMPLE_PINGS).take(2) {
            let mut tasks = Vec::new();
            for n in pass {
                let s = socket.clone();
                let n = *n;
                tasks.push(tokio::spawn(async move {
                    s.request(n, crate::rpc::message::commands::PING, true, None, None, 1)
                        .await
                }));
            }
            for t in tasks {
                if let Ok(Some((from, res))) = t.await {
                    got += 1;
                    if tx.send((res.to, from)).is_err() {
                        return;
                    }
                }
            }
            if got >= SAMPLE_PINGS {
                return;
            }
        }
    });
    rx
}

/// State shared by the client and server sides of one punch.
struct Session {
    rpc: DhtNode,
    target: [u8; 32],
    initiator: bool,
    secure: SecurePayload,
    sockets: Vec<PunchSocket>,
    events_tx: mpsc::Sender<SockEvent>,
    events: mpsc::Receiver<SockEvent>,
    nat: NatAnalyzer,
    samples: Option<mpsc::UnboundedReceiver<(SocketAddrV4, SocketAddrV4)>>,
    puncher: Option<Puncher>,
    remote_firewall: Firewall,
    remote_addrs: Vec<RemoteAddr>,
    remote_punching: bool,
    connected: Option<(usize, SocketAddrV4)>,
    gave_up: bool,
    /// PEER_HOLEPUNCH requests that arrived on a punch socket while busy.
    deferred: std::collections::VecDeque<(usize, SocketAddrV4, Request)>,
    /// Server: (local, remote) UDX ids; every punch socket that sees a probe gets a stream that
    /// binds to the first packet.
    accept: Option<(u32, u32)>,
    streams: Vec<(usize, UdxStream)>,
    /// IP TTL of our low-TTL probes (learned by [`Session::learn_low_ttl`]).
    low_ttl: u8,
    /// The peer's router refused a ladder probe: it accepts unsolicited datagrams.
    far_router_accepts: bool,
    /// When the session (and its NAT sampling) started.
    created: TokioInstant,
    /// Round trip of the first NAT-sampling PING (bounds the ladder's wait).
    rtt: Option<Duration>,
}

/// How often the ladder sockets are polled for refusals.
const LADDER_POLL: Duration = Duration::from_millis(2);

/// Sends the [`TtlLadder`] probes to `dest`: one throw-away socket per TTL, connected to `dest`
/// so that an ICMP port unreachable surfaces as `ConnectionRefused` on its next receive (no
/// `IP_RECVERR` needed). The sockets are non-blocking std sockets polled by
/// [`ladder_refusals`]; the ones that could not be set up are left out.
fn ladder_send(host: Ipv4Addr, dest: SocketAddrV4) -> Vec<(u8, std::net::UdpSocket)> {
    let mut out = Vec::new();
    for ttl in TtlLadder::ttls() {
        let Ok(sock) = std::net::UdpSocket::bind(SocketAddrV4::new(host, 0)) else {
            continue;
        };
        let ok = sock.set_nonblocking(true).is_ok()
            && sock.connect(dest).is_ok()
            && sock.set_ttl(u32::from(ttl)).is_ok()
            && sock.send(&LADDER_DATAGRAM).is_ok();
        if ok {
            out.push((ttl, sock));
        }
    }
    out
}

/// The TTLs among `socks` that were refused since the last call (each socket is dropped from the
/// list once it has answered).
fn ladder_refusals(socks: &mut Vec<(u8, std::net::UdpSocket)>) -> Vec<u8> {
    let mut refused = Vec::new();
    let mut buf = [0u8; 2];
    socks.retain(|(ttl, sock)| {
        // a few datagrams per poll at most (e.g. a responder echoing the probe: the peer itself
        // was reached, which is no refusal)
        for _ in 0..8 {
            match sock.recv(&mut buf) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    refused.push(*ttl);
                    return false;
                }
                Err(_) => return true,
            }
        }
        true
    });
    refused
}

impl Session {
    async fn new(
        rpc: &DhtNode,
        target: [u8; 32],
        initiator: bool,
        secure: SecurePayload,
        remote_firewall: Firewall,
    ) -> Result<Self, ConnectError> {
        let host = match rpc.local_addr() {
            SocketAddr::V4(a) => *a.ip(),
            SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let first = PunchSocket::open(host, 0, events_tx.clone())
            .await
            .map_err(|_| ConnectError::Destroyed)?;
        let samples = start_sampling(rpc, &first);
        Ok(Self {
            rpc: rpc.clone(),
            target,
            initiator,
            secure,
            sockets: vec![first],
            events_tx,
            events,
            nat: NatAnalyzer::new(!rpc.is_firewalled()),
            samples: Some(samples),
            puncher: None,
            remote_firewall,
            remote_addrs: Vec::new(),
            remote_punching: false,
            connected: None,
            gave_up: false,
            deferred: std::collections::VecDeque::new(),
            accept: None,
            streams: Vec::new(),
            low_ttl: LOW_TTL,
            far_router_accepts: false,
            created: TokioInstant::now(),
            rtt: None,
        })
    }

    /// Learns [`Session::low_ttl`] toward `dest` with a [`TtlLadder`]: bounded by the ladder's
    /// wait (at most [`LADDER_MAX_WAIT`], ~3 round trips to the DHT nodes being sampled, or the
    /// first refusal + grace). NAT samples that arrive meanwhile are recorded.
    async fn learn_low_ttl(&mut self, dest: SocketAddrV4) {
        let start = TokioInstant::now();
        let mut ladder = TtlLadder::new(start.into_std());
        let mut socks = ladder_send(self.host(), dest);
        if socks.is_empty() {
            return;
        }
        if let Some(rtt) = self.rtt {
            ladder.handle_rtt(rtt);
        }
        let mut samples = self.samples.take();
        let mut sampling = samples.is_some();
        let mut tick = tokio::time::interval(LADDER_POLL);
        let hard_end = start + LADDER_MAX_WAIT;
        loop {
            for ttl in ladder_refusals(&mut socks) {
                ladder.handle_refused(now(), ttl);
            }
            if ladder.is_done(now()) || TokioInstant::now() >= hard_end {
                break;
            }
            tokio::select! {
                smp = async {
                    match samples.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                }, if sampling => match smp {
                    Some((to, from)) => {
                        self.nat.add(to, from);
                        self.rtt.get_or_insert(self.created.elapsed());
                        ladder.handle_rtt(self.created.elapsed());
                    }
                    // sampling ended: `analyze` sees the closed channel later
                    None => sampling = false,
                },
                _ = tick.tick() => {}
            }
        }
        self.samples = samples;
        self.low_ttl = ladder.low_ttl();
        self.far_router_accepts = ladder.learned();
        tracing::debug!(
            %dest,
            refused = ?ladder.min_refused(),
            low_ttl = self.low_ttl,
            waited = ?start.elapsed(),
            "low-TTL probe TTL learned"
        );
    }

    fn host(&self) -> Ipv4Addr {
        match self.sockets[0].socket.local_addr() {
            SocketAddr::V4(a) => *a.ip(),
            SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        }
    }

    fn update_remote(
        &mut self,
        punching: bool,
        firewall: Firewall,
        addresses: Option<&[SocketAddrV4]>,
        verified: Option<Ipv4Addr>,
    ) {
        let old = std::mem::take(&mut self.remote_addrs);
        let was_verified = |h: Ipv4Addr| old.iter().any(|a| a.verified && *a.addr.ip() == h);
        self.remote_addrs = addresses
            .unwrap_or_default()
            .iter()
            .map(|a| RemoteAddr {
                addr: *a,
                verified: verified == Some(*a.ip()) || was_verified(*a.ip()),
            })
            .collect();
        self.remote_firewall = firewall;
        self.remote_punching = punching;
    }

    /// Server: the index (in `streams`) of a stream the client's first packet bound.
    fn bound_stream(&self) -> Option<usize> {
        self.streams.iter().position(|(_, x)| x.remote().is_some())
    }

    /// Whether a wait must end: (initiator) a probe connected us, a server stream bound, or
    /// the strategy gave up.
    fn interrupted(&self) -> bool {
        (self.connected.is_some() && self.initiator)
            || self.gave_up
            || self.bound_stream().is_some()
    }

    /// Feeds probe events and the puncher's timer; returns when `fut` completes, or `Err(())`
    /// when [`Session::interrupted`] (a server hands out its connection at the first packet,
    /// even while it is still waiting for its NAT analysis).
    async fn drive<F: std::future::Future>(&mut self, fut: F) -> Result<F::Output, ()> {
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            if self.interrupted() {
                return Err(());
            }
            self.run_actions().await;
            if self.interrupted() {
                return Err(());
            }
            let timer = self.puncher.as_ref().and_then(Puncher::poll_timeout);
            let sleep = tokio::time::sleep_until(timer.map_or_else(
                || TokioInstant::now() + Duration::from_secs(3600),
                TokioInstant::from_std,
            ));
            tokio::select! {
                biased;
                ev = self.events.recv() => {
                    if let Some(ev) = ev {
                        self.on_event(ev);
                    }
                }
                out = &mut fut => return Ok(out),
                () = sleep, if timer.is_some() => {
                    if let Some(p) = self.puncher.as_mut() {
                        p.handle_timeout(now());
                    }
                }
                _ = tick.tick(), if self.accept.is_some() => {}
            }
        }
    }

    fn on_event(&mut self, ev: SockEvent) {
        match ev {
            SockEvent::Probe(socket, from) => {
                tracing::trace!(socket, %from, "probe received");
                self.ensure_stream(socket);
                if let Some(p) = self.puncher.as_mut() {
                    p.handle_probe(now(), socket, from);
                } else if self.initiator {
                    // fast open: the server's probe arrived before our punch round
                    if self.connected.is_none() {
                        self.connected = Some((socket, from));
                    }
                } else {
                    // responder without a strategy yet: echo
                    if let Some(s) = self.sockets.get(socket) {
                        s.probe(from, DEFAULT_TTL);
                    }
                }
            }
            SockEvent::Request(i, from, q) => self.deferred.push_back((i, from, q)),
        }
    }

    fn ensure_stream(&mut self, socket: usize) {
        let Some((local, remote)) = self.accept else {
            return;
        };
        if self.streams.iter().any(|(i, _)| *i == socket) {
            return;
        }
        let Some(sock) = self.sockets.get(socket) else {
            return;
        };
        if let Ok(st) = sock.socket.create_stream(local, UdxConfig::default()) {
            if st.accept_first_packet(remote).is_ok() {
                self.streams.push((socket, st));
            }
        }
    }

    async fn run_actions(&mut self) {
        loop {
            let Some(act) = self.puncher.as_mut().and_then(Puncher::poll_action) else {
                return;
            };
            match act {
                PunchAction::Probe { socket, dest, ttl } => {
                    if let Some(s) = self.sockets.get(socket) {
                        s.probe(dest, ttl);
                    }
                }
                PunchAction::OpenSockets(n) => {
                    let host = self.host();
                    let mut opened = 0;
                    for _ in 0..n {
                        let idx = self.sockets.len();
                        match PunchSocket::open(host, idx, self.events_tx.clone()).await {
                            Ok(s) => {
                                self.sockets.push(s);
                                // server: the client may answer a probe of any socket, so every
                                // socket accepts the first UDX packet (hyperdht: any socket)
                                self.ensure_stream(idx);
                                opened += 1;
                            }
                            Err(_) => break,
                        }
                    }
                    if let Some(p) = self.puncher.as_mut() {
                        p.handle_sockets_opened(now(), opened);
                    }
                }
                PunchAction::Connected { socket, from } => {
                    self.connected = Some((socket, from));
                }
                PunchAction::GaveUp => self.gave_up = true,
            }
        }
    }

    /// Waits (feeding probes) until the NAT analysis is done or sampling ended.
    async fn analyze(&mut self) -> Result<(), ()> {
        while !self.nat.done() {
            let Some(mut rx) = self.samples.take() else {
                self.nat.give_up();
                break;
            };
            let next = self.drive(async { (rx.recv().await, rx) }).await?;
            match next {
                (Some((to, from)), rx) => {
                    self.nat.add(to, from);
                    self.rtt.get_or_insert(self.created.elapsed());
                    self.samples = Some(rx);
                }
                (None, _) => self.nat.give_up(),
            }
        }
        Ok(())
    }

    /// hyperdht's `analyze(allowReopen)` after an unstable result: up to [`MAX_REOPENS`] times,
    /// replace the first punch socket with a fresh one and resample. Returns whether the NAT
    /// now looks consistent.
    async fn reopen(&mut self) -> Result<bool, ()> {
        let mut i = 0;
        while self.unstable() && i < MAX_REOPENS && self.puncher.is_none() {
            i += 1;
            let host = self.host();
            let Ok(fresh) = PunchSocket::open(host, 0, self.events_tx.clone()).await else {
                break;
            };
            let old = std::mem::replace(&mut self.sockets[0], fresh);
            old.socket.close();
            self.streams.retain(|(idx, _)| *idx != 0);
            self.ensure_stream(0);
            self.nat = NatAnalyzer::new(!self.rpc.is_firewalled());
            self.samples = Some(start_sampling(&self.rpc, &self.sockets[0]));
            tracing::debug!(attempt = i, local = %self.sockets[0].socket.local_addr(), "reopened the punch socket");
            self.analyze().await?;
        }
        Ok(super::nat::coerce(self.nat.firewall()) == Firewall::CONSISTENT)
    }

    fn unstable(&self) -> bool {
        let fw = self.nat.firewall();
        fw == Firewall::UNKNOWN
            || (fw >= Firewall::RANDOM && self.remote_firewall >= Firewall::RANDOM)
    }

    fn payload(&self, round: u64, punching: bool) -> HolepunchPayload {
        HolepunchPayload {
            error: ErrorCode::NONE,
            firewall: self.nat.firewall(),
            round,
            connected: false,
            punching,
            addresses: self.nat.addresses(),
            ..HolepunchPayload::default()
        }
    }

    fn abort_payload(round: u64, error: ErrorCode) -> HolepunchPayload {
        HolepunchPayload {
            error,
            firewall: Firewall::UNKNOWN,
            round,
            ..HolepunchPayload::default()
        }
    }

    fn start_puncher(&mut self) -> bool {
        let seed = u64::from_le_bytes(random_array());
        match Puncher::start(
            now(),
            self.initiator,
            self.nat.firewall(),
            self.remote_firewall,
            &self.remote_addrs,
            seed,
        )
        .map(|p| {
            let p = p.with_low_ttl(self.low_ttl);
            if self.far_router_accepts {
                p.keep_low_ttl()
            } else {
                p
            }
        }) {
            Some(p) => {
                tracing::debug!(
                    initiator = self.initiator,
                    local = ?self.nat.firewall(),
                    remote = ?self.remote_firewall,
                    addrs = ?self.remote_addrs,
                    "punching"
                );
                self.puncher = Some(p);
                true
            }
            None => false,
        }
    }
}

/// What the client learned from the handshake, for [`client_holepunch`].
#[derive(Debug, Clone)]
pub(crate) struct ClientPunchInput {
    pub(crate) target: [u8; 32],
    pub(crate) holepunch_id: u64,
    pub(crate) relays: Vec<RelayInfo>,
    pub(crate) handshake_relay: SocketAddrV4,
    pub(crate) server_address: SocketAddrV4,
    pub(crate) server_firewall: Firewall,
    pub(crate) secret: [u8; 32],
}

/// A punched path: the socket that won and the peer's address on it.
pub(crate) type Punched = (UdxSocket, SocketAddrV4);

struct Reply {
    from: SocketAddrV4,
    to: SocketAddrV4,
    peer_address: SocketAddrV4,
    payload: HolepunchPayload,
}

#[allow(clippy::too_many_arguments)]
async fn update_holepunch(
    socket: PunchSocket,
    secure: SecurePayload,
    target: [u8; 32],
    id: u64,
    peer: SocketAddrV4,
    relay: SocketAddrV4,
    payload: HolepunchPayload,
    tries: u32,
) -> Result<Reply, ConnectError> {
    let value = to_vec(&Holepunch {
        mode: Mode::FROM_CLIENT,
        id,
        payload: secure.encrypt(&payload, random_array()),
        peer_address: Some(peer),
    });
    let (from, res) = socket
        .request(
            relay,
            commands::PEER_HOLEPUNCH,
            false,
            Some(target),
            Some(value),
            tries,
        )
        .await
        .ok_or(ConnectError::RequestTimeout)?;
    let hp = res
        .value
        .as_deref()
        .and_then(|v| from_slice::<Holepunch>(v).ok())
        .ok_or(ConnectError::BadHolepunchReply)?;
    if hp.mode != Mode::REPLY || from != relay {
        return Err(ConnectError::BadHolepunchReply);
    }
    let payload = secure
        .decrypt(&hp.payload)
        .ok_or(ConnectError::HolepunchInvalid)?;
    Ok(Reply {
        from,
        to: res.to,
        peer_address: hp.peer_address.unwrap_or(relay),
        payload,
    })
}

/// The client's probe round and punch round (§9.5). Returns the punched socket and the
/// server's address on it.
pub(crate) async fn client_holepunch(
    rpc: &DhtNode,
    servers: &Servers,
    input: ClientPunchInput,
) -> Result<Punched, ConnectError> {
    let local_secret = random_array();
    let secure = SecurePayload::new(&input.secret, local_secret);
    let mut s = Session::new(rpc, input.target, true, secure, input.server_firewall).await?;
    let server_relay = input
        .relays
        .iter()
        .find(|r| r.relay_address == input.handshake_relay)
        .or_else(|| input.relays.first())
        .copied()
        .ok_or(ConnectError::CannotHolepunch)?;
    let mut server_address = input.server_address;
    let mut round = 0u64;
    let result = client_rounds(
        &mut s,
        &servers.limiter,
        &input,
        server_relay,
        &mut server_address,
        &mut round,
    )
    .await;
    match result {
        Ok(()) | Err(None) => {}
        Err(Some(e)) => {
            // tell the server (best effort) unless it aborted itself
            if !matches!(
                e,
                ConnectError::RemoteAborted(_) | ConnectError::RequestTimeout
            ) {
                let p = Session::abort_payload(round, ErrorCode::ABORTED);
                let sock = s.sockets[0].clone();
                let _ = update_holepunch(
                    sock,
                    s.secure.clone(),
                    input.target,
                    input.holepunch_id,
                    server_relay.peer_address,
                    server_relay.relay_address,
                    p,
                    1,
                )
                .await;
            }
            return Err(e);
        }
    }
    // punching (or fast-opened): wait for the strategy
    let random = s.puncher.as_ref().is_some_and(Puncher::is_random);
    if random {
        lock(&servers.limiter).begin();
    }
    while s.connected.is_none() && !s.gave_up && s.puncher.is_some() {
        let _ = s.drive(std::future::pending::<()>()).await;
    }
    if random {
        lock(&servers.limiter).end(now());
    }
    let Some((idx, from)) = s.connected else {
        return Err(ConnectError::HolepunchAborted);
    };
    tracing::debug!(%from, socket = idx, "hole punched");
    // keep the winning socket, close the others
    let winner = s.sockets[idx].socket.clone();
    for (i, sock) in s.sockets.iter().enumerate() {
        if i != idx {
            sock.socket.close();
        }
    }
    Ok((winner, from))
}

/// `Err(None)`: connected early (fast open); `Err(Some(e))`: failed.
#[allow(clippy::too_many_lines)]
async fn client_rounds(
    s: &mut Session,
    limiter: &Mutex<RandomPunchLimiter>,
    input: &ClientPunchInput,
    server_relay: RelayInfo,
    server_address: &mut SocketAddrV4,
    round: &mut u64,
) -> Result<(), Option<ConnectError>> {
    let mut retry = true;
    let mut reopened = false;
    // the TTL that opens our NAT(s) without reaching the server's router (see `TtlLadder`)
    s.learn_low_ttl(*server_address).await;
    let (token, peer_address) = loop {
        // probe round
        s.sockets[0].probe(*server_address, s.low_ttl);
        let mut p = s.payload(*round, false);
        p.remote_address = Some(*server_address);
        *round += 1;
        let fut = update_holepunch(
            s.sockets[0].clone(),
            s.secure.clone(),
            input.target,
            input.holepunch_id,
            server_relay.peer_address,
            server_relay.relay_address,
            p,
            HOLEPUNCH_TRIES,
        );
        let reply = s.drive(fut).await.map_err(|()| None)?.map_err(Some)?;
        tracing::debug!(
            "client probe reply {:?} peer {}",
            reply.payload,
            reply.peer_address
        );
        if reply.payload.error != ErrorCode::NONE {
            return Err(Some(ConnectError::RemoteAborted(reply.payload.error.0)));
        }
        let echoed = false; // the probe round carries no token of ours
        s.update_remote(
            reply.payload.punching,
            reply.payload.firewall,
            reply.payload.addresses.as_deref(),
            echoed.then_some(*server_address.ip()),
        );
        s.nat.add(reply.to, reply.from);
        if s.remote_firewall == Firewall::UNKNOWN {
            s.drive(tokio::time::sleep(UNKNOWN_FIREWALL_WAIT))
                .await
                .map_err(|()| None)?;
        }
        s.analyze().await.map_err(|()| None)?;
        if s.unstable() && !reopened && s.reopen().await.map_err(|()| None)? {
            reopened = true;
            // a fresh socket looks stable: run the probe round again from it
            retry = false;
            continue;
        }
        let token = reply.payload.token;
        if (s.remote_firewall == Firewall::UNKNOWN || token.is_none()) && retry {
            retry = false;
            continue;
        }
        if s.remote_firewall == Firewall::UNKNOWN || s.nat.firewall() == Firewall::UNKNOWN {
            return Err(Some(ConnectError::HolepunchProbeTimeout));
        }
        if s.remote_firewall >= Firewall::RANDOM && s.nat.firewall() >= Firewall::RANDOM {
            return Err(Some(ConnectError::HolepunchDoubleRandomizedNats));
        }
        break (token, reply.peer_address);
    };
    if server_relay.relay_address == input.handshake_relay && peer_address != *server_address {
        *server_address = peer_address;
        s.sockets[0].probe(*server_address, s.low_ttl);
    }
    // punch round
    s.nat.freeze();
    let random = s.remote_firewall >= Firewall::RANDOM || s.nat.firewall() >= Firewall::RANDOM;
    if random && !lock(limiter).allows(now()) {
        return Err(Some(ConnectError::HolepunchAborted));
    }
    let mut p = s.payload(*round, true);
    *round += 1;
    p.token = Some(s.secure.token(server_address));
    p.remote_token = token;
    let fut = update_holepunch(
        s.sockets[0].clone(),
        s.secure.clone(),
        input.target,
        input.holepunch_id,
        *server_address,
        input.handshake_relay,
        p.clone(),
        HOLEPUNCH_TRIES,
    );
    let reply = s.drive(fut).await.map_err(|()| None)?.map_err(Some)?;
    if reply.payload.error == ErrorCode::TRY_LATER {
        return Err(Some(ConnectError::HolepunchAborted));
    }
    if reply.payload.error != ErrorCode::NONE {
        return Err(Some(ConnectError::RemoteAborted(reply.payload.error.0)));
    }
    let echoed = reply.payload.remote_token.is_some() && reply.payload.remote_token == p.token;
    s.update_remote(
        reply.payload.punching,
        reply.payload.firewall,
        reply.payload.addresses.as_deref(),
        echoed.then_some(*server_address.ip()),
    );
    if !s.remote_punching {
        return Err(Some(ConnectError::RemoteNotHolepunching));
    }
    if s.connected.is_some() {
        return Err(None);
    }
    if !s.start_puncher() {
        return Err(Some(ConnectError::RemoteNotHolepunchable));
    }
    Ok(())
}

/// A PEER_HOLEPUNCH request for one of our server's hole-punch slots.
#[derive(Debug)]
pub(crate) struct ServerHpRequest {
    /// The relay's tid (our answer is relayed with it).
    pub(crate) tid: u16,
    /// The relay that forwarded it.
    pub(crate) relay: SocketAddrV4,
    /// Our address as the relay saw it.
    pub(crate) to: SocketAddrV4,
    /// The decoded message (mode FROM_RELAY).
    pub(crate) hp: Holepunch,
    /// Arrived on the punch socket (then it is also a NAT sample).
    pub(crate) on_punch_socket: bool,
}

/// What the router hands to a server hole-punch session.
#[derive(Debug)]
pub(crate) enum SessionInput {
    /// A PEER_HOLEPUNCH for its slot.
    Holepunch(ServerHpRequest),
    /// A repeated handshake (same first message via another relay): relay the same reply from
    /// the punch socket, so every relay reports the punch socket's address.
    HandshakeReply {
        /// The relay's tid.
        tid: u16,
        /// Where to relay it.
        relay: SocketAddrV4,
        /// The encoded FROM_SERVER handshake.
        value: Vec<u8>,
    },
}

/// Everything a server hole-punch session needs, prepared by the handshake handler.
pub(crate) struct ServerPunchPlan {
    pub(crate) target: [u8; 32],
    pub(crate) slot: usize,
    pub(crate) requests: mpsc::Receiver<SessionInput>,
    pub(crate) secret: [u8; 32],
    pub(crate) remote_firewall: Firewall,
    /// The stream on the handshake socket, already waiting for its first packet.
    pub(crate) main_stream: UdxStream,
    pub(crate) remote_udx_id: u32,
    /// Delivers the connection built on the stream that bound first.
    pub(crate) deliver: Box<dyn FnOnce(UdxStream) + Send>,
    /// The handshake reply to relay from the punch socket: (tid, relay, encoded value).
    pub(crate) handshake_reply: Option<(u16, SocketAddrV4, Vec<u8>)>,
}

impl std::fmt::Debug for ServerPunchPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPunchPlan")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

struct ServerState {
    round: u64,
    done: bool,
    random: bool,
    /// The external address of a fresh punch socket advertised first (see [`fresh_socket`]).
    fresh: Option<SocketAddrV4>,
    /// [`fresh_socket`] was tried.
    fresh_tried: bool,
}

/// Server, consistent x consistent, when the client starts punching (the fast-open probe did not
/// connect it): if our router accepts unsolicited datagrams, the client's own first probe
/// (hyperdht's TTL 5) may already have reached it and left a conntrack entry there for (client
/// address -> our punch socket's address); our packets to the client from that socket then leave
/// from another port, and the probes of both sides miss. We cannot see our own router's
/// conntrack, so always: open a fresh punch socket, send the client a low-TTL probe from it (a mapping in our NAT
/// toward the client, that does not reach the client's router), learn its external address with
/// one PING to `relay`, and advertise that address first: the client probes it, the probe passes
/// our NAT into the fresh socket, and our echo goes back through the client's mapping. Nothing
/// full-TTL is sent from the fresh socket before the client's probe arrives (that would leave the
/// same kind of entry in the client's router). Returns the fresh socket's external address.
async fn fresh_socket(
    s: &mut Session,
    peer: SocketAddrV4,
    relay: SocketAddrV4,
) -> Option<SocketAddrV4> {
    // the TTL matters when the client's router accepts; when nothing was learned (it drops, or
    // is more than 6 hops away) hyperdht's TTL 5 is harmless
    s.learn_low_ttl(peer).await;
    let idx = s.sockets.len();
    let sock = PunchSocket::open(s.host(), idx, s.events_tx.clone())
        .await
        .ok()?;
    s.sockets.push(sock.clone());
    s.ensure_stream(idx);
    sock.probe(peer, s.low_ttl);
    let (_, res) = sock
        .request(
            relay,
            crate::rpc::message::commands::PING,
            true,
            None,
            None,
            1,
        )
        .await?;
    tracing::debug!(fresh = %res.to, low_ttl = s.low_ttl, "server: fresh punch socket for a client behind an accepting router");
    Some(res.to)
}

/// Runs one server hole-punch session (§9.3 step 12, §9.5 server side) until a stream binds,
/// the punch fails, or the 10 s no-progress timer fires.
#[allow(clippy::too_many_lines)]
pub(crate) async fn server_session(rpc: DhtNode, servers: Arc<Servers>, mut plan: ServerPunchPlan) {
    let secure = SecurePayload::new(&plan.secret, random_array());
    let Ok(mut s) = Session::new(&rpc, plan.target, false, secure, plan.remote_firewall).await
    else {
        servers.free_slot(plan.slot);
        return;
    };
    s.accept = Some((plan.main_stream.id(), plan.remote_udx_id));
    s.streams.push((HANDSHAKE_SOCKET, plan.main_stream));
    s.ensure_stream(0);
    if let Some((tid, relay, value)) = plan.handshake_reply.take() {
        s.sockets[0].relay(commands::PEER_HANDSHAKE, tid, relay, plan.target, value);
    }
    let started = TokioInstant::now();
    tracing::debug!(
        "server session slot {} punch socket {}",
        plan.slot,
        s.sockets[0].socket.local_addr()
    );
    let mut st = ServerState {
        round: 0,
        done: false,
        random: false,
        fresh: None,
        fresh_tried: false,
    };
    let mut winner: Option<(Option<usize>, UdxStream)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while !st.done {
        if let Some(i) = s.bound_stream() {
            let (idx, x) = s.streams.swap_remove(i);
            winner = Some(((idx != HANDSHAKE_SOCKET).then_some(idx), x));
            break;
        }
        let elapsed = started.elapsed();
        if s.gave_up
            || (s.puncher.is_none() && elapsed > PASSIVE_WAIT)
            || elapsed > SERVER_SESSION_MAX
        {
            break;
        }
        if let Some((i, from, q)) = s.deferred.pop_front() {
            if let Some(hp) = q
                .value
                .as_deref()
                .and_then(|v| from_slice::<Holepunch>(v).ok())
            {
                if hp.mode == Mode::FROM_RELAY && hp.id == plan.slot as u64 {
                    let req = ServerHpRequest {
                        tid: q.tid,
                        relay: from,
                        to: q.to,
                        hp,
                        on_punch_socket: i == 0,
                    };
                    server_on_holepunch(&mut s, &servers, &mut st, req).await;
                }
            }
            continue;
        }
        s.run_actions().await;
        let timer = s.puncher.as_ref().and_then(Puncher::poll_timeout);
        let sleep = tokio::time::sleep_until(timer.map_or_else(
            || TokioInstant::now() + Duration::from_secs(3600),
            TokioInstant::from_std,
        ));
        tokio::select! {
            r = plan.requests.recv() => match r {
                Some(SessionInput::Holepunch(req)) => server_on_holepunch(&mut s, &servers, &mut st, req).await,
                Some(SessionInput::HandshakeReply { tid, relay, value }) => {
                    s.sockets[0].relay(commands::PEER_HANDSHAKE, tid, relay, plan.target, value);
                }
                None => break,
            },
            ev = s.events.recv() => if let Some(ev) = ev { s.on_event(ev) },
            () = sleep, if timer.is_some() => {
                if let Some(p) = s.puncher.as_mut() {
                    p.handle_timeout(now());
                }
            }
            _ = tick.tick() => {}
        }
    }
    if let Some(p) = s.puncher.as_mut() {
        p.stop();
    }
    if st.random {
        lock(&servers.limiter).end(now());
    }
    servers.free_slot(plan.slot);
    let keep = winner.as_ref().and_then(|(i, _)| *i);
    for (i, sock) in s.sockets.iter().enumerate() {
        if Some(i) != keep {
            sock.socket.close();
        }
    }
    tracing::debug!(
        "server session end: winner {:?} gave_up {} done {} puncher {} elapsed {:?}",
        winner.as_ref().map(|w| w.0),
        s.gave_up,
        st.done,
        s.puncher.is_some(),
        started.elapsed()
    );
    if let Some((idx, stream)) = winner {
        tracing::debug!(punched = idx.is_some(), "server stream bound");
        (plan.deliver)(stream);
    } else {
        tracing::debug!("server hole punch ended without a connection");
    }
}

/// Server: the client asked to punch (§9.5 punch round step 3): the limiter, the low TTL
/// (birthday) or a fresh socket (consistent x consistent), then the strategy. `Err` = the error
/// to abort with.
async fn server_start_punch(
    s: &mut Session,
    servers: &Servers,
    st: &mut ServerState,
    peer: SocketAddrV4,
    relay: SocketAddrV4,
) -> Result<(), ErrorCode> {
    let fw = s.nat.firewall();
    let local = super::nat::coerce(fw);
    let remote = super::nat::coerce(s.remote_firewall);
    let random = s.remote_firewall >= Firewall::RANDOM || fw >= Firewall::RANDOM;
    if random && !lock(&servers.limiter).allows(now()) {
        return Err(ErrorCode::TRY_LATER);
    }
    if local == Firewall::CONSISTENT && remote == Firewall::CONSISTENT && !st.fresh_tried {
        st.fresh_tried = true;
        st.fresh = fresh_socket(s, peer, relay).await;
    }
    if local >= Firewall::RANDOM && remote == Firewall::CONSISTENT {
        if let Some(dest) = s.remote_addrs.iter().find(|a| a.verified).map(|a| a.addr) {
            // our birthday sockets' low-TTL probes must not reach the client's router
            s.learn_low_ttl(dest).await;
        }
    }
    if !s.start_puncher() {
        return Err(ErrorCode::ABORTED);
    }
    if random {
        lock(&servers.limiter).begin();
        st.random = true;
    }
    Ok(())
}

/// Our NAT addresses, with a fresh socket's address first.
fn advertised(
    addrs: Option<Vec<SocketAddrV4>>,
    fresh: Option<SocketAddrV4>,
) -> Option<Vec<SocketAddrV4>> {
    let Some(f) = fresh else { return addrs };
    let mut out = vec![f];
    out.extend(addrs.unwrap_or_default().into_iter().filter(|a| *a != f));
    Some(out)
}

fn server_reply(s: &Session, target: [u8; 32], req: &ServerHpRequest, payload: &HolepunchPayload) {
    let Some(peer) = req.hp.peer_address else {
        return;
    };
    let value = to_vec(&Holepunch {
        mode: Mode::FROM_SERVER,
        id: 0,
        payload: s.secure.encrypt(payload, random_array()),
        peer_address: Some(peer),
    });
    s.sockets[0].relay(commands::PEER_HOLEPUNCH, req.tid, req.relay, target, value);
}

async fn server_on_holepunch(
    s: &mut Session,
    servers: &Servers,
    st: &mut ServerState,
    req: ServerHpRequest,
) {
    let target = s.target;
    let Some(peer) = req.hp.peer_address else {
        return;
    };
    let Some(payload) = s.secure.decrypt(&req.hp.payload) else {
        tracing::debug!("server: undecryptable");
        return;
    };
    tracing::debug!(
        "server got {:?} via {} on_punch {}",
        payload,
        req.relay,
        req.on_punch_socket
    );
    let abort = |s: &Session, st: &mut ServerState, error: ErrorCode| {
        server_reply(s, target, &req, &Session::abort_payload(st.round, error));
        st.done = true;
    };
    if payload.error != ErrorCode::NONE {
        st.round = st.round.max(payload.round);
        tracing::debug!(error = payload.error.0, "client aborted the hole punch");
        abort(s, st, ErrorCode::ABORTED);
        return;
    }
    let is_server_relay = servers.is_relay(&target, req.relay);
    let token = s.secure.token(&peer);
    let echoed = is_server_relay && payload.remote_token == Some(token);
    if req.on_punch_socket {
        s.nat.add(req.to, req.relay);
    }
    if payload.round >= st.round {
        st.round = payload.round;
        s.update_remote(
            payload.punching,
            payload.firewall,
            payload.addresses.as_deref(),
            echoed.then_some(*peer.ip()),
        );
    }
    if s.analyze().await.is_err() {
        return; // a stream bound meanwhile: the session hands out the connection
    }
    if !s.remote_punching && s.unstable() {
        match s.reopen().await {
            Err(()) => return,
            Ok(false) => {
                abort(s, st, ErrorCode::ABORTED);
                return;
            }
            Ok(true) => {}
        }
    }
    let fw = s.nat.firewall();
    let consistent = fw == Firewall::OPEN || fw == Firewall::CONSISTENT;
    if consistent
        && payload
            .remote_address
            .is_some_and(|r| s.nat.addresses().unwrap_or_default().contains(&r))
    {
        // fast open
        s.sockets[0].probe(peer, DEFAULT_TTL);
    }
    if s.remote_punching && s.puncher.is_none() {
        if let Err(e) = server_start_punch(s, servers, st, peer, req.relay).await {
            abort(s, st, e);
            return;
        }
    }
    if fw != Firewall::UNKNOWN {
        s.nat.freeze();
    }
    let reply = HolepunchPayload {
        error: ErrorCode::NONE,
        firewall: fw,
        round: st.round,
        connected: false,
        punching: s.puncher.is_some(),
        addresses: advertised(s.nat.addresses(), st.fresh),
        remote_address: None,
        token: is_server_relay.then_some(token),
        remote_token: payload.token,
    };
    tracing::debug!("server reply {:?}", reply);
    server_reply(s, target, &req, &reply);
}
