//! DESTROY aborts a stream (spec `udx.md` §3.10, §3.3, test plan item 15): A destroying
//! mid-transfer sends exactly one DESTROY datagram (never retransmitted), closes with
//! `Destroyed`, and B closes with `Reset`; the same from the idle side and with the roles swapped.
//! Destroying an unconnected stream sends nothing. A stale DESTROY (seq < rcv.nxt), crafted with
//! `packet::Header`, is ignored and the transfer completes; a current one resets.
//! Deterministic (seeded) and on a virtual clock.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::udx_sim::{Pair, Side};
use p2pswarm::testing::LinkConfig;
use p2pswarm::udx::packet::{FLAG_DATA, FLAG_DESTROY, FLAG_END};
use p2pswarm::udx::{Header, Packet, Socket, StreamConfig, StreamEvent, UdxError};

const BYTES: usize = 4 * 1024 * 1024;

/// Reordering but no loss, so the one DESTROY is not dropped by chance (losing it is a
/// separate case below).
fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(15),
        jitter: Duration::from_millis(3),
        ..LinkConfig::default()
    }
}

/// Every datagram each side sent, parsed: `(time, from, header, payload length)`.
type Log = Rc<RefCell<Vec<(Instant, SocketAddr, Header, usize)>>>;

fn logged(p: &mut Pair) -> Log {
    let log: Log = Rc::default();
    let l = log.clone();
    p.filter = Some(Box::new(move |now, from, _to, d| {
        let pkt = Packet::parse(d).expect("our own datagrams parse");
        l.borrow_mut()
            .push((now, from, pkt.header, pkt.payload.len()));
        true
    }));
    log
}

fn destroys_from(log: &Log, from: SocketAddr) -> Vec<Header> {
    log.borrow()
        .iter()
        .filter(|(_, f, h, _)| *f == from && h.has(FLAG_DESTROY))
        .map(|(_, _, h, _)| *h)
        .collect()
}

fn stream(side: &mut Side) -> &mut p2pswarm::udx::Stream {
    let id = side.id;
    side.socket.stream_mut(id).expect("stream")
}

/// Runs a bidirectional transfer until `who` has received `after` bytes, then destroys the
/// `destroyer` side and checks both outcomes and the wire.
fn destroy_mid_transfer(seed: u64, a_destroys: bool, bytes_b: usize) {
    let mut p = Pair::new(seed, link(), BYTES, bytes_b);
    // Neither side ends before the abort (A has not finished writing, B waits for A's END).
    p.b.end_after_eof = true;
    // Datagrams still in flight towards the destroyed (and forgotten) stream come back raw.
    p.allow_raw = true;
    let log = logged(&mut p);
    p.run_until(Duration::from_secs(60), |p| p.b.received >= BYTES / 4);
    assert!(p.a.closed.is_none() && p.b.closed.is_none());
    assert!(
        p.a.received < bytes_b || bytes_b == 0,
        "B is mid-transfer too"
    );
    let (destroyer_addr, peer_addr) = if a_destroys {
        (p.a.addr, p.b.addr)
    } else {
        (p.b.addr, p.a.addr)
    };
    let d = if a_destroys { &mut p.a } else { &mut p.b };
    let unacked = stream(d).write_buffered();
    if a_destroys {
        assert!(unacked > 0, "A still has data outstanding");
    }
    stream(d).destroy();
    // The application stops writing and ending too.
    d.to_send = d.sent;
    d.ended_write = true;
    // Writing after destroy fails with a typed error.
    assert!(stream(d).write(vec![1, 2, 3]).is_err());
    let destroyed_at = p.now();
    p.run_until(Duration::from_secs(120), |p| {
        p.a.closed.is_some() && p.b.closed.is_some()
    });
    // Keep going a while: nothing must be retransmitted.
    let settle = p.now() + Duration::from_secs(20);
    while p.now() < settle && p.step() {}

    let (d, peer) = if a_destroys {
        (&p.a, &p.b)
    } else {
        (&p.b, &p.a)
    };
    assert_eq!(
        d.closed,
        Some(Err(UdxError::Destroyed)),
        "destroyer closes Destroyed"
    );
    assert_eq!(peer.closed, Some(Err(UdxError::Reset)), "peer closes Reset");
    assert!(!peer.got_end, "no End on a reset");
    let ds = destroys_from(&log, destroyer_addr);
    assert_eq!(ds.len(), 1, "exactly one DESTROY datagram: {ds:?}");
    assert!(
        destroys_from(&log, peer_addr).is_empty(),
        "the peer sends no DESTROY back"
    );
    let h = ds[0];
    assert_eq!(h.flags, FLAG_DESTROY, "DESTROY alone, no data/end bits");
    // Its seq is the destroyer's snd.nxt: one past the newest packet it had sent.
    let snd_nxt = log
        .borrow()
        .iter()
        .filter(|(_, f, h, _)| *f == destroyer_addr && h.has(FLAG_DATA | FLAG_END))
        .map(|(_, _, h, _)| h.seq + 1)
        .max()
        .unwrap_or(0);
    assert_eq!(h.seq, snd_nxt, "DESTROY carries snd.nxt");
    // Nothing at all leaves the destroyer after its DESTROY.
    let after: Vec<_> = log
        .borrow()
        .iter()
        .filter(|(t, f, _, _)| *f == destroyer_addr && *t >= destroyed_at)
        .map(|(_, _, h, _)| h.flags)
        .collect();
    assert_eq!(
        after,
        vec![FLAG_DESTROY],
        "only the DESTROY after destroy()"
    );
    let took = peer.closed_at.expect("closed") - destroyed_at;
    eprintln!(
        "destroy by {}: peer reset {took:?} after destroy() ({} bytes were unacked), DESTROY seq {} ack {}, {} stray datagrams arrived after",
        if a_destroys { "A" } else { "B" },
        unacked,
        h.seq,
        h.ack,
        p.raw_received
    );
    assert!(
        took < Duration::from_millis(100),
        "reset arrives in one trip"
    );
    // Both sockets forget the stream (no TIME_WAIT after an abort).
    assert_eq!(p.a.socket.stream_count(), 0);
    assert_eq!(p.b.socket.stream_count(), 0);
}

