//! Two UDX sockets on the in-memory network, each with one stream connected to the other, and
//! an application on each side that writes a known byte stream, reads and verifies the peer's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pswarm::testing::{LinkConfig, SimNet};
use p2pswarm::udx::{Datagram, Remote, Socket, SocketEvent, StreamConfig, StreamEvent, UdxError};

use super::Xorshift;

/// One side: its socket and its application state.
pub struct Side {
    pub addr: SocketAddr,
    pub socket: Socket,
    pub id: u32,
    pub to_send: usize,
    pub sent: usize,
    pub gen_out: Xorshift,
    pub gen_in: Xorshift,
    pub received: usize,
    pub ended_write: bool,
    pub got_end: bool,
    pub finished: bool,
    pub closed: Option<Result<(), UdxError>>,
    pub messages: Vec<Vec<u8>>,
    /// Stop reading (to exercise the receive window) until this much time passed.
    pub read_paused_until: Option<Instant>,
    /// End only after the peer's END arrived.
    pub end_after_eof: bool,
    /// Virtual times at which the application saw `End`, `Finished` and `Closed`.
    pub got_end_at: Option<Instant>,
    pub finished_at: Option<Instant>,
    pub closed_at: Option<Instant>,
}

/// Sees every datagram a side hands to the network: `(now, from, to, bytes)`; `false` drops it.
pub type Filter = Box<dyn FnMut(Instant, SocketAddr, SocketAddr, &[u8]) -> bool>;

pub struct Pair {
    pub net: SimNet,
    pub a: Side,
    pub b: Side,
    pub start: Instant,
    buf: Vec<u8>,
    /// Optional link-level observer/dropper applied before the network (see [`Filter`]).
    pub filter: Option<Filter>,
    /// Datagrams the filter dropped.
    pub filtered: u64,
    /// Accept datagrams a socket reports as raw (e.g. for a stream already gone) instead of
    /// panicking; they are counted in `raw_received`.
    pub allow_raw: bool,
    /// Datagrams delivered to a socket that did not route them to a stream.
    pub raw_received: u64,
}

const WRITE_CHUNK: usize = 64 * 1024;
const WRITE_BUFFER: usize = 2 * 1024 * 1024;

impl Side {
    fn new(
        now: Instant,
        addr: SocketAddr,
        id: u32,
        seed_out: u32,
        seed_in: u32,
        bytes: usize,
        cfg: StreamConfig,
    ) -> Self {
        let mut socket = Socket::new();
        socket.create_stream(now, id, cfg).expect("stream");
        Self {
            addr,
            socket,
            id,
            to_send: bytes,
            sent: 0,
            gen_out: Xorshift::new(seed_out),
            gen_in: Xorshift::new(seed_in),
            received: 0,
            ended_write: false,
            got_end: false,
            finished: false,
            closed: None,
            messages: Vec::new(),
            read_paused_until: None,
            end_after_eof: false,
            got_end_at: None,
            finished_at: None,
            closed_at: None,
        }
    }

    /// The application's turn: write while the buffer has room, read and verify everything.
    fn app(&mut self, now: Instant) {
        while let Some(ev) = self.socket.poll_event() {
            let SocketEvent::Stream(_, ev) = ev;
            match ev {
                StreamEvent::End => {
                    self.got_end = true;
                    self.got_end_at.get_or_insert(now);
                }
                StreamEvent::Finished => {
                    self.finished = true;
                    self.finished_at.get_or_insert(now);
                }
                StreamEvent::Closed(r) => {
                    self.closed = Some(r);
                    self.closed_at.get_or_insert(now);
                }
                StreamEvent::Message(m) => self.messages.push(m),
                _ => {}
            }
        }
        let id = self.id;
        let Some(s) = self.socket.stream_mut(id) else {
            return;
        };
        while !s.is_closed() && self.sent < self.to_send && s.write_buffered() < WRITE_BUFFER {
            let n = WRITE_CHUNK.min(self.to_send - self.sent);
            s.write(self.gen_out.bytes(n)).expect("write");
            self.sent += n;
        }
        if !s.is_closed()
            && self.sent == self.to_send
            && !self.ended_write
            && (!self.end_after_eof || self.got_end)
        {
            s.end().expect("end");
            self.ended_write = true;
        }
        if self.read_paused_until.is_some_and(|t| now < t) {
            return;
        }
        while let Some(chunk) = s.read() {
            let want = self.gen_in.bytes(chunk.len());
            assert!(
                chunk == want,
                "corrupted data at offset {} on stream {id}",
                self.received
            );
            self.received += chunk.len();
        }
    }
}

impl Pair {
    /// Side a (id 1, at 10.0.0.1:1000) and side b (id 2, at 10.0.0.2:2000), connected.
    pub fn new(seed: u64, link: LinkConfig, bytes_a: usize, bytes_b: usize) -> Self {
        Self::with_config(seed, link, bytes_a, bytes_b, StreamConfig::default())
    }

