//! Hostile and malformed datagrams addressed to a live stream never panic the engine, never
//! corrupt or stall the legitimate transfer, and never grow its buffers past the receive window
//! (spec `udx.md` §1.3, §2.1, §3.3, §3.4, §8; UDX has no source-address check, so anyone who
//! knows a stream id can inject).
//!
//! While A and B exchange data both ways over a lossy, reordering link, an attacker who sees
//! the traffic (so knows ids and roughly the current seq/ack) injects tens of thousands of
//! datagrams generated with the seeded `testing::Rng`: random bytes with random flags, runts,
//! `data_offset` past the end, SACKs whose blocks are all invalid (reversed, empty, below
//! snd.una, beyond snd.nxt, more than 50), acks for data never sent, huge jumps of seq in both
//! directions, zero and random windows, DATA far ahead of rcv.nxt, heartbeats and junk messages.
//! Every injection that could forge in-window data (which no transport without authentication
//! can tell apart: that is secret-stream's job) is excluded by construction; DESTROY is tested
//! separately, where the required outcome is a typed `Reset`. Also: junk far ahead is bounded by
//! a small window, and a peer that ignores flow control cannot make the receiver buffer more
//! than about one window. Deterministic (seeded) and on a virtual clock.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use common::udx_sim::Pair;
use p2pswarm::testing::{LinkConfig, Rng};
use p2pswarm::udx::packet::{
    FLAG_DATA, FLAG_DESTROY, FLAG_END, FLAG_HEARTBEAT, FLAG_MESSAGE, FLAG_SACK,
};
use p2pswarm::udx::{Datagram, Header, Packet, StreamConfig, UdxError};

/// The latest legitimate header each side put on the wire.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// Highest seq + 1 of a DATA/END packet (a lower bound of snd.nxt).
    snd: u32,
    /// The ack field (the sender's rcv.nxt).
    ack: u32,
    /// The seq field of its newest packet.
    seq: u32,
}

#[derive(Debug, Default, Clone, Copy)]
struct Observed {
    a: Seen,
    b: Seen,
}

fn observe(p: &mut Pair) -> Rc<RefCell<Observed>> {
    let obs = Rc::new(RefCell::new(Observed::default()));
    let o2 = obs.clone();
    let a_addr = p.a.addr;
    p.filter = Some(Box::new(move |_, from, _, d| {
        let h = Packet::parse(d).expect("our own datagrams parse").header;
        let mut o = o2.borrow_mut();
        let s = if from == a_addr { &mut o.a } else { &mut o.b };
        if h.has(FLAG_DATA | FLAG_END) && p2pswarm::udx::packet::seq_le(s.snd, h.seq) {
            s.snd = h.seq.wrapping_add(1);
        }
        s.ack = h.ack;
        s.seq = h.seq;
        true
    }));
    obs
}

fn range(rng: &mut Rng, lo: u32, hi: u32) -> u32 {
    lo + (rng.next_u64() % u64::from(hi - lo)) as u32
}

fn pick<T: Copy>(rng: &mut Rng, xs: &[T]) -> T {
    xs[(rng.next_u64() % xs.len() as u64) as usize]
}

fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    rng.fill(&mut v);
    v
}

/// "Far away" in sequence space: at least 2^20 from anything legitimate.
fn far(rng: &mut Rng) -> u32 {
    range(rng, 1 << 20, 1 << 30)
}

/// What kind of hostile datagram was made (for the tally).
const KINDS: [&str; 10] = [
    "random bytes",
    "runt",
    "data_offset past end",
    "garbage SACK",
    "ack of unsent data",
    "huge seq jump",
    "zero/random window",
    "DATA far ahead",
    "heartbeat",
    "junk message",
];