#[test]
fn a_destroys_mid_transfer_both_ways() {
    destroy_mid_transfer(1, true, BYTES);
}

#[test]
fn a_destroys_mid_transfer_while_b_is_idle() {
    destroy_mid_transfer(2, true, 0);
}

#[test]
fn b_destroys_while_receiving() {
    // B only receives; its DESTROY carries its (unchanged) snd.nxt = 0 and still resets A.
    destroy_mid_transfer(3, false, 0);
}

#[test]
fn destroy_of_unconnected_stream_sends_nothing() {
    let now = Instant::now();
    let mut socket = Socket::new();
    socket
        .create_stream(now, 7, StreamConfig::default())
        .expect("create");
    let s = socket.stream_mut(7).expect("stream");
    s.write(vec![0; 5000])
        .expect("write before connect is queued");
    s.end().expect("end");
    s.destroy();
    assert!(s.is_closed());
    let mut buf = Vec::new();
    assert!(
        socket.poll_transmit(now, &mut buf).is_none(),
        "nothing sent"
    );
    let mut events = Vec::new();
    while let Some(ev) = socket.poll_event() {
        events.push(ev);
    }
    assert_eq!(
        events,
        vec![p2pswarm::udx::SocketEvent::Stream(
            7,
            StreamEvent::Closed(Err(UdxError::Destroyed))
        )]
    );
    // A second destroy is a no-op, and the stream is forgotten at the next timer pass.
    socket.stream_mut(7).expect("stream").destroy();
    assert!(socket.poll_event().is_none());
    socket.handle_timeout(now);
    assert_eq!(socket.stream_count(), 0);
    assert!(socket.poll_transmit(now, &mut buf).is_none());
}

/// A DESTROY for B crafted with the given sequence number, carrying A's current ack.
fn crafted_destroy(seq: u32, ack: u32) -> Vec<u8> {
    let mut d = Vec::new();
    Header {
        flags: FLAG_DESTROY,
        data_offset: 0,
        id: 2,
        rwnd: 4 << 20,
        seq,
        ack,
    }
    .write(&mut d);
    d
}