    pub fn with_config(
        seed: u64,
        link: LinkConfig,
        bytes_a: usize,
        bytes_b: usize,
        cfg: StreamConfig,
    ) -> Self {
        Self::with_configs(seed, link, bytes_a, bytes_b, cfg.clone(), cfg)
    }

    /// Like [`Pair::with_config`] with a separate stream configuration per side.
    pub fn with_configs(
        seed: u64,
        link: LinkConfig,
        bytes_a: usize,
        bytes_b: usize,
        cfg_a: StreamConfig,
        cfg_b: StreamConfig,
    ) -> Self {
        let start = Instant::now();
        let a_addr: SocketAddr = "10.0.0.1:1000".parse().expect("addr");
        let b_addr: SocketAddr = "10.0.0.2:2000".parse().expect("addr");
        let mut a = Side::new(
            start,
            a_addr,
            1,
            super::INITIATOR_SEED,
            super::RESPONDER_SEED,
            bytes_a,
            cfg_a,
        );
        let mut b = Side::new(
            start,
            b_addr,
            2,
            super::RESPONDER_SEED,
            super::INITIATOR_SEED,
            bytes_b,
            cfg_b,
        );
        a.socket
            .connect(
                start,
                1,
                Remote {
                    id: 2,
                    addr: b_addr,
                },
            )
            .expect("connect");
        b.socket
            .connect(
                start,
                2,
                Remote {
                    id: 1,
                    addr: a_addr,
                },
            )
            .expect("connect");
        Self {
            net: SimNet::new(start, seed, link),
            a,
            b,
            start,
            buf: Vec::new(),
            filter: None,
            filtered: 0,
            allow_raw: false,
            raw_received: 0,
        }
    }

    pub fn now(&self) -> Instant {
        self.net.now()
    }

    pub fn elapsed(&self) -> Duration {
        self.net.now() - self.start
    }

    /// One step: applications act, sockets transmit, time advances to the next event, the due
    /// datagrams and timers are processed. `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let now = self.net.now();
        for side in [&mut self.a, &mut self.b] {
            side.app(now);
            while let Some(t) = side.socket.poll_transmit(now, &mut self.buf) {
                assert!(
                    self.buf.len() <= 2048,
                    "datagram of {} bytes",
                    self.buf.len()
                );
                if let Some(f) = self.filter.as_mut() {
                    if !f(now, side.addr, t.dest, &self.buf) {
                        self.filtered += 1;
                        continue;
                    }
                }
                self.net.send(side.addr, t.dest, &self.buf);
            }
        }
        // The end of an application's reading pause is an event too.
        let resume = |s: &Side| s.read_paused_until.filter(|t| *t > now);
        let next = [
            self.net.next_arrival(),
            self.a.socket.poll_timeout(),
            self.b.socket.poll_timeout(),
            resume(&self.a),
            resume(&self.b),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { return false };
        self.net.advance_to(next);
        let now = self.net.now();
        while let Some((from, to, data)) = self.net.pop_due() {
            let side = if to == self.a.addr {
                &mut self.a
            } else {
                &mut self.b
            };
            let r = side.socket.handle_datagram(now, from, &data);
            if r == Datagram::Raw {
                assert!(self.allow_raw, "a stream datagram was not recognised");
                self.raw_received += 1;
            }
        }
        self.a.socket.handle_timeout(now);
        self.b.socket.handle_timeout(now);
        true
    }

    /// Steps until `done` holds, panicking after `limit` of virtual time.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) {
        let mut steps = 0u64;
        while !done(self) {
            assert!(
                self.elapsed() < limit,
                "not done after {:?} of virtual time ({steps} steps)",
                self.elapsed()
            );
            if !self.step() {
                // Nothing scheduled: let the applications act once more, then re-check.
                let now = self.net.now();
                self.a.app(now);
                self.b.app(now);
                if done(self) {
                    return;
                }
                assert!(self.step(), "deadlock: nothing left to happen and not done");
            }
            steps += 1;
            if std::env::var("UDX_TRACE").is_ok() && steps % 500 == 0 {
                let s = self.a.socket.stream(1).expect("s");
                eprintln!(
                    "t={:?} cwnd/pacing={:?} rtt={:?} mtu={} recv_b={} {}",
                    self.elapsed(),
                    s.congestion(),
                    s.rtt(),
                    s.mtu(),
                    self.b.received,
                    s.debug_state()
                );
            }
        }
    }

    /// Both transfers complete and both streams closed cleanly.
    pub fn transfer_done(&self) -> bool {
        self.a.closed.is_some() && self.b.closed.is_some()
    }
}