/// One hostile datagram for the stream `id` whose own traffic is `me` and whose peer's is
/// `peer`. Returns (kind, datagram).
fn hostile(rng: &mut Rng, id: u32, me: Seen, peer: Seen) -> (usize, Vec<u8>) {
    let kind = (rng.next_u64() % KINDS.len() as u64) as usize;
    let mut h = Header {
        flags: 0,
        data_offset: 0,
        id,
        rwnd: rng.next_u64() as u32,
        seq: rng.next_u64() as u32,
        ack: rng.next_u64() as u32,
    };
    // A plausible ack: the newest our peer sent (<= our snd.nxt, so it passes validity).
    let valid_ack = peer.ack;
    // A plausible seq for a packet from the peer.
    let peer_seq = peer.seq;
    let mut d = Vec::new();
    match kind {
        0 => {
            // Random everything, except the abort bit (tested on its own).
            let len = range(rng, 20, 2100) as usize;
            d = bytes(rng, len);
            d[0] = 0xff;
            d[1] = 0x01;
            d[2] &= !FLAG_DESTROY;
            d[4..8].copy_from_slice(&id.to_le_bytes());
            if rng.chance(0.5) {
                d[3] = 0; // a parseable one half of the time
            }
        }
        1 => {
            let len = range(rng, 0, 20) as usize;
            d = bytes(rng, len);
            if len >= 2 {
                d[0] = 0xff;
                d[1] = 0x01;
            }
        }
        2 => {
            h.flags = rng.next_u64() as u8 & !FLAG_DESTROY;
            let extra = range(rng, 0, 200) as usize;
            h.data_offset = range(rng, extra as u32 + 1, 256) as u8;
            h.write(&mut d);
            d.extend(bytes(rng, extra));
        }
        3 => {
            h.flags = FLAG_SACK;
            h.seq = peer_seq;
            h.ack = valid_ack;
            h.write(&mut d);
            let n = range(rng, 0, 64);
            for _ in 0..n {
                let (s, e) = match rng.next_u64() % 5 {
                    // reversed around the live range
                    0 => {
                        let x = valid_ack.wrapping_add(range(rng, 1, 100));
                        (x, x.wrapping_sub(range(rng, 1, 50)))
                    }
                    // empty
                    1 => {
                        let x = valid_ack.wrapping_add(range(rng, 0, 100));
                        (x, x)
                    }
                    // starting far below snd.una
                    2 => (
                        valid_ack.wrapping_sub(far(rng)),
                        valid_ack.wrapping_add(range(rng, 1, 100)),
                    ),
                    // ending far beyond snd.nxt
                    3 => (
                        valid_ack.wrapping_add(range(rng, 0, 10)),
                        me.snd.wrapping_add(far(rng)),
                    ),
                    // nowhere near anything
                    _ => {
                        let x = me.snd.wrapping_add(far(rng));
                        (x, x.wrapping_add(far(rng)))
                    }
                };
                d.extend_from_slice(&s.to_le_bytes());
                d.extend_from_slice(&e.to_le_bytes());
            }
            if rng.chance(0.3) {
                let n = range(rng, 1, 8) as usize;
                d.extend(bytes(rng, n)); // partial trailing block
            }
        }
        4 => {
            h.flags = pick(rng, &[0, FLAG_MESSAGE, FLAG_SACK, FLAG_HEARTBEAT]);
            h.seq = peer_seq;
            h.ack = me.snd.wrapping_add(far(rng));
            h.write(&mut d);
            if h.has(FLAG_MESSAGE) {
                let n = range(rng, 0, 64) as usize;
                d.extend(bytes(rng, n));
            }
        }
        5 => {
            h.flags = pick(
                rng,
                &[0, FLAG_SACK, FLAG_HEARTBEAT, FLAG_MESSAGE, FLAG_DATA],
            );
            h.seq = if rng.chance(0.5) {
                peer_seq.wrapping_add(far(rng))
            } else {
                peer_seq.wrapping_sub(far(rng))
            };
            h.ack = if rng.chance(0.5) { valid_ack } else { h.ack };
            h.rwnd = pick(rng, &[0, 1, h.rwnd]);
            h.write(&mut d);
            if h.has(FLAG_DATA | FLAG_MESSAGE) {
                let n = range(rng, 1, 1400) as usize;
                d.extend(bytes(rng, n));
            }
        }
        6 => {
            // The exact current seq/ack with a zero (or tiny, or huge) window: a legitimate
            // looking window update that the next real ACK overrides.
            h.seq = peer_seq;
            h.ack = valid_ack;
            h.rwnd = pick(rng, &[0, 0, 1, 1000, u32::MAX]);
            h.write(&mut d);
        }
        7 => {
            // DATA (not END) beyond anything the legitimate sender will reach, within and
            // beyond the out-of-order horizon, acking unsent data so no window update applies.
            h.flags = FLAG_DATA;
            h.seq = me.ack.wrapping_add(range(rng, 4000, 40_000));
            h.ack = me.snd.wrapping_add(far(rng));
            h.write(&mut d);
            let n = range(rng, 1, 1400) as usize;
            d.extend(bytes(rng, n));
        }
        8 => {
            h.flags = FLAG_HEARTBEAT | (rng.next_u64() as u8 & (FLAG_SACK | FLAG_MESSAGE));
            h.write(&mut d);
        }
        _ => {
            h.flags = FLAG_MESSAGE;
            h.write(&mut d);
            let n = range(rng, 0, 2028) as usize;
            d.extend(bytes(rng, n));
        }
    }
    (kind, d)
}

