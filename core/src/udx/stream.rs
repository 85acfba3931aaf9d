//! One UDX stream as a sans-IO state machine (spec `udx.md` §2–§5).
//!
//! Inputs: [`Stream::handle_packet`], [`Stream::write`], [`Stream::end`], [`Stream::destroy`],
//! [`Stream::send_message`], [`Stream::read`], [`Stream::handle_timeout`]. Outputs:
//! [`Stream::poll_transmit`], [`Stream::poll_timeout`], [`Stream::poll_event`].

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cc::{Bbr, RateSample};
use super::packet::{
    seq_diff, seq_le, seq_lt, Header, Packet, FLAG_DATA, FLAG_DESTROY, FLAG_END, FLAG_HEARTBEAT,
    FLAG_MESSAGE, FLAG_SACK, HEADER_LEN, MAX_DATAGRAM, MAX_SACK_BLOCKS,
};
use super::UdxError;

const INITIAL_RTO: Duration = Duration::from_secs(1);
const MIN_RTO: Duration = Duration::from_secs(1);
const MAX_RTO: Duration = Duration::from_secs(30);
const MAX_CONSECUTIVE_RTOS: u32 = 6;
const MTU_BASE: u16 = 1200;
const MTU_MAX: u16 = 1500;
const MTU_STEP: u16 = 32;
const MTU_PROBE_ATTEMPTS: u8 = 3;
/// Default receive buffer: the window we advertise when the application keeps up.
pub const DEFAULT_RECV_WINDOW: usize = 4 * 1024 * 1024;
/// How far ahead of the cumulative ack out-of-order packets are buffered.
const MAX_OOO_PACKETS: i64 = 16_384;

/// Where a stream's packets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    /// The peer's id for this stream (written in every packet we send).
    pub id: u32,
    /// The peer's UDP address.
    pub addr: SocketAddr,
}

/// What a stream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// In-order data is waiting in [`Stream::read`].
    Readable,
    /// An unreliable datagram (MESSAGE) arrived.
    Message(Vec<u8>),
    /// The peer ended its side; every byte before it has been made readable.
    End,
    /// Our END and all data before it were acknowledged.
    Finished,
    /// Every packet sent before `change_remote` was acknowledged.
    RemoteChanged,
    /// The stream closed: `Ok` when both sides ended, otherwise why.
    Closed(Result<(), UdxError>),
}

/// One datagram to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dest: SocketAddr,
}

