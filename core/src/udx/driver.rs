//! The tokio driver: one UDP socket carrying UDX streams and raw datagrams on the same port.
//!
//! A [`UdxSocket`] owns a task that does all I/O and timing for the sans-IO [`Socket`]; stream
//! handles ([`UdxStream`]) share its state behind a mutex and are `AsyncRead + AsyncWrite` with
//! back-pressure. Datagrams that are not for a known stream (DHT messages, hole-punch probes)
//! come out of [`UdxSocket::recv_raw`].

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};

use super::{Datagram, Remote, Socket, SocketEvent, StreamConfig, StreamEvent, UdxError};

/// Bytes a stream may hold unacknowledged before writes wait.
const WRITE_HIGH_WATER: usize = 4 * 1024 * 1024;
/// Writers are woken again below this.
const WRITE_LOW_WATER: usize = 2 * 1024 * 1024;
/// Datagrams read or written per driver round before yielding to the other direction.
const BATCH: usize = 64;
/// Raw datagrams queued for the consumer before new ones are dropped.
const RAW_QUEUE: usize = 4096;
/// Unreliable stream messages queued per stream before new ones are dropped.
const MESSAGE_QUEUE: usize = 1024;
/// Default IP TTL (as udx-native).
const DEFAULT_TTL: u32 = 64;
/// Bytes per receive buffer: one GRO batch (UDP payloads coalesce up to 64 KiB).
const INBOX_BUF: usize = 65_536;
/// Send buffers kept for reuse between driver rounds while sending.
const SPARE_SEGMENTS: usize = 8;

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

#[derive(Debug, Default)]
struct Slot {
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    waiters: Vec<Waker>,
    messages: VecDeque<Vec<u8>>,
    eof: bool,
    finished: bool,
    closed: Option<Result<(), UdxError>>,
    handle_alive: bool,
}

impl Slot {
    fn wake_all(&mut self) {
        for w in [self.read_waker.take(), self.write_waker.take()]
            .into_iter()
            .flatten()
        {
            w.wake();
        }
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }
}

