//! Unreliable MESSAGE datagrams and the 32-bit sequence wrap (spec `udx.md` §5.1, §3.1, test
//! plan items 9 and 16).
//!
//! Messages: both sides send messages of 1..2028 bytes interleaved with a bulk transfer each
//! way, and keep sending after A's END was acknowledged and after B saw A's EOF; every message
//! put on the (lossless, reordering) wire arrives exactly once and intact, none consumes a
//! sequence number or draws an ACK, and the byte streams are unaffected.
//!
//! Wrap: a transfer of well over 1000 packets each way under 5 % loss with reordering, with A
//! starting at sequence 0xFFFF_FF00 (`StreamConfig::initial_seq` / `Stream::set_initial_ack`)
//! and B at 0x7FFF_FFF0 (crossing the serial-arithmetic sign boundary), completes intact and
//! is packet for packet the same run as from ISN 0 (seqs shifted by the ISN, same timing); and
//! flow control (the wl1/wl2 window-update rule) works from the first packet in both setups.
//! Deterministic (seeded) and on a virtual clock.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::udx_sim::Pair;
use p2pswarm::testing::LinkConfig;
use p2pswarm::udx::packet::{FLAG_DATA, FLAG_END, FLAG_MESSAGE};
use p2pswarm::udx::{Packet, Socket, StreamConfig, UdxError};

const MESSAGE_SIZES: [usize; 6] = [1, 57, 1000, 1132, 1452, 2028];

/// A message tagged with its sender and index, the rest a pattern derived from both.
fn message(from: u8, i: u32) -> Vec<u8> {
    let len = MESSAGE_SIZES[i as usize % MESSAGE_SIZES.len()].max(5);
    let mut m = vec![from];
    m.extend_from_slice(&i.to_le_bytes());
    m.extend((5..len).map(|k| (k as u32 ^ i.wrapping_mul(31) ^ u32::from(from)) as u8));
    m
}

#[derive(Debug, Default)]
struct WireCount {
    /// MESSAGE datagrams that left each side, by (sender tag, index): (count, first sent at).
    messages: HashMap<(u8, u32), (usize, Instant)>,
    /// Non-message datagrams that left each side, by sender tag.
    others: HashMap<u8, usize>,
}