const MAX_PAYLOAD: usize = 1452;

/// Per-side bound: what the stream may hold for the application and out of order.
fn assert_bounded(p: &Pair, window: usize) -> usize {
    let mut worst = 0;
    for (side, id) in [(&p.a, 1), (&p.b, 2)] {
        if let Some(s) = side.socket.stream(id) {
            let held = s.readable() + s.out_of_order_buffered();
            assert!(
                s.out_of_order_buffered() <= window,
                "stream {id}: {} bytes out of order with a {window}-byte window",
                s.out_of_order_buffered()
            );
            assert!(
                held <= window + 2 * MAX_PAYLOAD,
                "stream {id}: {held} bytes buffered with a {window}-byte window"
            );
            worst = worst.max(held);
        }
    }
    worst
}

#[test]
fn live_transfer_survives_a_flood_of_hostile_datagrams() {
    const WINDOW: usize = p2pswarm::udx::DEFAULT_RECV_WINDOW;
    const BYTES_A: usize = 2 * 1024 * 1024;
    const BYTES_B: usize = 1024 * 1024;
    const PER_STEP: usize = 4;
    const MAX_TOTAL: usize = 80_000;
    let link = LinkConfig {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(3),
        loss: 0.01,
        duplicate: 0.01,
        ..LinkConfig::default()
    };
    let mut p = Pair::new(1, link, BYTES_A, BYTES_B);
    let obs = observe(&mut p);
    let mut rng = Rng::new(0xbad_5eed);
    let attacker: SocketAddr = "10.6.6.6:666".parse().expect("addr");
    let mut tally = [0usize; KINDS.len()];
    let (mut injected, mut raw, mut worst) = (0, 0, 0);
    let mut flood_until = p.start;
    while !p.transfer_done() {
        assert!(
            p.elapsed() < Duration::from_secs(300),
            "stalled: a {:?} b {:?}, received {} / {}; A: {}; B: {}",
            p.a.closed,
            p.b.closed,
            p.b.received,
            p.a.received,
            p.a.socket
                .stream(1)
                .map(p2pswarm::udx::Stream::debug_state)
                .unwrap_or_default(),
            p.b.socket
                .stream(2)
                .map(p2pswarm::udx::Stream::debug_state)
                .unwrap_or_default()
        );
        // A few hostile datagrams at the two streams before every step of the real exchange
        // (from the attacker's own address or spoofing the peer's), for as long as it lasts.
        if injected < MAX_TOTAL {
            let now = p.now();
            flood_until = now;
            for _ in 0..PER_STEP {
                let o = *obs.borrow();
                let to_a = rng.chance(0.5);
                let (id, me, peer) = if to_a { (1, o.a, o.b) } else { (2, o.b, o.a) };
                let (kind, d) = hostile(&mut rng, id, me, peer);
                tally[kind] += 1;
                let from = if rng.chance(0.5) {
                    attacker
                } else if to_a {
                    p.b.addr
                } else {
                    p.a.addr
                };
                let side = if to_a { &mut p.a } else { &mut p.b };
                if side.socket.handle_datagram(now, from, &d) == Datagram::Raw {
                    raw += 1;
                }
                injected += 1;
            }
        }
        assert!(p.step(), "the exchange went idle before closing");
        worst = worst.max(assert_bounded(&p, WINDOW));
    }
    let mut junk_messages = 0;
    for (name, side, want) in [("A", &p.a, BYTES_B), ("B", &p.b, BYTES_A)] {
        assert_eq!(side.closed, Some(Ok(())), "{name} finished cleanly");
        assert_eq!(side.received, want, "{name} received every byte, verified");
        junk_messages += side.messages.len();
    }
    let closed = p.a.closed_at.expect("a").max(p.b.closed_at.expect("b"));
    eprintln!(
        "{injected} hostile datagrams over {:?} ({raw} not UDX for the socket) during a \
         {BYTES_A}+{BYTES_B} byte exchange; both closed cleanly at {:?}; at most {worst} bytes \
         buffered per stream (window {WINDOW}); {junk_messages} junk messages surfaced to the \
         applications; kinds: {}",
        flood_until - p.start,
        closed - p.start,
        KINDS
            .iter()
            .zip(tally)
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        injected >= 20_000,
        "thousands of hostile datagrams ({injected})"
    );
    assert!(
        flood_until >= closed || injected >= MAX_TOTAL,
        "the flood lasted the whole exchange"
    );
    assert_eq!(
        raw, tally[1],
        "exactly the runts are not UDX; everything else is consumed by the stream"
    );
}