#[derive(Debug)]
struct State {
    mux: Socket,
    slots: HashMap<u32, Slot>,
    socket_handles: usize,
    closing: bool,
    stopped: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake_driver: Notify,
    io: UdpSocket,
    local_addr: SocketAddr,
    raw_tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    raw_rx: tokio::sync::Mutex<mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the protocol state half-updated in a way
        // that matters more than stopping; keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A bound UDP socket running UDX.
#[derive(Debug)]
pub struct UdxSocket {
    shared: Arc<Shared>,
}

impl Clone for UdxSocket {
    fn clone(&self) -> Self {
        self.shared.lock().socket_handles += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for UdxSocket {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.socket_handles -= 1;
        if st.socket_handles == 0 {
            st.closing = true;
            drop(st);
            self.shared.wake_driver.notify_one();
        }
    }
}

fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

impl UdxSocket {
    /// Binds a UDP socket (IPv4, IPv6, or `[::]` dual-stack) and starts its driver task on the
    /// current tokio runtime.
    #[allow(clippy::unused_async)] // async like tokio's bind, so binding may await in the future
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let domain = socket2::Domain::for_address(addr);
        let sock =
            socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        if addr.is_ipv6() {
            let _ = sock.set_only_v6(false);
        }
        let _ = sock.set_send_buffer_size(1 << 21);
        for size in [1 << 22, 1 << 21, 1 << 20, 1 << 19] {
            if sock.set_recv_buffer_size(size).is_ok() {
                break;
            }
        }
        sock.set_nonblocking(true)?;
        sock.bind(&addr.into())?;
        let io = UdpSocket::from_std(sock.into())?;
        let local_addr = io.local_addr()?;
        let (raw_tx, raw_rx) = mpsc::channel(RAW_QUEUE);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mux: Socket::new(),
                slots: HashMap::new(),
                socket_handles: 1,
                closing: false,
                stopped: false,
            }),
            wake_driver: Notify::new(),
            io,
            local_addr,
            raw_tx,
            raw_rx: tokio::sync::Mutex::new(raw_rx),
        });
        tokio::spawn(drive(shared.clone()));
        tracing::debug!(%local_addr, "udx socket bound");
        Ok(Self { shared })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Creates a stream with local id `id` (unique on this socket).
    pub fn create_stream(&self, id: u32, cfg: StreamConfig) -> Result<UdxStream, UdxError> {
        let mut st = self.shared.lock();
        if st.stopped {
            return Err(UdxError::Destroyed);
        }
        st.mux.create_stream(now(), id, cfg)?;
        st.slots.insert(
            id,
            Slot {
                handle_alive: true,
                ..Slot::default()
            },
        );
        Ok(UdxStream {
            shared: self.shared.clone(),
            id,
        })
    }

    /// Whether a stream id is in use (including streams lingering in TIME_WAIT).
    pub fn has_stream(&self, id: u32) -> bool {
        self.shared.lock().mux.has_stream(id)
    }

    /// Joins two streams of this socket as a blind relay: every packet arriving for one goes to
    /// the other's peer with the other's peer id (only the id is rewritten). Each stream is
    /// either connected beforehand ([`UdxStream::connect`]) or connects to the source of its
    /// first packet with the peer id given to [`UdxStream::accept_first_packet`]; relay streams
    /// never send on their own.
    pub fn relay(&self, a: &UdxStream, b: &UdxStream) -> Result<(), UdxError> {
        if !Arc::ptr_eq(&self.shared, &a.shared) || !Arc::ptr_eq(&self.shared, &b.shared) {
            return Err(UdxError::UnknownStream(a.id));
        }
        self.shared.lock().mux.relay(a.id, b.id)
    }

    /// Sends a raw datagram (no UDX header), with a one-off IP TTL if given.
    pub fn send_raw(&self, dest: SocketAddr, data: &[u8], ttl: Option<u8>) {
        self.shared.lock().mux.send_raw(dest, data.to_vec(), ttl);
        self.shared.wake_driver.notify_one();
    }

    /// The next datagram that was not for a stream: `None` once the socket stopped.
    pub async fn recv_raw(&self) -> Option<(SocketAddr, Vec<u8>)> {
        self.shared.raw_rx.lock().await.recv().await
    }

    /// Closes the socket: streams are destroyed and the driver stops.
    pub fn close(&self) {
        let mut st = self.shared.lock();
        st.closing = true;
        let ids: Vec<u32> = st.slots.keys().copied().collect();
        for id in ids {
            if let Some(s) = st.mux.stream_mut(id) {
                s.destroy();
            }
        }
        drop(st);
        self.shared.wake_driver.notify_one();
    }
}

async fn send_one(io: &UdpSocket, dest: SocketAddr, ttl: Option<u8>, data: &[u8]) {
    let dest = match (io.local_addr(), dest) {
        (Ok(SocketAddr::V6(_)), SocketAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => dest,
    };
    let sock = socket2::SockRef::from(io);
    if let Some(ttl) = ttl {
        let _ = if dest.is_ipv6() {
            sock.set_unicast_hops_v6(u32::from(ttl))
        } else {
            sock.set_ttl_v4(u32::from(ttl))
        };
    }
    loop {
        match io.try_send_to(data, dest) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if io.writable().await.is_err() {
                    break;
                }
            }
            Err(e) => {
                // As udx-native: send errors (unreachable, no route) are not fatal to the socket.
                tracing::trace!(%dest, error = %e, "udp send failed");
                break;
            }
        }
    }
    if ttl.is_some() {
        let _ = if dest.is_ipv6() {
            sock.set_unicast_hops_v6(DEFAULT_TTL)
        } else {
            sock.set_ttl_v4(DEFAULT_TTL)
        };
    }
}

