//! Losing the very last ACK of a stream — the one acknowledging the second END — does not
//! turn a clean close into a timeout (spec `udx.md` §3.9, test plan item 14): the side that
//! already closed lingers in TIME_WAIT and re-acknowledges the END retransmission, so both
//! sides close with `Ok` within about one RTO. Covered: B ends after A's EOF (its END is
//! second) with the final ACK dropped once and twice in a row, and both sides ending at the
//! same time without data. The drop is done by a link-level filter that parses every datagram.
//! Deterministic (seeded) and on a virtual clock.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::udx_sim::Pair;
use p2pswarm::testing::LinkConfig;
use p2pswarm::udx::packet::{seq_lt, FLAG_END};
use p2pswarm::udx::Packet;

fn link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(2),
        ..LinkConfig::default()
    }
}

#[derive(Debug, Default)]
struct Watch {
    /// Sequence number of B's END, once B sent it.
    b_end: Option<u32>,
    /// When B first sent its END.
    b_end_sent: Option<Instant>,
    /// How many of A's ACKs of B's END to drop.
    drop_left: usize,
    /// Every A → B datagram acknowledging B's END: (time, dropped?).
    acks: Vec<(Instant, bool)>,
    /// Every transmission of B's END (first one and retransmissions).
    b_end_sends: Vec<Instant>,
}

fn run(
    label: &str,
    seed: u64,
    (bytes_a, a_waits): (usize, bool),
    (bytes_b, b_waits): (usize, bool),
    drops: usize,
) {
    let mut p = Pair::new(seed, link(), bytes_a, bytes_b);
    p.a.end_after_eof = a_waits;
    p.b.end_after_eof = b_waits;
    let (a_addr, b_addr) = (p.a.addr, p.b.addr);
    let w = Rc::new(RefCell::new(Watch {
        drop_left: drops,
        ..Watch::default()
    }));
    let w2 = w.clone();
    p.filter = Some(Box::new(move |now, from, _to, d| {
        let h = Packet::parse(d).expect("parse").header;
        let mut w = w2.borrow_mut();
        if from == b_addr && h.has(FLAG_END) {
            w.b_end.get_or_insert(h.seq);
            w.b_end_sent.get_or_insert(now);
            w.b_end_sends.push(now);
        }
        if from == a_addr {
            if let Some(end) = w.b_end {
                if seq_lt(end, h.ack) {
                    let drop = w.drop_left > 0;
                    w.drop_left -= usize::from(drop);
                    w.acks.push((now, drop));
                    return !drop;
                }
            }
        }
        true
    }));
    p.run_until(Duration::from_secs(60), Pair::transfer_done);
    let w = w.borrow();
    let t = |i: Option<Instant>| i.expect("happened") - p.start;
    eprintln!(
        "{label}: B's END first sent at {:?} and {} times in all; A's ACKs of it at {:?}; \
         A closed at {:?}, B at {:?}",
        t(w.b_end_sent),
        w.b_end_sends.len(),
        w.acks
            .iter()
            .map(|(at, d)| (*at - p.start, *d))
            .collect::<Vec<_>>(),
        t(p.a.closed_at),
        t(p.b.closed_at)
    );
    for (name, side, want) in [("A", &p.a, bytes_b), ("B", &p.b, bytes_a)] {
        assert_eq!(side.closed, Some(Ok(())), "{label}: {name} closes cleanly");
        assert!(
            side.got_end && side.finished,
            "{label}: {name} saw both ENDs through"
        );
        assert_eq!(side.received, want, "{label}: {name} got every byte");
    }
    assert_eq!(
        w.acks.iter().filter(|(_, d)| *d).count(),
        drops,
        "{label}: the filter dropped exactly the final ACK(s)"
    );
    let a_closed = p.a.closed_at.expect("closed");
    let b_closed = p.b.closed_at.expect("closed");
    assert!(
        a_closed < b_closed,
        "{label}: A closed first, its last ACK was lost"
    );
    // The ACK that let B close was sent by A after A had closed: a TIME_WAIT re-ack of a
    // retransmitted END.
    let (last_ack, dropped) = *w.acks.last().expect("acks");
    assert!(!dropped, "{label}: the last ACK got through");
    assert!(last_ack >= a_closed, "{label}: A re-acked from TIME_WAIT");
    assert!(
        w.b_end_sends.len() > drops,
        "{label}: B retransmitted its END"
    );
    assert_eq!(
        w.acks.len(),
        drops + 1,
        "{label}: one re-ack per END retransmission"
    );
    // Prompt: one tail-loss probe or RTO per lost ACK, far from the 13 s give-up (and from the
    // 3-RTO "peer must be gone" fallback).
    assert!(
        b_closed - a_closed < Duration::from_millis(2500),
        "{label}: B closed {:?} after A",
        b_closed - a_closed
    );
    // Both sockets forget the stream after TIME_WAIT; nothing arrives for it afterwards.
    p.run_until(Duration::from_secs(120), |p| {
        p.a.socket.stream_count() == 0 && p.b.socket.stream_count() == 0
    });
}

/// A sends data and ends; B answers with data and ends after A's EOF, so B's END is the
/// second one. A's ACK of it is dropped once.
#[test]
fn second_end_final_ack_dropped_once() {
    run(
        "b ends second, 1 drop",
        1,
        (256 * 1024, false),
        (64 * 1024, true),
        1,
    );
}

/// Same, but the re-ack of the first END retransmission is dropped too.
#[test]
fn second_end_final_ack_dropped_twice() {
    run(
        "b ends second, 2 drops",
        2,
        (256 * 1024, false),
        (64 * 1024, true),
        2,
    );
}

/// B has written nothing: its END-only packet is the second END (no RTT sample on B's side,
/// so its retransmission comes from the 1 s RTO rather than a tail-loss probe).
#[test]
fn second_end_without_data_final_ack_dropped() {
    run(
        "b zero bytes, ends second",
        3,
        (64 * 1024, false),
        (0, true),
        1,
    );
}

/// Both sides end at once with nothing written: two END-only packets cross; A's ACK of B's
/// END is dropped while B's ACK of A's END gets through, so A closes and must re-ack.
#[test]
fn simultaneous_ends_final_ack_dropped() {
    run("simultaneous zero-byte ends", 4, (0, false), (0, false), 1);
}