/// DATA far ahead of rcv.nxt fills at most the receive window (spec §3.3: a Rust receiver
/// caps out-of-order buffering), however much arrives.
#[test]
fn junk_far_ahead_is_bounded_by_the_window() {
    const WINDOW: usize = 64 * 1024;
    let cfg = StreamConfig {
        recv_window: WINDOW,
        ..StreamConfig::default()
    };
    let mut p = Pair::with_config(2, LinkConfig::default(), 0, 0, cfg);
    p.a.end_after_eof = true;
    p.b.end_after_eof = true;
    let mut rng = Rng::new(7);
    let now = p.now();
    for i in 0..20_000u32 {
        let mut d = Vec::new();
        Header {
            flags: FLAG_DATA,
            data_offset: 0,
            id: 2,
            rwnd: 0,
            seq: range(&mut rng, 1, 20_000),
            ack: 0,
        }
        .write(&mut d);
        d.extend(bytes(&mut rng, 1 + (i as usize % 1400)));
        p.b.socket.handle_datagram(now, p.a.addr, &d);
        let s = p.b.socket.stream(2).expect("b");
        assert!(s.out_of_order_buffered() <= WINDOW);
        assert_eq!(s.readable(), 0, "nothing at rcv.nxt was injected");
    }
    let held = p.b.socket.stream(2).expect("b").out_of_order_buffered();
    eprintln!("20000 junk DATA packets ahead: {held} bytes held (window {WINDOW})");
    assert!(held > WINDOW / 2, "the junk did fill the window ({held})");
    // Its ACKs advertise the (now closed) window truthfully; no panic, no growth.
    let mut buf = Vec::new();
    let mut acks = 0;
    while let Some(_t) = p.b.socket.poll_transmit(now, &mut buf) {
        let h = Packet::parse(&buf).expect("parse").header;
        assert!(h.rwnd as usize <= WINDOW - held);
        acks += 1;
    }
    assert!(acks >= 1);
}

/// A peer that ignores our receive window and keeps sending in-order data while our
/// application is not reading cannot make us buffer more than about twice the window: the
/// excess is dropped (and not acknowledged, so an honest sender would retransmit it later).
#[test]
fn sender_ignoring_the_window_cannot_grow_the_buffer() {
    const WINDOW: usize = 64 * 1024;
    let cfg = StreamConfig {
        recv_window: WINDOW,
        ..StreamConfig::default()
    };
    let mut p = Pair::with_config(3, LinkConfig::default(), 0, 0, cfg);
    p.a.end_after_eof = true;
    p.b.end_after_eof = true;
    p.b.read_paused_until = Some(p.start + Duration::from_secs(3600));
    let now = p.now();
    let mut last_ack = 0;
    for seq in 0..2000u32 {
        let mut d = Vec::new();
        Header {
            flags: FLAG_DATA,
            data_offset: 0,
            id: 2,
            rwnd: 4 << 20,
            seq,
            ack: 0,
        }
        .write(&mut d);
        d.extend(vec![seq as u8; 1132]);
        p.b.socket.handle_datagram(now, p.a.addr, &d);
        let mut buf = Vec::new();
        while p.b.socket.poll_transmit(now, &mut buf).is_some() {
            last_ack = Packet::parse(&buf).expect("parse").header.ack;
        }
    }
    let s = p.b.socket.stream(2).expect("b");
    let held = s.readable() + s.out_of_order_buffered();
    eprintln!(
        "2000 in-order packets ignoring a {WINDOW}-byte window: {held} bytes held, ack {last_ack}"
    );
    // The engine keeps a slack of one more window (>= 64 KiB) for honest overshoot.
    let limit = WINDOW + WINDOW.max(64 * 1024);
    assert!(
        held <= limit + MAX_PAYLOAD,
        "{held} bytes buffered with a {WINDOW}-byte window"
    );
    assert!(
        held >= limit - 1132,
        "everything up to the limit was accepted ({held})"
    );
    assert_eq!(
        last_ack as usize,
        held / 1132,
        "only what was kept is acknowledged"
    );
}