/// Moves socket events into the stream slots and wakes whoever waits.
fn dispatch(st: &mut State) {
    while let Some(SocketEvent::Stream(id, ev)) = st.mux.poll_event() {
        let Some(slot) = st.slots.get_mut(&id) else {
            continue;
        };
        match ev {
            StreamEvent::Readable => {
                if let Some(w) = slot.read_waker.take() {
                    w.wake();
                }
            }
            StreamEvent::Message(m) => {
                if slot.messages.len() < MESSAGE_QUEUE {
                    slot.messages.push_back(m);
                }
                slot.wake_all();
            }
            StreamEvent::End => {
                slot.eof = true;
                if let Some(w) = slot.read_waker.take() {
                    w.wake();
                }
            }
            StreamEvent::Finished => {
                slot.finished = true;
                slot.wake_all();
            }
            StreamEvent::Closed(r) => {
                slot.closed = Some(r);
                slot.wake_all();
            }
            StreamEvent::RemoteChanged => slot.wake_all(),
        }
    }
    let mux = &st.mux;
    for (id, slot) in &mut st.slots {
        let Some(s) = mux.stream(*id) else {
            if slot.closed.is_none() {
                slot.closed = Some(Err(UdxError::Destroyed));
            }
            slot.wake_all();
            continue;
        };
        if slot.write_waker.is_some() && s.write_buffered() < WRITE_LOW_WATER {
            if let Some(w) = slot.write_waker.take() {
                w.wake();
            }
        }
        if !slot.waiters.is_empty() && s.is_flushed() {
            for w in slot.waiters.drain(..) {
                w.wake();
            }
        }
    }
    // Forget slots nobody holds once their stream is gone.
    let mux = &st.mux;
    st.slots
        .retain(|id, slot| slot.handle_alive || mux.has_stream(*id));
}

/// Outgoing datagrams grouped for segmentation offload: consecutive datagrams to one
/// destination, all `seg` bytes long except possibly the last, go out in one system call.
#[derive(Debug)]
struct Segment {
    dest: SocketAddr,
    ttl: Option<u8>,
    seg: usize,
    count: usize,
    closed: bool,
    buf: Vec<u8>,
}

#[derive(Debug, Default)]
struct Outbox {
    segments: Vec<Segment>,
    spare: Vec<Vec<u8>>,
}

impl Outbox {
    fn push(&mut self, dest: SocketAddr, ttl: Option<u8>, data: &[u8], max_segments: usize) {
        if let Some(last) = self.segments.last_mut() {
            if !last.closed
                && ttl.is_none()
                && last.ttl.is_none()
                && last.dest == dest
                && last.count < max_segments
                && data.len() <= last.seg
                && last.buf.len() + data.len() <= 65_000
            {
                last.buf.extend_from_slice(data);
                last.count += 1;
                last.closed = data.len() < last.seg;
                return;
            }
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        self.segments.push(Segment {
            dest,
            ttl,
            seg: data.len(),
            count: 1,
            closed: ttl.is_some(),
            buf,
        });
    }

    fn datagrams(&self) -> usize {
        self.segments.iter().map(|s| s.count).sum()
    }
}

fn v6_dest(io: &UdpSocket, dest: SocketAddr) -> SocketAddr {
    match (io.local_addr(), dest) {
        (Ok(SocketAddr::V6(_)), SocketAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => dest,
    }
}

async fn send_segment(io: &UdpSocket, udp: &quinn_udp::UdpSocketState, s: &Segment) {
    if s.ttl.is_some() {
        return send_one(io, s.dest, s.ttl, &s.buf).await;
    }
    let transmit = quinn_udp::Transmit {
        destination: v6_dest(io, s.dest),
        ecn: None,
        contents: &s.buf,
        segment_size: (s.count > 1).then_some(s.seg),
        src_ip: None,
    };
    loop {
        match io.try_io(tokio::io::Interest::WRITABLE, || {
            udp.send(io.into(), &transmit)
        }) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if io.writable().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // As udx-native: send errors (unreachable, no route) do not fail the socket.
                tracing::trace!(dest = %s.dest, error = %e, "udp send failed");
                return;
            }
        }
    }
}

/// Receive buffers for batched reads (recvmmsg, GRO).
struct Inbox {
    bufs: Vec<Vec<u8>>,
    meta: Vec<quinn_udp::RecvMeta>,
}

impl Inbox {
    fn new() -> Self {
        // 8 buffers of one GRO batch each: up to ~350 datagrams per system call.
        let n = quinn_udp::BATCH_SIZE.clamp(1, 8);
        Self {
            bufs: (0..n).map(|_| vec![0u8; INBOX_BUF]).collect(),
            meta: vec![quinn_udp::RecvMeta::default(); n],
        }
    }
}