/// Stream options.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Receive buffer in bytes (advertised as the window, minus what is buffered).
    pub recv_window: usize,
    /// Send a HEARTBEAT after this much idleness (keeps NAT bindings; off by default).
    pub keep_alive: Option<Duration>,
    /// Upper bound of the path MTU (IP packet size) to probe for; 1200 disables probing.
    pub max_mtu: u16,
    /// Initial send sequence number (0 on the wire with hyperdht; settable for tests).
    pub initial_seq: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            recv_window: DEFAULT_RECV_WINDOW,
            keep_alive: None,
            max_mtu: MTU_MAX,
            initial_seq: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaState {
    Open,
    Recovery,
    Loss,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MtuState {
    Base,
    Search,
    Complete,
}

/// A packet's payload: a range of one written buffer, shared by the packets cut from it (no
/// copy and no allocation per packet).
#[derive(Debug, Default)]
struct Payload {
    buf: Option<Arc<Vec<u8>>>,
    start: usize,
    len: usize,
}

impl Payload {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bytes(&self) -> &[u8] {
        self.buf
            .as_ref()
            .map_or(&[][..], |b| &b[self.start..self.start + self.len])
    }
}

#[derive(Debug)]
struct Sent {
    payload: Payload,
    end: bool,
    at: Instant,
    retransmitted: bool,
    sacked: bool,
    lost: bool,
    in_flight: bool,
    padding: u8,
    dest: Remote,
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    app_limited: bool,
}

#[derive(Debug)]
struct Ooo {
    data: Vec<u8>,
}

/// A UDX stream.
#[derive(Debug)]
pub struct Stream {
    local_id: u32,
    remote: Option<Remote>,
    cfg: StreamConfig,
    // lifecycle
    end_queued: bool,
    end_seq: Option<u32>,
    local_ended: bool,
    remote_end_seq: Option<u32>,
    remote_ended: bool,
    closed: Option<Result<(), UdxError>>,
    destroy_pending: bool,
    time_wait_until: Option<Instant>,
    // send side
    snd_nxt: u32,
    snd_una: u32,
    send_rwnd: u32,
    wl1: u32,
    wl2: u32,
    write_queue: VecDeque<Arc<Vec<u8>>>,
    write_offset: usize,
    write_queued: usize,
    sent: VecDeque<Sent>,
    sacked_count: usize,
    unacked_bytes: usize,
    retransmit: VecDeque<u32>,
    inflight: u32,
    messages_out: VecDeque<Vec<u8>>,
    ack_pending: bool,
    heartbeat_pending: bool,
    last_rwnd_sent: u32,
    // RTT / loss
    srtt: Duration,
    rttvar: Duration,
    rto: Duration,
    has_rtt: bool,
    rtt_samples: u64,
    min_rtt: Option<Duration>,
    rack_rtt: Duration,
    rack_time_sent: Option<Instant>,
    rack_seq: u32,
    fack: u32,
    reordering_seen: bool,
    ca_state: CaState,
    high_seq: u32,
    rto_deadline: Option<Instant>,
    rack_deadline: Option<Instant>,
    tlp_deadline: Option<Instant>,
    tlp_probe: Option<u32>,
    tlp_send: bool,
    tlp_rtt_samples: u64,
    rto_count: u32,
    zwp_deadline: Option<Instant>,
    keep_alive_deadline: Option<Instant>,
    // pacing
    tokens: f64,
    last_refill: Option<Instant>,
    pacing_deadline: Option<Instant>,
    // rate sampling
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    app_limited_until: u64,
    cc: Bbr,
    // MTU
    mtu: u16,
    mtu_state: MtuState,
    probe_size: u16,
    probe_count: u8,
    probe_wanted: bool,
    probe_seq: Option<u32>,
    // change remote
    change_seq: Option<u32>,
    // receive side
    rcv_nxt: u32,
    rcv_base: u64,
    ooo: BTreeMap<u64, Ooo>,
    ooo_bytes: usize,
    /// In-order data not yet read, contiguous (no allocation per packet); its capacity is
    /// freed once it empties after a burst.
    recv_buf: VecDeque<u8>,
    recv_buffered: usize,
    events: VecDeque<StreamEvent>,
}

impl Stream {
    /// A stream with local id `local_id`, not yet connected.
    pub fn new(now: Instant, local_id: u32, cfg: StreamConfig) -> Self {
        let seq = cfg.initial_seq;
        let recv_window = cfg.recv_window.min(u32::MAX as usize) as u32;
        Self {
            local_id,
            remote: None,
            end_queued: false,
            end_seq: None,
            local_ended: false,
            remote_end_seq: None,
            remote_ended: false,
            closed: None,
            destroy_pending: false,
            time_wait_until: None,
            snd_nxt: seq,
            snd_una: seq,
            send_rwnd: u32::MAX,
            // The window-update rule compares the peer's seq with wl1 and its ack with wl2:
            // start them at the peer's and our initial sequence (0 on the wire; see also
            // `set_initial_ack`). With 0 here, a stream configured with `initial_seq` near the
            // wrap ignored every window update until its ack crossed 0.
            wl1: 0,
            wl2: seq,
            write_queue: VecDeque::new(),
            write_offset: 0,
            write_queued: 0,
            sent: VecDeque::new(),
            sacked_count: 0,
            unacked_bytes: 0,
            retransmit: VecDeque::new(),
            inflight: 0,
            messages_out: VecDeque::new(),
            ack_pending: false,
            heartbeat_pending: false,
            last_rwnd_sent: recv_window,
            srtt: Duration::ZERO,
            rttvar: Duration::ZERO,
            rto: INITIAL_RTO,
            has_rtt: false,
            rtt_samples: 0,
            min_rtt: None,
            rack_rtt: Duration::ZERO,
            rack_time_sent: None,
            rack_seq: seq,
            fack: seq,
            reordering_seen: false,
            ca_state: CaState::Open,
            high_seq: seq,
            rto_deadline: None,
            rack_deadline: None,
            tlp_deadline: None,
            tlp_probe: None,
            tlp_send: false,
            tlp_rtt_samples: 0,
            rto_count: 0,
            zwp_deadline: None,
            keep_alive_deadline: None,
            tokens: 25_000.0,
            last_refill: None,
            pacing_deadline: None,
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            app_limited_until: 0,
            cc: Bbr::new(now, usize::from(MTU_BASE) - 68),
            mtu: MTU_BASE,
            mtu_state: if cfg.max_mtu <= MTU_BASE {
                MtuState::Complete
            } else {
                MtuState::Base
            },
            probe_size: MTU_BASE,
            probe_count: 0,
            probe_wanted: false,
            probe_seq: None,
            change_seq: None,
            rcv_nxt: 0,
            rcv_base: 1 << 32,
            ooo: BTreeMap::new(),
            ooo_bytes: 0,
            recv_buf: VecDeque::new(),
            recv_buffered: 0,
            events: VecDeque::new(),
            cfg,
        }
    }

    /// This side's id.
    pub fn local_id(&self) -> u32 {
        self.local_id
    }

    /// The peer, once connected.
    pub fn remote(&self) -> Option<Remote> {
        self.remote
    }

    /// Connects to the peer's stream: purely local, nothing is sent unless a packet was already
    /// received (then one ACK). `ack` is the peer's initial sequence (0 with hyperdht).
    pub fn connect(&mut self, now: Instant, remote: Remote) {
        if self.remote.is_some() {
            return;
        }
        self.remote = Some(remote);
        self.mtu_reset();
        if seq_lt(0, self.rcv_nxt) || self.recv_buffered > 0 {
            self.ack_pending = true;
        }
        self.arm_keep_alive(now);
    }

    /// Sets the peer's initial sequence number (only before any packet arrived; tests).
    pub fn set_initial_ack(&mut self, ack: u32) {
        if self.recv_buffered == 0 && self.ooo.is_empty() {
            self.rcv_nxt = ack;
            self.rcv_base = (1 << 32) + u64::from(ack);
            // The peer's packets carry seq >= its initial sequence: start the window-update
            // rule there, or a peer starting past 0x8000_0000 never gets its window honoured
            // while it only sends ACKs (its seq stays "below" wl1 = 0).
            self.wl1 = ack;
        }
    }

    /// Moves the stream to a new path (relay → direct). Packets already sent keep their old
    /// destination for retransmission; [`StreamEvent::RemoteChanged`] follows once they are acked.
    pub fn change_remote(&mut self, remote: Remote) {
        self.remote = Some(remote);
        self.mtu_reset();
        if self.snd_una == self.snd_nxt {
            self.change_seq = None;
            self.events.push_back(StreamEvent::RemoteChanged);
        } else {
            self.change_seq = Some(self.snd_nxt);
        }
    }

    fn mtu_reset(&mut self) {
        self.mtu = MTU_BASE;
        self.probe_size = MTU_BASE;
        self.probe_count = 0;
        self.probe_wanted = false;
        self.probe_seq = None;
        self.mtu_state = if self.cfg.max_mtu <= MTU_BASE {
            MtuState::Complete
        } else {
            MtuState::Base
        };
    }

    fn overhead(&self) -> usize {
        match self.remote.map(|r| r.addr) {
            Some(SocketAddr::V4(_)) => 48,
            _ => 68,
        }
    }

    /// Current payload bytes per packet.
    pub fn max_payload(&self) -> usize {
        usize::from(self.mtu) - self.overhead()
    }

    /// Current path MTU estimate (IP packet size).
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// Whether the stream has closed (it may linger briefly to re-ack a lost final ACK).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Whether the stream can be forgotten: closed and past its TIME_WAIT.
    pub fn is_finished(&self, now: Instant) -> bool {
        self.closed.is_some()
            && self.time_wait_until.is_none_or(|t| now >= t)
            && !self.destroy_pending
    }

    /// Bytes written but not yet acknowledged (queued or in flight).
    pub fn write_buffered(&self) -> usize {
        self.write_queued + self.unacked_bytes
    }

    /// Whether everything written (and the END, if any) was acknowledged.
    pub fn is_flushed(&self) -> bool {
        self.write_queued == 0
            && self.sent.is_empty()
            && (!self.end_queued || self.end_seq.is_some())
    }

    /// Whether `end()` was called or everything written was acknowledged (a handle may then be
    /// dropped without destroying the stream).
    pub fn is_flushed_or_ending(&self) -> bool {
        self.end_queued || self.closed.is_some()
    }

    /// Bytes readable now.
    pub fn readable(&self) -> usize {
        self.recv_buffered
    }

    /// Bytes received beyond a gap, held until the gap fills (diagnostics: with
    /// [`Stream::readable`] this is what the receive window bounds).
    pub fn out_of_order_buffered(&self) -> usize {
        self.ooo_bytes
    }

    /// Congestion window in packets and pacing rate in bytes/s (diagnostics).
    pub fn congestion(&self) -> (u32, f64) {
        (self.cc.cwnd(), self.cc.pacing_rate())
    }

    /// A one-line summary of the loss-recovery state (diagnostics).
    pub fn debug_state(&self) -> String {
        format!(
            "inflight={} sent={} retx={} ca={:?} rto_count={} rto_at={:?} tlp={:?} rack={:?} pacing_at={:?} mode={:?} tokens={:.0} {}",
            self.inflight,
            self.sent.len(),
            self.retransmit.len(),
            self.ca_state,
            self.rto_count,
            self.rto_deadline.map(|t| t.saturating_duration_since(self.delivered_time)),
            self.tlp_deadline.is_some(),
            self.rack_deadline.is_some(),
            self.pacing_deadline.is_some(),
            self.cc.mode(),
            self.tokens,
            self.cc.debug()
        )
    }

    /// Smoothed RTT and current RTO.
    pub fn rtt(&self) -> (Duration, Duration) {
        (self.srtt, self.rto)
    }

    fn rwnd(&self) -> u32 {
        let used = self.recv_buffered + self.ooo_bytes;
        self.cfg
            .recv_window
            .saturating_sub(used)
            .min(u32::MAX as usize) as u32
    }

    /// Queues bytes to send. Fails once the stream ended, closed or is being destroyed.
    pub fn write(&mut self, data: Vec<u8>) -> Result<(), UdxError> {
        if let Some(Err(e)) = &self.closed {
            return Err(e.clone());
        }
        if self.end_queued || self.closed.is_some() || self.destroy_pending {
            return Err(UdxError::Ended);
        }
        if !data.is_empty() {
            self.write_queued += data.len();
            self.write_queue.push_back(Arc::new(data));
        }
        Ok(())
    }

    /// Ends the write side after everything queued (an END packet follows the data).
    pub fn end(&mut self) -> Result<(), UdxError> {
        if let Some(Err(e)) = &self.closed {
            return Err(e.clone());
        }
        self.end_queued = true;
        Ok(())
    }

    /// Aborts: one DESTROY packet is sent if connected, then the stream closes.
    pub fn destroy(&mut self) {
        if self.closed.is_some() || self.destroy_pending {
            return;
        }
        self.write_queue.clear();
        self.write_queued = 0;
        if self.remote.is_some() {
            self.destroy_pending = true;
        } else {
            self.close(Err(UdxError::Destroyed), None);
        }
    }

    /// Closes without sending anything (a relay whose peer destroyed the path).
    pub fn destroy_silently(&mut self) {
        self.close(Err(UdxError::Reset), None);
    }

    /// Queues an unreliable datagram (delivered whole or not at all).
    pub fn send_message(&mut self, data: Vec<u8>) -> Result<(), UdxError> {
        if let Some(Err(e)) = &self.closed {
            return Err(e.clone());
        }
        if self.closed.is_some() || self.destroy_pending {
            return Err(UdxError::Ended);
        }
        if self.remote.is_none() {
            return Err(UdxError::NotConnected);
        }
        if data.len() + HEADER_LEN > MAX_DATAGRAM {
            return Err(UdxError::MessageTooLarge(data.len()));
        }
        self.messages_out.push_back(data);
        Ok(())
    }

    /// Takes the in-order data received so far; reading opens the receive window.
    pub fn read(&mut self) -> Option<Vec<u8>> {
        if self.recv_buf.is_empty() {
            return None;
        }
        let mut chunk = vec![0u8; self.recv_buf.len()];
        let (n, _) = self.read_into(&mut chunk);
        chunk.truncate(n);
        Some(chunk)
    }

    /// Copies as much in-order data as fits into `out`; returns the number of bytes copied and
    /// whether a window update became due (the receive window reopened: the driver should
    /// send an ACK).
    pub fn read_into(&mut self, out: &mut [u8]) -> (usize, bool) {
        let before = self.rwnd();
        let (a, b) = self.recv_buf.as_slices();
        let na = a.len().min(out.len());
        out[..na].copy_from_slice(&a[..na]);
        let nb = b.len().min(out.len() - na);
        out[na..na + nb].copy_from_slice(&b[..nb]);
        let n = na + nb;
        self.recv_buf.drain(..n);
        if self.recv_buf.is_empty() && self.recv_buf.capacity() > 4096 {
            // Do not keep a burst's buffer on an idle stream (it regrows in a few steps).
            self.recv_buf = VecDeque::new();
        }
        self.recv_buffered -= n;
        (n, self.after_read(before))
    }

    /// Tells the sender when a (nearly) closed window opens again; returns whether an ACK
    /// became due.
    fn after_read(&mut self, before: u32) -> bool {
        let after = self.rwnd();
        let quarter = (self.cfg.recv_window / 4) as u32;
        if self.remote.is_some() && self.closed.is_none() && before < quarter && after >= quarter {
            self.ack_pending = true;
            return true;
        }
        false
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        let ev = self.events.pop_front();
        if ev.is_none() {
            shrink_idle(&mut self.events);
        }
        ev
    }

    fn close(&mut self, result: Result<(), UdxError>, now: Option<Instant>) {
        if self.closed.is_some() {
            return;
        }
        tracing::debug!(id = self.local_id, ?result, "udx stream closed");
        if result.is_ok() {
            // TIME_WAIT: keep answering retransmitted ENDs in case our last ACK was lost.
            // Long enough for the peer's first few END retransmissions (RTO, then every 2·RTO).
            let linger = (self.rto * 8).clamp(Duration::from_secs(8), Duration::from_secs(60));
            self.time_wait_until = now.map(|n| n + linger);
        }
        self.closed = Some(result.clone());
        self.write_queue.clear();
        self.write_queued = 0;
        self.sent.clear();
        self.sacked_count = 0;
        self.unacked_bytes = 0;
        self.retransmit.clear();
        self.ooo.clear();
        self.ooo_bytes = 0;
        self.inflight = 0;
        self.messages_out.clear();
        self.rto_deadline = None;
        self.rack_deadline = None;
        self.tlp_deadline = None;
        self.zwp_deadline = None;
        self.keep_alive_deadline = None;
        self.pacing_deadline = None;
        self.events.push_back(StreamEvent::Closed(result));
    }

    // ---------------------------------------------------------------- receive

    /// Processes one packet addressed to this stream.
    pub fn handle_packet(&mut self, now: Instant, pkt: &Packet<'_>) {
        let h = pkt.header;
        if self.closed.is_some() {
            // TIME_WAIT: re-acknowledge retransmitted data/END so the peer can finish.
            if self.time_wait_until.is_some_and(|t| now < t) && h.has(FLAG_DATA | FLAG_END) {
                self.ack_pending = true;
            }
            return;
        }
        if h.has(FLAG_HEARTBEAT) {
            self.ack_pending = true;
            return;
        }
        if seq_le(self.rcv_nxt, h.seq) {
            if h.has(FLAG_DATA | FLAG_END) && !self.remote_ended {
                self.receive_data(h.seq, pkt.payload, h.has(FLAG_DATA));
            }
            // Only an END within the out-of-order horizon (where its data could be buffered)
            // is remembered: the first END recorded wins, so one forged END far ahead (any
            // random seq has a 1/2 chance to count as ">= rcv.nxt") would otherwise make the
            // real END ignored and EOF never come — a silent hang, with no timeout.
            if h.has(FLAG_END)
                && self.remote_end_seq.is_none()
                && seq_diff(h.seq, self.rcv_nxt) < MAX_OOO_PACKETS
            {
                self.remote_end_seq = Some(h.seq);
            }
            if h.has(FLAG_DESTROY) {
                self.close(Err(UdxError::Reset), Some(now));
                return;
            }
        }
        if h.has(FLAG_MESSAGE) {
            self.events
                .push_back(StreamEvent::Message(pkt.payload.to_vec()));
        }
        self.drain_ooo();
        if !self.process_ack(now, pkt) {
            return;
        }
        if h.has(FLAG_DATA | FLAG_END) {
            self.ack_pending = true;
        }
        self.check_eof();
        self.check_local_end(now);
        if self.local_ended && self.remote_ended {
            self.close(Ok(()), Some(now));
        }
    }

    fn receive_data(&mut self, seq: u32, payload: &[u8], is_data: bool) {
        let ahead = seq_diff(seq, self.rcv_nxt);
        let payload = if is_data { payload } else { &[][..] };
        let room = self
            .cfg
            .recv_window
            .saturating_sub(self.recv_buffered + self.ooo_bytes);
        if payload.len() > room.max(MAX_DATAGRAM) {
            return; // sender overran our window: drop, it will retransmit
        }
        if ahead == 0 {
            // Bound what a peer ignoring our window can make us hold while the application is
            // not reading (it was unbounded). An honest sender overshoots the window by a few
            // packets at most (reordered window updates, tail-loss probes), so in-order data
            // is only refused once the application's buffer holds the window plus as much
            // again (at least 64 KiB) of slack. Out-of-order bytes do not count here: a
            // retransmission filling a gap must never be refused (that could deadlock a window
            // full of out-of-order data).
            let limit = self.cfg.recv_window + self.cfg.recv_window.max(64 * 1024);
            if !payload.is_empty() && self.recv_buffered >= limit {
                return;
            }
            self.deliver(payload);
            self.advance_rcv();
        } else if ahead > 0 && ahead < MAX_OOO_PACKETS && !self.ooo.contains_key(&self.ooo_key(seq))
        {
            if payload.len() > room {
                return;
            }
            self.ooo_bytes += payload.len();
            self.ooo.insert(
                self.ooo_key(seq),
                Ooo {
                    data: payload.to_vec(),
                },
            );
        }
    }

    fn ooo_key(&self, seq: u32) -> u64 {
        self.rcv_base
            .wrapping_add_signed(seq_diff(seq, self.rcv_nxt))
    }

    fn advance_rcv(&mut self) {
        self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        self.rcv_base += 1;
    }

    fn deliver(&mut self, payload: &[u8]) {
        if payload.is_empty() {
            return;
        }
        self.recv_buffered += payload.len();
        self.recv_buf.extend(payload);
        self.events.push_back(StreamEvent::Readable);
    }

    fn drain_ooo(&mut self) {
        while let Some(entry) = self.ooo.remove(&self.rcv_base) {
            self.ooo_bytes -= entry.data.len();
            if !self.remote_ended {
                self.deliver(&entry.data);
            }
            self.advance_rcv();
        }
    }

    fn check_eof(&mut self) {
        if let Some(end) = self.remote_end_seq {
            if !self.remote_ended && seq_lt(end, self.rcv_nxt) {
                self.remote_ended = true;
                tracing::trace!(id = self.local_id, "udx stream: the peer ended");
                self.ooo.clear();
                self.ooo_bytes = 0;
                self.events.push_back(StreamEvent::End);
            }
        }
    }

    fn check_local_end(&mut self, now: Instant) {
        if self.local_ended {
            return;
        }
        if let Some(end) = self.end_seq {
            if seq_lt(end, self.snd_una) && self.sent.is_empty() && self.write_queued == 0 {
                self.local_ended = true;
                self.rto_deadline = None;
                self.tlp_deadline = None;
                self.rack_deadline = None;
                self.events.push_back(StreamEvent::Finished);
                if !self.remote_ended {
                    self.ack_pending = true; // udx-native's "final state" ACK
                }
                self.arm_keep_alive(now);
            }
        }
    }

    /// Acknowledgement processing; `false` if the packet acks data never sent (ignored further).
    fn process_ack(&mut self, now: Instant, pkt: &Packet<'_>) -> bool {
        let h = pkt.header;
        if seq_lt(self.snd_nxt, h.ack) {
            return false;
        }
        // A packet's seq (the peer's snd.nxt, or its own seq) is never further ahead of our
        // rcv.nxt than the out-of-order horizon. Without this bound one forged packet with a
        // valid ack and a huge seq jump set wl1 far ahead, after which every real window
        // update was "old" and the window stayed whatever the forgery said (0 = stalled for
        // good: zero-window probes get answers that are ignored too).
        if seq_le(self.snd_una, h.ack)
            && seq_diff(h.seq, self.rcv_nxt) < MAX_OOO_PACKETS
            && (seq_lt(self.wl1, h.seq) || (h.seq == self.wl1 && seq_le(self.wl2, h.ack)))
        {
            self.send_rwnd = h.rwnd;
            self.wl1 = h.seq;
            self.wl2 = h.ack;
            if h.rwnd > 0 {
                self.zwp_deadline = None;
            }
        }
        if let Some(c) = self.change_seq {
            if seq_le(c, h.ack) {
                self.change_seq = None;
                self.events.push_back(StreamEvent::RemoteChanged);
            }
        }
        if let Some(p) = self.tlp_probe {
            if seq_lt(p, h.ack) {
                self.tlp_probe = None;
            }
        }
        if self.ca_state != CaState::Open && seq_lt(self.high_seq, h.ack) {
            self.ca_state = CaState::Open;
            self.cc.on_exit_recovery();
        }

        let mut acked = 0u32;
        let mut newest: Option<(Instant, u32)> = None; // (at, seq) of the newest delivered
        let mut sample: Option<RateSample> = None;
        let advanced = seq_lt(self.snd_una, h.ack);
        while seq_lt(self.snd_una, h.ack) {
            let seq = self.snd_una;
            let Some(p) = self.sent.pop_front() else {
                break;
            };
            self.snd_una = self.snd_una.wrapping_add(1);
            if p.in_flight {
                self.inflight -= 1;
            }
            if p.sacked {
                self.sacked_count -= 1;
            } else {
                self.unacked_bytes -= p.payload.len();
                acked += 1;
                self.on_delivered(now, seq, &p, &mut newest, &mut sample);
            }
        }
        if advanced {
            self.rto_count = 0;
        }
        if h.has(FLAG_SACK) && !h.has(FLAG_DATA) {
            acked += self.apply_sacks(now, pkt, &mut newest, &mut sample);
        }

        if acked > 0 {
            let lost = self.detect_losses(now);
            if lost > 0 && self.ca_state == CaState::Open {
                self.ca_state = CaState::Recovery;
                self.high_seq = self.snd_nxt;
                self.cc.on_enter_recovery(self.inflight, acked);
            }
            let mss = self.max_payload();
            self.cc
                .on_ack(now, mss, self.delivered, acked, lost, self.inflight, sample);
        }
        if advanced {
            if self.sent.is_empty() {
                shrink_idle(&mut self.sent);
                shrink_idle(&mut self.write_queue);
                self.rto_deadline = None;
                self.tlp_deadline = None;
            } else {
                self.rto_deadline = Some(now + self.rto);
                self.schedule_tlp(now);
            }
        }
        true
    }

    /// Marks the packets in valid SACK blocks as delivered; returns how many were new.
    fn apply_sacks(
        &mut self,
        now: Instant,
        pkt: &Packet<'_>,
        newest: &mut Option<(Instant, u32)>,
        sample: &mut Option<RateSample>,
    ) -> u32 {
        let mut acked = 0;
        let outstanding = seq_diff(self.snd_nxt, self.snd_una);
        for (start, end) in pkt.sack_blocks().take(MAX_SACK_BLOCKS * 4) {
            // Offsets from snd_una, so the range check is transitive (serial comparisons alone
            // accept blocks like [0x7fffffff, 0xfffffffe) whose walk would take 2^31 steps).
            let (from, to) = (seq_diff(start, self.snd_una), seq_diff(end, self.snd_una));
            if !(0 <= from && from < to && to <= outstanding) {
                continue;
            }
            for off in from..to {
                let idx = off as usize;
                let s = self.snd_una.wrapping_add(off as u32);
                if let Some(p) = self.sent.get_mut(idx) {
                    if !p.sacked {
                        p.sacked = true;
                        self.sacked_count += 1;
                        self.unacked_bytes -= p.payload.len();
                        p.lost = false;
                        if p.in_flight {
                            p.in_flight = false;
                            self.inflight -= 1;
                        }
                        let taken = Sent {
                            payload: std::mem::take(&mut p.payload),
                            ..clone_meta(p)
                        };
                        acked += 1;
                        self.on_delivered(now, s, &taken, newest, sample);
                    }
                }
            }
        }
        acked
    }

    fn on_delivered(
        &mut self,
        now: Instant,
        seq: u32,
        p: &Sent,
        newest: &mut Option<(Instant, u32)>,
        sample: &mut Option<RateSample>,
    ) {
        self.delivered += p.payload.len().max(1) as u64;
        self.delivered_time = now;
        let rtt = now.saturating_duration_since(p.at);
        if !p.retransmitted {
            self.rtt_sample(rtt);
        }
        if self.probe_seq == Some(seq) {
            self.probe_acked();
        }
        // RACK: most recently sent delivered packet.
        if !p.retransmitted || self.min_rtt.is_some_and(|m| rtt >= m) {
            let newer = match self.rack_time_sent {
                None => true,
                Some(t) => p.at > t || (p.at == t && seq_lt(self.rack_seq, seq)),
            };
            if newer {
                self.rack_time_sent = Some(p.at);
                self.rack_seq = seq;
                self.rack_rtt = rtt;
            }
        }
        if seq_le(self.fack, seq) {
            self.fack = seq.wrapping_add(1);
        } else if !p.retransmitted {
            self.reordering_seen = true;
        }
        if newest.is_none_or(|(t, _)| p.at >= t) {
            *newest = Some((p.at, seq));
            let send_interval = p.at.saturating_duration_since(p.first_sent_time);
            let ack_interval = now.saturating_duration_since(p.delivered_time);
            let interval = send_interval.max(ack_interval);
            let min_rtt = self.min_rtt.unwrap_or(Duration::ZERO);
            *sample = if interval >= min_rtt && !interval.is_zero() {
                Some(RateSample {
                    delivered: self.delivered - p.delivered,
                    interval,
                    prior_delivered: p.delivered,
                    app_limited: p.app_limited,
                    rtt: (!p.retransmitted).then_some(rtt),
                })
            } else {
                sample.take()
            };
            self.first_sent_time = p.at;
        }
    }

    fn rtt_sample(&mut self, r: Duration) {
        let mut r = r;
        if self.has_rtt {
            let bound = self.srtt + self.rttvar * 5;
            if r > Duration::from_secs(5) && r > bound {
                r = bound.min(MAX_RTO);
            }
            let diff = self.srtt.abs_diff(r);
            self.rttvar = (self.rttvar * 3 + diff) / 4;
            self.srtt = (self.srtt * 7 + r) / 8;
        } else {
            r = r.min(MAX_RTO);
            self.srtt = r;
            self.rttvar = r / 2;
            self.has_rtt = true;
            self.cc.on_first_rtt(self.srtt, self.max_payload());
        }
        self.rtt_samples += 1;
        self.rto = (self.srtt + self.rttvar * 4).clamp(MIN_RTO, MAX_RTO);
        if self.min_rtt.is_none_or(|m| r < m) {
            self.min_rtt = Some(r);
        }
    }

    fn reo_wnd(&self) -> Duration {
        if !self.reordering_seen && (self.ca_state != CaState::Open || self.sacked_count >= 3) {
            return Duration::ZERO;
        }
        let min_rtt = self.min_rtt.unwrap_or(Duration::ZERO);
        (min_rtt / 4).min(self.srtt)
    }

    /// RACK: packets sent before the newest delivered one and overdue are lost.
    fn detect_losses(&mut self, now: Instant) -> u32 {
        let Some(ref_time) = self.rack_time_sent else {
            return 0;
        };
        let wait = self.rack_rtt + self.reo_wnd();
        let mut lost = 0;
        let mut probe_lost = false;
        let mut next: Option<Instant> = None;
        let una = self.snd_una;
        for (i, p) in self.sent.iter_mut().enumerate() {
            // Original transmissions are in send order: past the reference, nothing is overdue.
            if !p.retransmitted && p.at > ref_time {
                break;
            }
            if !p.in_flight {
                continue;
            }
            let seq = una.wrapping_add(i as u32);
            let before = p.at < ref_time || (p.at == ref_time && seq_lt(seq, self.rack_seq));
            if !before {
                continue;
            }
            let deadline = p.at + wait;
            if now >= deadline {
                p.lost = true;
                p.in_flight = false;
                self.inflight -= 1;
                self.retransmit.push_back(seq);
                lost += 1;
                if self.probe_seq == Some(seq) {
                    lost -= 1; // a lost MTU probe is not congestion
                    probe_lost = true;
                }
            } else {
                next = Some(next.map_or(deadline, |n: Instant| n.min(deadline)));
            }
        }
        self.rack_deadline = next;
        if probe_lost {
            self.probe_lost();
        }
        lost
    }

    fn probe_acked(&mut self) {
        self.probe_seq = None;
        self.mtu = self.probe_size;
        self.probe_count = 0;
        if self.probe_size >= self.cfg.max_mtu.min(MTU_MAX) {
            self.mtu_state = MtuState::Complete;
        } else {
            self.probe_size = (self.probe_size + MTU_STEP).min(self.cfg.max_mtu.min(MTU_MAX));
            self.probe_wanted = true;
        }
    }

    fn probe_lost(&mut self) {
        if let Some(seq) = self.probe_seq.take() {
            let idx = seq_diff(seq, self.snd_una);
            if let Some(p) = usize::try_from(idx).ok().and_then(|i| self.sent.get_mut(i)) {
                p.padding = 0;
            }
            self.probe_count += 1;
            if self.probe_count >= MTU_PROBE_ATTEMPTS {
                self.mtu_state = MtuState::Complete;
            } else {
                self.probe_wanted = true;
            }
        }
    }

    // ---------------------------------------------------------------- timers

    fn schedule_tlp(&mut self, now: Instant) {
        if self.ca_state != CaState::Open || self.sacked_count > 0 || self.sent.is_empty() {
            self.tlp_deadline = None;
            return;
        }
        let mut pto = if self.has_rtt {
            self.srtt * 2
        } else {
            Duration::from_secs(1)
        };
        if self.sent.len() == 1 {
            pto += Duration::from_millis(2);
        }
        let mut at = now + pto;
        if let Some(rto) = self.rto_deadline {
            at = at.min(rto);
        }
        self.tlp_deadline = Some(at);
    }

    fn arm_keep_alive(&mut self, now: Instant) {
        self.keep_alive_deadline = match self.cfg.keep_alive {
            Some(d) if !d.is_zero() && self.remote.is_some() && self.closed.is_none() => {
                Some(now + d)
            }
            _ => None,
        };
    }

    /// The earliest deadline at which [`Stream::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.rto_deadline,
            self.rack_deadline,
            self.tlp_deadline,
            self.zwp_deadline,
            self.keep_alive_deadline,
            self.pacing_deadline,
            self.time_wait_until.filter(|_| self.closed.is_some()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if self.pacing_deadline.is_some_and(|t| now >= t) {
            self.pacing_deadline = None;
        }
        if self.rack_deadline.is_some_and(|t| now >= t) {
            self.rack_deadline = None;
            let lost = self.detect_losses(now);
            if lost > 0 && self.ca_state == CaState::Open {
                self.ca_state = CaState::Recovery;
                self.high_seq = self.snd_nxt;
                self.cc.on_enter_recovery(self.inflight, 0);
            }
        }
        if self.tlp_deadline.is_some_and(|t| now >= t) {
            self.tlp_deadline = None;
            if self.tlp_probe.is_none()
                && self.rtt_samples > self.tlp_rtt_samples
                && !self.sent.is_empty()
            {
                self.tlp_send = true;
                self.tlp_rtt_samples = self.rtt_samples;
                self.rto_deadline = Some(now + self.rto);
            } else if self.rto_deadline.is_none() {
                self.rto_deadline = Some(now + self.rto);
            }
            // Only a probe actually sent re-arms a full RTO (spec §3.5.3); with no probe we
            // "just fall back to the RTO" and keep its pending deadline. (Re-arming here used to
            // push the first RTO of a stream without an RTT sample from 1 s to 2 s, e.g. for an
            // END whose ACK was lost, which then missed the peer's TIME_WAIT.)
        }
        if self.rto_deadline.is_some_and(|t| now >= t) {
            self.on_rto(now);
            if self.closed.is_some() {
                return;
            }
        }
        if self.zwp_deadline.is_some_and(|t| now >= t) {
            self.heartbeat_pending = true;
            self.zwp_deadline = Some(now + self.rto * 2);
        }
        if self.keep_alive_deadline.is_some_and(|t| now >= t) {
            if self.sent.is_empty() {
                self.heartbeat_pending = true;
            }
            self.arm_keep_alive(now);
        }
    }

    fn on_rto(&mut self, now: Instant) {
        self.rto_count += 1;
        // udx-native has no TIME_WAIT: when the ACK of our END is lost after the peer closed,
        // it never answers again and we would time out although every byte was delivered
        // both ways. If only our END is outstanding, the peer's END arrived and our END went
        // unanswered for three RTOs, the peer has closed: finish cleanly.
        let only_end_missing = self
            .sent
            .back()
            .is_some_and(|p| p.end && p.payload.is_empty())
            && self.sent.iter().rev().skip(1).all(|p| p.sacked);
        tracing::trace!(id = self.local_id, rto = self.rto_count, only_end_missing, state = %self.debug_state(), "udx rto");
        if self.rto_count >= 3 && self.remote_ended && only_end_missing && self.write_queued == 0 {
            tracing::debug!(
                id = self.local_id,
                "udx END unacknowledged by a closed peer; closing cleanly"
            );
            self.sent.clear();
            self.sacked_count = 0;
            self.unacked_bytes = 0;
            self.snd_una = self.snd_nxt;
            self.local_ended = true;
            self.events.push_back(StreamEvent::Finished);
            self.close(Ok(()), Some(now));
            return;
        }
        if self.rto_count > MAX_CONSECUTIVE_RTOS {
            tracing::debug!(
                id = self.local_id,
                "udx stream timed out after {} RTOs",
                self.rto_count
            );
            self.close(Err(UdxError::TimedOut), Some(now));
            return;
        }
        self.ca_state = CaState::Loss;
        self.high_seq = self.snd_nxt;
        self.tlp_probe = None;
        self.tlp_deadline = None;
        let wait = self.rack_rtt + self.reo_wnd();
        let una = self.snd_una;
        let mut first = true;
        for (i, p) in self.sent.iter_mut().enumerate() {
            if !p.in_flight {
                continue;
            }
            if first || now >= p.at + wait {
                first = false;
                p.lost = true;
                p.in_flight = false;
                self.inflight -= 1;
                self.retransmit.push_back(una.wrapping_add(i as u32));
            }
        }
        // Retransmit from the lowest sequence number. The queue may still hold packets
        // declared lost earlier; with cwnd = inflight + 1 after an RTO only one goes out per
        // RTO, and a head appended behind them waited RTO after RTO while a receiver whose
        // window is full drops everything except the head: a spurious TimedOut (found with a
        // lossy link and a reader pausing for > 13 s).
        let mut queue: Vec<u32> = self.retransmit.drain(..).collect();
        queue.sort_unstable_by_key(|s| seq_diff(*s, una));
        queue.dedup();
        self.retransmit = queue.into();
        if self.probe_seq.is_some()
            && self
                .retransmit
                .contains(&self.probe_seq.unwrap_or_default())
        {
            self.probe_lost();
        }
        self.cc.on_rto(self.inflight);
        self.rto_deadline = Some(now + self.rto * 2);
    }

    // ---------------------------------------------------------------- transmit

    fn refill(&mut self, now: Instant) {
        let rate = self.cc.pacing_rate();
        if let Some(last) = self.last_refill {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            let cap = (rate * 0.002).max(4.0 * f64::from(MTU_MAX));
            self.tokens = (self.tokens + dt * rate).min(cap.max(self.tokens));
        }
        self.last_refill = Some(now);
    }

    fn paced(&mut self, now: Instant, len: usize) -> bool {
        self.refill(now);
        if self.tokens >= len as f64 {
            return true;
        }
        let rate = self.cc.pacing_rate().max(1.0);
        let wait = Duration::from_secs_f64((len as f64 - self.tokens) / rate);
        self.pacing_deadline = Some(now + wait.max(Duration::from_micros(50)));
        false
    }

    fn header(&self, flags: u8, seq: u32, id: u32) -> Header {
        Header {
            flags,
            data_offset: 0,
            id,
            rwnd: self.rwnd(),
            seq,
            ack: self.rcv_nxt,
        }
    }

    fn sack_blocks(&self) -> Vec<(u32, u32)> {
        let mut blocks: Vec<(u32, u32)> = Vec::new();
        for &key in self.ooo.keys() {
            let seq = key as u32;
            match blocks.last_mut() {
                Some((_, end)) if *end == seq => *end = seq.wrapping_add(1),
                _ => {
                    if blocks.len() == MAX_SACK_BLOCKS {
                        break;
                    }
                    blocks.push((seq, seq.wrapping_add(1)));
                }
            }
        }
        blocks
    }

    fn write_ack(&mut self, out: &mut Vec<u8>, remote: Remote) {
        let blocks = self.sack_blocks();
        let flags = if blocks.is_empty() { 0 } else { FLAG_SACK };
        self.header(flags, self.snd_nxt, remote.id).write(out);
        for (s, e) in blocks {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&e.to_le_bytes());
        }
        self.ack_pending = false;
        self.last_rwnd_sent = self.rwnd();
    }

    /// Writes the next datagram into `out` (cleared first) and says where to send it.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<Transmit> {
        out.clear();
        let remote = self.remote?;
        if self.destroy_pending {
            self.destroy_pending = false;
            self.header(FLAG_DESTROY, self.snd_nxt, remote.id)
                .write(out);
            self.snd_nxt = self.snd_nxt.wrapping_add(1);
            self.close(Err(UdxError::Destroyed), Some(now));
            return Some(Transmit { dest: remote.addr });
        }
        if self.closed.is_some() {
            if self.ack_pending {
                self.write_ack(out, remote);
                return Some(Transmit { dest: remote.addr });
            }
            return None;
        }
        // Piggy-back the ack on data when there is nothing to SACK.
        if self.ack_pending && !self.ooo.is_empty() {
            self.write_ack(out, remote);
            return Some(Transmit { dest: remote.addr });
        }
        if let Some(dest) = self.poll_data(now, out, remote) {
            self.ack_pending = false;
            return Some(Transmit { dest });
        }
        if self.ack_pending {
            self.write_ack(out, remote);
            return Some(Transmit { dest: remote.addr });
        }
        if let Some(msg) = self.messages_out.pop_front() {
            self.header(FLAG_MESSAGE, self.snd_nxt, remote.id)
                .write(out);
            out.extend_from_slice(&msg);
            return Some(Transmit { dest: remote.addr });
        }
        if self.heartbeat_pending {
            self.heartbeat_pending = false;
            self.header(FLAG_HEARTBEAT, self.snd_nxt, remote.id)
                .write(out);
            return Some(Transmit { dest: remote.addr });
        }
        None
    }

    fn app_limited(&self) -> bool {
        self.write_queued < self.max_payload()
            && self.inflight < self.cc.cwnd()
            && self.retransmit.is_empty()
    }

    fn poll_data(&mut self, now: Instant, out: &mut Vec<u8>, remote: Remote) -> Option<SocketAddr> {
        let tlp = std::mem::take(&mut self.tlp_send);
        let cwnd_ok = self.inflight < self.cc.cwnd() || tlp;
        // Retransmissions first (window: cwnd only).
        while let Some(&seq) = self.retransmit.front() {
            let idx = seq_diff(seq, self.snd_una);
            let valid = usize::try_from(idx)
                .ok()
                .and_then(|i| self.sent.get(i))
                .is_some_and(|p| p.lost && !p.sacked);
            if !valid {
                self.retransmit.pop_front();
                continue;
            }
            if !cwnd_ok {
                self.tlp_send = tlp;
                return None;
            }
            let i = idx as usize;
            let len = HEADER_LEN + self.sent[i].payload.len();
            if !self.paced(now, len) {
                self.tlp_send = tlp;
                return None;
            }
            self.retransmit.pop_front();
            return Some(self.send_packet(now, out, i, true));
        }
        // New data (window: cwnd and the peer's receive window).
        let has_new = self.write_queued > 0 || (self.end_queued && self.end_seq.is_none());
        if has_new {
            let mss = self.max_payload();
            let rwnd_pkts = if self.send_rwnd == 0 {
                0
            } else {
                (self.send_rwnd as usize / mss).max(1)
            };
            if self.send_rwnd == 0 && self.sent.is_empty() {
                if self.zwp_deadline.is_none() {
                    self.heartbeat_pending = true;
                    self.zwp_deadline = Some(now + self.rto);
                }
                self.tlp_send = tlp;
                return None;
            }
            if tlp || (cwnd_ok && (self.inflight as usize) < rwnd_pkts) {
                let len = HEADER_LEN + self.write_queued.min(mss);
                if !tlp && !self.paced(now, len) {
                    self.tlp_send = tlp;
                    return None;
                }
                let i = self.packetize(now, remote, mss);
                if tlp {
                    self.tlp_probe = Some(self.snd_nxt.wrapping_sub(1));
                }
                return Some(self.send_packet(now, out, i, false));
            }
            self.tlp_send = tlp;
            return None;
        }
        if tlp {
            // No new data: probe with the highest outstanding packet.
            if let Some(i) = self.sent.iter().rposition(|p| !p.sacked) {
                self.tlp_probe = Some(self.snd_una.wrapping_add(i as u32));
                if self.sent[i].in_flight {
                    self.sent[i].in_flight = false;
                    self.inflight -= 1;
                }
                return Some(self.send_packet(now, out, i, true));
            }
        }
        None
    }

    /// Builds the next new packet from the write queue; returns its index in `sent`.
    fn packetize(&mut self, now: Instant, remote: Remote, mss: usize) -> usize {
        let want = self.write_queued.min(mss);
        let payload = match self.write_queue.front() {
            // The common case: the packet is a range of the front buffer.
            Some(front) if front.len() - self.write_offset >= want && want > 0 => {
                let p = Payload {
                    buf: Some(front.clone()),
                    start: self.write_offset,
                    len: want,
                };
                self.write_offset += want;
                if self.write_offset == front.len() {
                    self.write_queue.pop_front();
                    self.write_offset = 0;
                }
                p
            }
            _ => {
                // It spans buffers (or there is none: an END): gather it.
                let mut bytes = Vec::with_capacity(want);
                while bytes.len() < mss {
                    let Some(front) = self.write_queue.front() else {
                        break;
                    };
                    let take = (front.len() - self.write_offset).min(mss - bytes.len());
                    bytes.extend_from_slice(&front[self.write_offset..self.write_offset + take]);
                    self.write_offset += take;
                    if self.write_offset == front.len() {
                        self.write_queue.pop_front();
                        self.write_offset = 0;
                    }
                }
                let len = bytes.len();
                Payload {
                    buf: (len > 0).then(|| Arc::new(bytes)),
                    start: 0,
                    len,
                }
            }
        };
        self.write_queued -= payload.len();
        self.unacked_bytes += payload.len();
        // END travels alone, after the last data packet: then "only the END is unacknowledged"
        // means every byte was delivered, which lets on_rto finish cleanly against a peer
        // without TIME_WAIT.
        let end = self.end_queued && self.write_queued == 0 && payload.is_empty();
        let seq = self.snd_nxt;
        if end {
            self.end_seq = Some(seq);
        }
        let mut padding = 0u8;
        if self.probe_wanted
            && self.probe_seq.is_none()
            && self.change_seq.is_none()
            && !payload.is_empty()
        {
            let size = self.overhead() + payload.len();
            if let Some(pad) = usize::from(self.probe_size).checked_sub(size) {
                if pad <= 255 && size + pad - 28 <= MAX_DATAGRAM {
                    padding = pad as u8;
                    self.probe_seq = Some(seq);
                    self.probe_wanted = false;
                }
            }
        }
        let app_limited = self.app_limited();
        if app_limited {
            self.app_limited_until = self.delivered + (self.inflight as u64 + 1) * mss as u64;
        }
        if self.sent.is_empty() {
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        self.sent.push_back(Sent {
            payload,
            end,
            at: now,
            retransmitted: false,
            sacked: false,
            lost: false,
            in_flight: false,
            padding,
            dest: remote,
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            app_limited: self.delivered < self.app_limited_until,
        });
        self.snd_nxt = self.snd_nxt.wrapping_add(1);
        self.sent.len() - 1
    }

    fn send_packet(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
        i: usize,
        retransmit: bool,
    ) -> SocketAddr {
        let seq = self.snd_una.wrapping_add(i as u32);
        let rwnd = self.rwnd();
        let ack = self.rcv_nxt;
        let p = &mut self.sent[i];
        if retransmit {
            p.retransmitted = true;
            p.lost = false;
            p.padding = 0;
            p.delivered = self.delivered;
            p.delivered_time = self.delivered_time;
            p.first_sent_time = self.first_sent_time;
        }
        p.at = now;
        if !p.in_flight {
            p.in_flight = true;
            self.inflight += 1;
        }
        let flags =
            if p.payload.is_empty() { 0 } else { FLAG_DATA } | if p.end { FLAG_END } else { 0 };
        Header {
            flags,
            data_offset: p.padding,
            id: p.dest.id,
            rwnd,
            seq,
            ack,
        }
        .write(out);
        out.resize(out.len() + usize::from(p.padding), 0);
        out.extend_from_slice(p.payload.bytes());
        let len = out.len();
        let dest = p.dest.addr;
        self.tokens -= len as f64;
        self.last_rwnd_sent = rwnd;
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now + self.rto);
        }
        if !retransmit {
            self.schedule_tlp(now);
        }
        self.keep_alive_deadline = None;
        self.mtu_first_ack_check();
        dest
    }

    fn mtu_first_ack_check(&mut self) {
        if self.mtu_state == MtuState::Base && self.delivered > 0 {
            self.mtu_state = MtuState::Search;
            self.probe_wanted = true;
            self.probe_size = MTU_BASE;
        }
    }
}

/// Frees an empty queue's capacity once a burst grew it: an idle stream keeps no buffers.
fn shrink_idle<T>(q: &mut VecDeque<T>) {
    if q.is_empty() && q.capacity() > 8 {
        *q = VecDeque::new();
    }
}

fn clone_meta(p: &Sent) -> Sent {
    Sent {
        payload: Payload::default(),
        end: p.end,
        at: p.at,
        retransmitted: p.retransmitted,
        sacked: p.sacked,
        lost: p.lost,
        in_flight: p.in_flight,
        padding: p.padding,
        dest: p.dest,
        delivered: p.delivered,
        delivered_time: p.delivered_time,
        first_sent_time: p.first_sent_time,
        app_limited: p.app_limited,
    }
}