/// Random datagrams with the DESTROY bit: a blind DESTROY with seq >= rcv.nxt resets the
/// stream (the udx-native rule, spec §3.3) — the transfer then fails with a typed error on
/// both sides, never a panic or a hang.
#[test]
fn random_destroys_fail_with_a_typed_error() {
    for seed in 1..=4u64 {
        let mut p = Pair::new(seed, LinkConfig::default(), 1024 * 1024, 1024 * 1024);
        p.allow_raw = true;
        let obs = observe(&mut p);
        let mut rng = Rng::new(seed * 77);
        p.run_until(Duration::from_secs(60), |p| p.b.received > 100_000);
        let now = p.now();
        let target_a = rng.chance(0.5);
        let mut resets = 0;
        for _ in 0..1000 {
            let o = *obs.borrow();
            let (id, me, peer) = if target_a {
                (1, o.a, o.b)
            } else {
                (2, o.b, o.a)
            };
            let (_, mut d) = hostile(&mut rng, id, me, peer);
            if d.len() < 20 {
                continue;
            }
            d[2] |= FLAG_DESTROY;
            let side = if target_a { &mut p.a } else { &mut p.b };
            side.socket
                .handle_datagram(now, "10.6.6.6:666".parse().expect("addr"), &d);
            if side
                .socket
                .stream(id)
                .is_none_or(p2pswarm::udx::Stream::is_closed)
            {
                resets += 1;
                break;
            }
        }
        assert_eq!(resets, 1, "a blind DESTROY resets within a few tries");
        p.run_until(Duration::from_secs(120), |p| {
            p.a.closed.is_some() && p.b.closed.is_some()
        });
        let (victim, other) = if target_a { (&p.a, &p.b) } else { (&p.b, &p.a) };
        assert_eq!(victim.closed, Some(Err(UdxError::Reset)));
        // The victim vanished without a word: the other side times out (it has data in
        // flight) — a typed error too.
        assert_eq!(other.closed, Some(Err(UdxError::TimedOut)));
    }
}

/// Two single-datagram attacks that used to stall a stream for good (no data, no error, no
/// timeout — zero-window probes and idle streams never time out):
/// * an END with a seq far ahead was remembered as the peer's END, so the real END was
///   ignored and EOF never came;
/// * an ACK with a valid ack but a huge seq jump won the window-update rule (wl1) once and for
///   all, so its zero window could never be replaced by a real one.
///
/// Both are now ignored beyond the out-of-order horizon and the transfer completes.
#[test]
fn single_forged_packets_cannot_stall_the_stream() {
    for (label, target_b) in [
        ("forged END far ahead", true),
        ("zero window from far ahead", false),
    ] {
        let mut p = Pair::new(5, LinkConfig::default(), 1024 * 1024, 0);
        let obs = observe(&mut p);
        p.run_until(Duration::from_secs(60), |p| p.b.received > 200_000);
        let o = *obs.borrow();
        let mut d = Vec::new();
        if target_b {
            // To B: END (alone) at B's rcv.nxt + 2^24.
            Header {
                flags: FLAG_END,
                data_offset: 0,
                id: 2,
                rwnd: 4 << 20,
                seq: o.b.ack.wrapping_add(1 << 24),
                ack: o.a.ack,
            }
            .write(&mut d);
        } else {
            // To A: a pure ACK that looks like B's (valid ack) but with seq far ahead and a
            // zero window.
            Header {
                flags: 0,
                data_offset: 0,
                id: 1,
                rwnd: 0,
                seq: o.b.seq.wrapping_add(1 << 24),
                ack: o.b.ack,
            }
            .write(&mut d);
        }
        let now = p.now();
        let side = if target_b { &mut p.b } else { &mut p.a };
        side.socket
            .handle_datagram(now, "10.6.6.6:666".parse().expect("addr"), &d);
        p.run_until(Duration::from_secs(120), Pair::transfer_done);
        assert_eq!(p.a.closed, Some(Ok(())), "{label}: A");
        assert_eq!(p.b.closed, Some(Ok(())), "{label}: B");
        assert_eq!(p.b.received, 1024 * 1024, "{label}");
        eprintln!("{label}: ignored, transfer done at {:?}", p.elapsed());
    }
}