#[test]
fn stale_destroy_is_ignored_current_one_resets() {
    let mut p = Pair::new(4, link(), 1024 * 1024, 64 * 1024);
    let log = logged(&mut p);
    p.run_until(Duration::from_secs(60), |p| p.b.received >= 512 * 1024);
    // B's rcv.nxt is the ack of its newest datagram; A's ack is what A last told B.
    let (b_ack, a_ack) = {
        let l = log.borrow();
        let last = |from: SocketAddr| {
            l.iter()
                .rev()
                .find(|(_, f, _, _)| *f == from)
                .map(|(_, _, h, _)| h.ack)
                .expect("sent something")
        };
        (last(p.b.addr), last(p.a.addr))
    };
    // Everything up to B's rcv.nxt - 1 was A's data; a DESTROY below rcv.nxt is old news.
    assert!(b_ack > 100, "A sent many packets ({b_ack})");
    let now = p.now();
    let a_addr = p.a.addr;
    for stale in [b_ack - 1, b_ack - 50, 0, b_ack.wrapping_sub(1 << 30)] {
        let d = crafted_destroy(stale, a_ack);
        let r = p.b.socket.handle_datagram(now, a_addr, &d);
        assert_eq!(r, p2pswarm::udx::Datagram::Stream(2));
        assert!(
            !p.b.socket.stream(2).expect("alive").is_closed(),
            "stale DESTROY seq {stale} (rcv.nxt {b_ack}) must be ignored"
        );
    }
    // The transfer is unaffected and ends cleanly.
    p.run_until(Duration::from_secs(120), Pair::transfer_done);
    assert_eq!(p.a.closed, Some(Ok(())));
    assert_eq!(p.b.closed, Some(Ok(())));
    assert_eq!(p.b.received, 1024 * 1024);
    assert_eq!(p.a.received, 64 * 1024);

    // Fresh pairs: a DESTROY at A's snd.nxt (what a real peer sends) resets at once, and so
    // does one far ahead of anything sent (spec §3.3: DESTROY with seq >= rcv.nxt acts).
    for (seed, ahead) in [(5, 0u32), (6, 1000)] {
        let mut p = Pair::new(seed, link(), 1024 * 1024, 0);
        p.allow_raw = true;
        let log = logged(&mut p);
        p.run_until(Duration::from_secs(60), |p| p.b.received >= 256 * 1024);
        // What a real DESTROY from A carries: A's snd.nxt (one past its newest data packet),
        // which is >= B's rcv.nxt.
        let a_snd_nxt = log
            .borrow()
            .iter()
            .filter(|(_, f, h, _)| *f == p.a.addr && h.has(FLAG_DATA))
            .map(|(_, _, h, _)| h.seq + 1)
            .max()
            .expect("A sent data");
        let now = p.now();
        let d = crafted_destroy(a_snd_nxt.wrapping_add(ahead), 0);
        p.b.socket.handle_datagram(now, p.a.addr, &d);
        assert!(p.b.socket.stream(2).expect("still listed").is_closed());
        p.run_until(Duration::from_secs(60), |p| p.b.closed.is_some());
        assert_eq!(p.b.closed, Some(Err(UdxError::Reset)));
        // The reset stream sends nothing more, not even an ACK for the DESTROY.
        let sent_after = log
            .borrow()
            .iter()
            .filter(|(t, f, _, _)| *f == p.b.addr && *t >= now)
            .count();
        assert_eq!(sent_after, 0, "nothing from B after the reset");
    }
}

/// The DESTROY is never retransmitted, so if it is lost the peer only notices through its own
/// RTO limit when it has data outstanding (`TimedOut`), and never when it is idle.
#[test]
fn lost_destroy_peer_times_out_only_if_busy() {
    for (seed, bytes_b) in [(7, BYTES), (8, 0)] {
        let mut p = Pair::new(seed, link(), BYTES, bytes_b);
        p.allow_raw = true;
        let a_addr = p.a.addr;
        let dropped = Rc::new(RefCell::new(0));
        let d2 = dropped.clone();
        p.filter = Some(Box::new(move |_, from, _, d| {
            let h = Packet::parse(d).expect("parse").header;
            if from == a_addr && h.has(FLAG_DESTROY) {
                *d2.borrow_mut() += 1;
                return false;
            }
            true
        }));
        p.run_until(Duration::from_secs(60), |p| p.b.received >= BYTES / 4);
        stream(&mut p.a).destroy();
        p.a.to_send = p.a.sent;
        p.a.ended_write = true;
        let at = p.now();
        if bytes_b > 0 {
            p.run_until(Duration::from_secs(120), |p| p.b.closed.is_some());
            assert_eq!(p.b.closed, Some(Err(UdxError::TimedOut)));
            let took = p.b.closed_at.expect("closed") - at;
            eprintln!("lost DESTROY: busy peer timed out after {took:?}");
            assert!(took > Duration::from_secs(10) && took < Duration::from_secs(40));
        } else {
            // Idle (and already ended) B: nothing is outstanding, nothing ever times out.
            let until = at + Duration::from_secs(3600);
            while p.now() < until && p.step() {}
            assert_eq!(
                p.b.closed, None,
                "an idle peer never learns of the lost DESTROY"
            );
        }
        assert_eq!(*dropped.borrow(), 1, "one DESTROY, never retransmitted");
        assert_eq!(p.a.closed, Some(Err(UdxError::Destroyed)));
    }
}