#[test]
fn messages_interleaved_with_bulk_and_after_end() {
    let link = LinkConfig {
        latency: Duration::from_millis(15),
        jitter: Duration::from_millis(6),
        // A bottleneck so the transfer takes a while, with a queue that never overflows (a
        // lossless path: every message sent must arrive).
        rate: Some(5e6),
        queue_limit: 64 << 20,
        ..LinkConfig::default()
    };
    let mut p = Pair::new(1, link, 512 * 1024, 4 * 1024 * 1024);
    p.b.end_after_eof = true;
    let wire = Rc::new(RefCell::new(WireCount::default()));
    let w2 = wire.clone();
    let a_addr = p.a.addr;
    p.filter = Some(Box::new(move |now, from, _, d| {
        let pkt = Packet::parse(d).expect("parse");
        let tag = if from == a_addr { b'A' } else { b'B' };
        let mut w = w2.borrow_mut();
        if pkt.header.has(FLAG_MESSAGE) {
            assert_eq!(
                pkt.header.flags, FLAG_MESSAGE,
                "a message carries nothing else"
            );
            let i = u32::from_le_bytes(pkt.payload[1..5].try_into().expect("index"));
            assert_eq!(pkt.payload[0], tag);
            w.messages.entry((tag, i)).or_insert((0, now)).0 += 1;
        } else {
            *w.others.entry(tag).or_default() += 1;
        }
        true
    }));
    let (mut next_a, mut next_b) = (0u32, 0u32);
    let (mut a_after_end, mut b_after_eof) = (0, 0);
    let mut last = p.now();
    while !p.transfer_done() {
        assert!(p.elapsed() < Duration::from_secs(120), "not done");
        if p.now() >= last + Duration::from_millis(2) {
            last = p.now();
            if let Some(s) = p.a.socket.stream_mut(1).filter(|s| !s.is_closed()) {
                s.send_message(message(b'A', next_a)).expect("A sends");
                a_after_end += usize::from(p.a.finished);
                next_a += 1;
            }
            if let Some(s) = p.b.socket.stream_mut(2).filter(|s| !s.is_closed()) {
                s.send_message(message(b'B', next_b)).expect("B sends");
                b_after_eof += usize::from(p.b.got_end);
                next_b += 1;
            }
        }
        if !p.step() {
            break;
        }
    }
    assert_eq!(p.a.closed, Some(Ok(())));
    assert_eq!(p.b.closed, Some(Ok(())));
    assert_eq!(p.b.received, 512 * 1024, "A's bytes intact");
    assert_eq!(p.a.received, 4 * 1024 * 1024, "B's bytes intact");

    let w = wire.borrow();
    for (name, side, tag) in [("B", &p.b, b'A'), ("A", &p.a, b'B')] {
        let mut got: Vec<u32> = side
            .messages
            .iter()
            .map(|m| {
                assert_eq!(m[0], tag, "{name} got its peer's messages only");
                let i = u32::from_le_bytes(m[1..5].try_into().expect("index"));
                assert_eq!(*m, message(tag, i), "message {i} intact");
                assert!(w.messages.contains_key(&(tag, i)), "message {i} was sent");
                i
            })
            .collect();
        got.sort_unstable();
        let n = got.len();
        got.dedup();
        assert_eq!(got.len(), n, "{name}: no message delivered twice");
        // Every message that left while the receiver was surely still open arrived (one
        // sent in the same instant as the final ACK may find the receiver already closed).
        let deadline = side
            .closed_at
            .and_then(|t| t.checked_sub(Duration::from_millis(100)))
            .expect("closed");
        let missing: Vec<u32> = w
            .messages
            .iter()
            .filter(|((t, i), (_, at))| *t == tag && *at < deadline && !got.contains(i))
            .map(|((_, i), _)| *i)
            .collect();
        assert!(missing.is_empty(), "{name}: messages {missing:?} were lost");
        assert!(
            w.messages.values().all(|(n, _)| *n == 1),
            "never retransmitted"
        );
    }
    eprintln!(
        "messages: A queued {next_a} ({a_after_end} after its END was acked), B queued {next_b} \
         ({b_after_eof} after A's EOF); on the wire A {} B {}; received by B {}, by A {}; \
         other datagrams A {} B {}",
        w.messages.keys().filter(|(t, _)| *t == b'A').count(),
        w.messages.keys().filter(|(t, _)| *t == b'B').count(),
        p.b.messages.len(),
        p.a.messages.len(),
        w.others[&b'A'],
        w.others[&b'B'],
    );
    assert!(
        a_after_end > 10 && b_after_eof > 10,
        "messages flowed after END/EOF"
    );
    let a_late = p.b.messages.iter().filter(|m| m[0] == b'A').count();
    assert!(a_late > 100, "many messages during the bulk phase");
}