thread_local! {
    /// Receive buffers shared by every socket driven on this thread: reads never await, so one
    /// set per thread serves all sockets, and a thousand idle DHT sockets cost no buffer memory.
    static INBOX: std::cell::RefCell<Option<Inbox>> = const { std::cell::RefCell::new(None) };
}

/// Reads what is ready without waiting and feeds it to the protocol state in one lock.
/// Returns the number of datagrams processed.
fn read_ready(shared: &Shared, udp: &quinn_udp::UdpSocketState) -> usize {
    INBOX.with(|cell| {
        let mut guard = cell.borrow_mut();
        let inbox = guard.get_or_insert_with(Inbox::new);
        read_into(shared, udp, inbox)
    })
}

fn read_into(shared: &Shared, udp: &quinn_udp::UdpSocketState, inbox: &mut Inbox) -> usize {
    let mut total = 0;
    for _ in 0..4 {
        let Inbox { bufs, meta } = inbox;
        let mut iovs: Vec<io::IoSliceMut<'_>> =
            bufs.iter_mut().map(|b| io::IoSliceMut::new(b)).collect();
        let Ok(n) = shared.io.try_io(tokio::io::Interest::READABLE, || {
            udp.recv((&shared.io).into(), &mut iovs, meta)
        }) else {
            break;
        };
        drop(iovs);
        let mut st = shared.lock();
        let t = now();
        for (m, b) in meta.iter().zip(bufs.iter()).take(n) {
            let from = unmap(m.addr);
            let stride = if m.stride == 0 { m.len } else { m.stride };
            for d in b[..m.len].chunks(stride.max(1)) {
                total += 1;
                if st.mux.handle_datagram(t, from, d) == Datagram::Raw {
                    let _ = shared.raw_tx.try_send((from, d.to_vec()));
                }
            }
        }
        dispatch(&mut st);
    }
    total
}

async fn drive(shared: Arc<Shared>) {
    let udp = match quinn_udp::UdpSocketState::new((&shared.io).into()) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "udp socket state");
            return;
        }
    };
    let max_segments = udp.max_gso_segments().clamp(1, 64);
    let mut out = Vec::with_capacity(2048);
    let mut outbox = Outbox::default();
    let mut sleep = Box::pin(tokio::time::sleep(Duration::from_secs(3600)));
    loop {
        let (timeout, more, stop) = {
            let mut st = shared.lock();
            let t = now();
            st.mux.handle_timeout(t);
            dispatch(&mut st);
            while outbox.datagrams() < BATCH * 4 {
                let Some(tx) = st.mux.poll_transmit(t, &mut out) else {
                    break;
                };
                outbox.push(tx.dest, tx.ttl, &out, max_segments);
            }
            let more = outbox.datagrams() >= BATCH * 4;
            dispatch(&mut st);
            let stop = st.closing
                && (st.mux.stream_count() == 0 || st.socket_handles == 0 && st.slots.is_empty());
            if stop {
                st.stopped = true;
            }
            (st.mux.poll_timeout(), more, stop)
        };
        let sent_any = !outbox.segments.is_empty();
        for seg in outbox.segments.drain(..) {
            send_segment(&shared.io, &udp, &seg).await;
            if outbox.spare.len() < SPARE_SEGMENTS {
                outbox.spare.push(seg.buf);
            }
        }
        if stop {
            tracing::debug!(local = %shared.local_addr, "udx socket driver stopped");
            let mut st = shared.lock();
            for slot in st.slots.values_mut() {
                if slot.closed.is_none() {
                    slot.closed = Some(Err(UdxError::Destroyed));
                }
                slot.wake_all();
            }
            return;
        }
        if more {
            // Keep sending, but let incoming datagrams (acks) in between.
            read_ready(&shared, &udp);
            tokio::task::yield_now().await;
            continue;
        }
        if !sent_any {
            // Idle: keep one send buffer (a burst to many peers left several).
            outbox.spare.truncate(1);
        }
        if let Some(t) = timeout {
            sleep.as_mut().reset(tokio::time::Instant::from_std(t));
        }
        tokio::select! {
            r = shared.io.readable() => {
                if r.is_ok() {
                    read_ready(&shared, &udp);
                }
            }
            () = &mut sleep, if timeout.is_some() => {}
            () = shared.wake_driver.notified() => {}
        }
    }
}

/// Waits for stream `id` of a socket to close (a stream that is gone counts as destroyed).
async fn wait_closed(shared: &Arc<Shared>, id: u32) -> Result<(), UdxError> {
    poll_fn(|cx| {
        let mut st = shared.lock();
        let Some(slot) = st.slots.get_mut(&id) else {
            return Poll::Ready(Err(UdxError::Destroyed));
        };
        if let Some(r) = &slot.closed {
            return Poll::Ready(r.clone());
        }
        slot.waiters.push(cx.waker().clone());
        Poll::Pending
    })
    .await
}

/// Waits for a [`UdxStream`]'s close without owning it ([`UdxStream::close_watch`]).
#[derive(Debug, Clone)]
pub struct UdxCloseWatch {
    shared: Arc<Shared>,
    id: u32,
}

impl UdxCloseWatch {
    /// Resolves when the stream closed (ended both ways, reset, timed out or dropped).
    pub async fn closed(&self) -> Result<(), UdxError> {
        wait_closed(&self.shared, self.id).await
    }
}

/// One UDX stream: `AsyncRead + AsyncWrite`, plus unreliable messages.
///
/// Dropping a handle that has not ended its write side destroys the stream; after `shutdown`
/// the stream finishes gracefully in the background.
#[derive(Debug)]
pub struct UdxStream {
    shared: Arc<Shared>,
    id: u32,
}