/// A message on an idle stream is delivered and draws no reply; size limits and connection
/// are checked.
#[test]
fn message_on_idle_stream_draws_no_ack_and_limits_hold() {
    let mut p = Pair::new(2, LinkConfig::default(), 0, 0);
    p.a.end_after_eof = true;
    p.b.end_after_eof = true;
    let count = Rc::new(RefCell::new((0usize, 0usize)));
    let c2 = count.clone();
    let a_addr = p.a.addr;
    p.filter = Some(Box::new(move |_, from, _, _| {
        let mut c = c2.borrow_mut();
        if from == a_addr {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
        true
    }));
    let s = p.a.socket.stream_mut(1).expect("a");
    s.send_message(vec![0x5a; 2028]).expect("2028 bytes fit");
    assert_eq!(
        s.send_message(vec![0; 2029]),
        Err(UdxError::MessageTooLarge(2029)),
        "2029 bytes do not fit a 2048-byte datagram"
    );
    s.send_message(Vec::new()).expect("empty message");
    while p.step() {}
    assert_eq!(*count.borrow(), (2, 0), "two datagrams out, nothing back");
    assert_eq!(p.b.messages, vec![vec![0x5a; 2028], Vec::new()]);
    assert!(p.a.closed.is_none() && p.b.closed.is_none());

    let now = Instant::now();
    let mut socket = Socket::new();
    socket
        .create_stream(now, 9, StreamConfig::default())
        .expect("create");
    assert_eq!(
        socket.stream_mut(9).expect("s").send_message(vec![1]),
        Err(UdxError::NotConnected)
    );
}

/// Sequence numbers seen on the wire per sender: (smallest, largest, wrapped past 0?).
#[derive(Debug, Default)]
struct Seqs {
    seen: HashMap<u8, Vec<u32>>,
}

const WRAP_BYTES: usize = 2 * 1024 * 1024;

/// The lossy two-way transfer with the given initial sequences; every DATA/END seq on the wire.
fn wrap_run(a_isn: u32, b_isn: u32) -> (Pair, Seqs) {
    let link = LinkConfig {
        latency: Duration::from_millis(15),
        jitter: Duration::from_millis(8),
        loss: 0.05,
        duplicate: 0.01,
        ..LinkConfig::default()
    };
    let mut p = Pair::with_configs(
        3,
        link,
        WRAP_BYTES,
        WRAP_BYTES,
        StreamConfig {
            initial_seq: a_isn,
            ..StreamConfig::default()
        },
        StreamConfig {
            initial_seq: b_isn,
            ..StreamConfig::default()
        },
    );
    p.b.socket.stream_mut(2).expect("b").set_initial_ack(a_isn);
    p.a.socket.stream_mut(1).expect("a").set_initial_ack(b_isn);
    let seqs = Rc::new(RefCell::new(Seqs::default()));
    let s2 = seqs.clone();
    let a_addr = p.a.addr;
    p.filter = Some(Box::new(move |_, from, _, d| {
        let h = Packet::parse(d).expect("parse").header;
        if h.has(FLAG_DATA | FLAG_END) {
            let tag = if from == a_addr { b'A' } else { b'B' };
            s2.borrow_mut().seen.entry(tag).or_default().push(h.seq);
        }
        true
    }));
    p.run_until(Duration::from_secs(300), Pair::transfer_done);
    p.filter = None;
    let seqs = seqs.take();
    (p, seqs)
}

#[test]
fn transfer_across_the_sequence_wrap_under_loss_and_reordering() {
    const A_ISN: u32 = 0xFFFF_FF00;
    const B_ISN: u32 = 0x7FFF_FFF0;
    const BYTES: usize = WRAP_BYTES;
    let (p, s) = wrap_run(A_ISN, B_ISN);
    for (name, side) in [("A", &p.a), ("B", &p.b)] {
        assert_eq!(side.received, BYTES, "{name} received every byte");
        assert_eq!(side.closed, Some(Ok(())), "{name} closed cleanly");
    }
    let a = &s.seen[&b'A'];
    let b = &s.seen[&b'B'];
    let distinct = |v: &Vec<u32>| {
        let mut d = v.clone();
        d.sort_unstable();
        d.dedup();
        d.len()
    };
    let (a_pkts, b_pkts) = (distinct(a), distinct(b));
    // A: from 0xFFFF_FF00 through 0xFFFF_FFFF to small numbers; B: across 0x8000_0000.
    assert_eq!(a[0], A_ISN);
    assert!(
        a.contains(&u32::MAX) && a.contains(&0) && a.iter().any(|x| (1000..0x1000).contains(x))
    );
    assert_eq!(b[0], B_ISN);
    assert!(b.contains(&0x7FFF_FFFF) && b.contains(&0x8000_0000));
    assert!(
        a_pkts > 1000 && b_pkts > 1000,
        "{a_pkts} / {b_pkts} packets"
    );
    eprintln!(
        "wrap: A sent {a_pkts} packets ({} transmissions) from {A_ISN:#x} to {:#x}, B {b_pkts} ({}) \
         from {B_ISN:#x} to {:#x}; {} lost; closed at {:?}",
        a.len(),
        A_ISN.wrapping_add(a_pkts as u32 - 1),
        b.len(),
        B_ISN.wrapping_add(b_pkts as u32 - 1),
        p.net.stats.lost,
        p.a.closed_at.expect("closed").max(p.b.closed_at.expect("closed")) - p.start
    );
    // The wrap changes nothing: from ISN 0 on both sides the run is the same packet for
    // packet (every seq shifted by the ISN), with the same timing.
    let (q, z) = wrap_run(0, 0);
    let shift = |v: &Vec<u32>, isn: u32| v.iter().map(|x| x.wrapping_sub(isn)).collect::<Vec<_>>();
    assert_eq!(
        shift(a, A_ISN),
        z.seen[&b'A'],
        "A's packets, relative to its ISN"
    );
    assert_eq!(
        shift(b, B_ISN),
        z.seen[&b'B'],
        "B's packets, relative to its ISN"
    );
    let closed = |x: &Pair| {
        (
            x.a.closed_at.map(|t| t - x.start),
            x.b.closed_at.map(|t| t - x.start),
        )
    };
    assert_eq!(closed(&p), closed(&q), "same close times");
    assert_eq!(p.net.stats.sent, q.net.stats.sent, "same datagram count");
}

/// The receive window is honoured from the first packet when sequence numbers start near the
/// wrap: the window-update rule (wl1/wl2) must start from the configured initial sequences,
/// not from 0. B (receiver, 64 KiB window, not reading for 3 s) must never buffer much more
/// than its window, whichever side starts near the wrap.
#[test]
fn window_updates_work_with_wrapped_initial_sequences() {
    const WINDOW: usize = 64 * 1024;
    for (label, a_isn, b_isn) in [
        ("sender starts at 0xFFFF_FF00", 0xFFFF_FF00u32, 0u32),
        ("receiver starts at 0xFFFF_FF00", 0, 0xFFFF_FF00),
        ("both start past 0x8000_0000", 0x9000_0000, 0xC000_0000),
    ] {
        let mut p = Pair::with_configs(
            4,
            LinkConfig {
                latency: Duration::from_millis(10),
                ..LinkConfig::default()
            },
            1024 * 1024,
            0,
            StreamConfig {
                initial_seq: a_isn,
                ..StreamConfig::default()
            },
            StreamConfig {
                initial_seq: b_isn,
                recv_window: WINDOW,
                ..StreamConfig::default()
            },
        );
        p.b.socket.stream_mut(2).expect("b").set_initial_ack(a_isn);
        p.a.socket.stream_mut(1).expect("a").set_initial_ack(b_isn);
        // B sends nothing before A's EOF: its ACKs all carry seq = its initial sequence.
        p.b.end_after_eof = true;
        let resume = p.start + Duration::from_secs(3);
        p.b.read_paused_until = Some(resume);
        let mut peak = 0;
        p.run_until(Duration::from_secs(60), |p| {
            if let Some(s) = p.b.socket.stream(2) {
                peak = peak.max(s.readable() + s.out_of_order_buffered());
            }
            p.transfer_done()
        });
        eprintln!("{label}: B buffered at most {peak} bytes with a {WINDOW}-byte window");
        assert!(
            peak <= WINDOW + 3 * 1452,
            "{label}: B buffered {peak} bytes, the sender ignored the {WINDOW}-byte window"
        );
        assert_eq!(p.b.received, 1024 * 1024);
        assert_eq!(p.a.closed, Some(Ok(())));
        assert_eq!(p.b.closed, Some(Ok(())));
    }
}