impl UdxStream {
    /// This side's stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The local address of the socket this stream runs on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// A handle to the socket this stream runs on (to open sibling streams on the same path).
    pub fn socket(&self) -> UdxSocket {
        self.shared.lock().socket_handles += 1;
        UdxSocket {
            shared: self.shared.clone(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut super::Stream) -> R) -> Result<R, UdxError> {
        let mut st = self.shared.lock();
        let s = st.mux.stream_mut(self.id).ok_or(UdxError::Destroyed)?;
        let r = f(s);
        drop(st);
        self.shared.wake_driver.notify_one();
        Ok(r)
    }

    /// Connects to the peer stream `remote_id` at `addr` (nothing is sent).
    pub fn connect(&self, remote_id: u32, addr: SocketAddr) -> Result<(), UdxError> {
        let mut st = self.shared.lock();
        st.mux.connect(
            now(),
            self.id,
            Remote {
                id: remote_id,
                addr,
            },
        )?;
        drop(st);
        self.shared.wake_driver.notify_one();
        Ok(())
    }

    /// Accepts the first packet from any address and connects to its source (server side of
    /// hyperdht, which learns the client's path from it).
    pub fn accept_first_packet(&self, remote_id: u32) -> Result<(), UdxError> {
        self.shared
            .lock()
            .mux
            .accept_first_packet(self.id, remote_id)
    }

    /// Switches to a new path; see [`super::Stream::change_remote`].
    pub fn change_remote(&self, remote_id: u32, addr: SocketAddr) -> Result<(), UdxError> {
        let remote = Remote {
            id: remote_id,
            addr,
        };
        self.with(|s| s.change_remote(remote))
    }

    /// The peer, once connected.
    pub fn remote(&self) -> Option<Remote> {
        self.shared
            .lock()
            .mux
            .stream(self.id)
            .and_then(super::Stream::remote)
    }

    /// Path MTU, smoothed RTT, congestion window (packets) and pacing rate (bytes/s).
    pub fn stats(&self) -> Option<(u16, Duration, u32, f64)> {
        let st = self.shared.lock();
        let s = st.mux.stream(self.id)?;
        let (cwnd, rate) = s.congestion();
        Some((s.mtu(), s.rtt().0, cwnd, rate))
    }

    /// Sends an unreliable datagram on the stream (MESSAGE).
    pub fn send_message(&self, data: &[u8]) -> Result<(), UdxError> {
        self.with(|s| s.send_message(data.to_vec()))?
    }

    /// The next unreliable datagram; `None` once the stream closed.
    pub async fn recv_message(&self) -> Option<Vec<u8>> {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            let Some(slot) = st.slots.get_mut(&self.id) else {
                return Poll::Ready(None);
            };
            if let Some(m) = slot.messages.pop_front() {
                return Poll::Ready(Some(m));
            }
            if slot.closed.is_some() {
                return Poll::Ready(None);
            }
            slot.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Waits until everything written (and the END, if any) is acknowledged.
    pub async fn flushed(&self) -> Result<(), UdxError> {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            let flushed = st.mux.stream(self.id).map(super::Stream::is_flushed);
            let Some(slot) = st.slots.get_mut(&self.id) else {
                return Poll::Ready(Err(UdxError::Destroyed));
            };
            if let Some(Err(e)) = &slot.closed {
                return Poll::Ready(Err(e.clone()));
            }
            if flushed != Some(false) || slot.finished {
                return Poll::Ready(Ok(()));
            }
            slot.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Waits until the stream closed, with its outcome.
    pub async fn closed(&self) -> Result<(), UdxError> {
        wait_closed(&self.shared, self.id).await
    }

    /// A cheap handle that can wait for this stream's close from another task while the
    /// stream itself is owned elsewhere (it keeps no stream alive).
    pub fn close_watch(&self) -> UdxCloseWatch {
        UdxCloseWatch {
            shared: self.shared.clone(),
            id: self.id,
        }
    }

    /// Aborts the stream: one DESTROY is sent to the peer.
    pub fn destroy(&self) {
        let _ = self.with(super::Stream::destroy);
    }

    fn io_err(e: &UdxError) -> io::Error {
        let kind = match e {
            UdxError::TimedOut => io::ErrorKind::TimedOut,
            UdxError::Reset => io::ErrorKind::ConnectionReset,
            UdxError::Destroyed => io::ErrorKind::ConnectionAborted,
            UdxError::Ended => io::ErrorKind::BrokenPipe,
            UdxError::NotConnected => io::ErrorKind::NotConnected,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e.clone())
    }
}

impl Drop for UdxStream {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(slot) = st.slots.get_mut(&self.id) {
            slot.handle_alive = false;
        }
        if let Some(s) = st.mux.stream_mut(self.id) {
            if !s.is_closed() && !s.is_flushed_or_ending() {
                s.destroy();
            }
        }
        drop(st);
        self.shared.wake_driver.notify_one();
    }
}

impl AsyncRead for UdxStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = &*self;
        let mut st = this.shared.lock();
        let State { mux, slots, .. } = &mut *st;
        if let Some(s) = mux.stream_mut(this.id) {
            if s.readable() > 0 {
                // Every packet that is ready, in one lock (not one poll per packet).
                let (n, window_update) = s.read_into(buf.initialize_unfilled());
                buf.advance(n);
                drop(st);
                if window_update {
                    this.shared.wake_driver.notify_one();
                }
                return Poll::Ready(Ok(()));
            }
        }
        let Some(slot) = slots.get_mut(&this.id) else {
            return Poll::Ready(Ok(()));
        };
        if slot.eof {
            return Poll::Ready(Ok(()));
        }
        match &slot.closed {
            Some(Ok(())) => return Poll::Ready(Ok(())),
            Some(Err(e)) => return Poll::Ready(Err(Self::io_err(e))),
            None => {}
        }
        slot.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for UdxStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.shared.lock();
        let State { mux, slots, .. } = &mut *st;
        let Some(s) = mux.stream_mut(self.id) else {
            return Poll::Ready(Err(Self::io_err(&UdxError::Destroyed)));
        };
        if s.write_buffered() >= WRITE_HIGH_WATER {
            if let Some(slot) = slots.get_mut(&self.id) {
                slot.write_waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let n = buf.len().min(WRITE_HIGH_WATER);
        if let Err(e) = s.write(buf[..n].to_vec()) {
            return Poll::Ready(Err(Self::io_err(&e)));
        }
        drop(st);
        self.shared.wake_driver.notify_one();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.with(super::Stream::end) {
            Ok(Ok(())) | Err(_) => Poll::Ready(Ok(())),
            Ok(Err(e)) => Poll::Ready(Err(Self::io_err(&e))),
        }
    }
}
