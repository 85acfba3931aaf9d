//! A peer that vanishes is detected only through outstanding data (spec `udx.md` §3.5.2,
//! §3.11, test plan item 8): after some data both directions black-hole (loss 1.0); A, with
//! data in flight, closes with `TimedOut` after about PTO + 13·RTO (asserted between 10 s and
//! 40 s of virtual time, and printed), having sent only a handful of retransmissions. B, idle,
//! never times out — with or without keep-alive heartbeats — and neither does an idle pair.
//! Deterministic (seeded) and on a virtual clock.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::udx_sim::Pair;
use p2pswarm::testing::LinkConfig;
use p2pswarm::udx::packet::{FLAG_DATA, FLAG_END, FLAG_HEARTBEAT};
use p2pswarm::udx::{Packet, StreamConfig, UdxError};

const BYTES: usize = 8 * 1024 * 1024;

fn link(latency_ms: u64) -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(2),
        rate: Some(20e6),
        queue_limit: 300_000,
        ..LinkConfig::default()
    }
}

fn blackhole(p: &mut Pair) {
    let dead = LinkConfig {
        loss: 1.0,
        ..LinkConfig::default()
    };
    p.net.set_link(p.a.addr, p.b.addr, dead.clone());
    p.net.set_link(p.b.addr, p.a.addr, dead);
}

/// Datagrams sent by A after `since`, split into (data/END packets, others).
type Sent = Rc<RefCell<Vec<(Instant, u8)>>>;

fn record_a(p: &mut Pair) -> Sent {
    let sent: Sent = Rc::default();
    let s = sent.clone();
    let a = p.a.addr;
    p.filter = Some(Box::new(move |now, from, _, d| {
        if from == a {
            s.borrow_mut()
                .push((now, Packet::parse(d).expect("parse").header.flags));
        }
        true
    }));
    sent
}

fn vanish_mid_transfer(seed: u64, latency_ms: u64, keep_alive_b: Option<Duration>) {
    let cfg_b = StreamConfig {
        keep_alive: keep_alive_b,
        ..StreamConfig::default()
    };
    let mut p = Pair::with_configs(
        seed,
        link(latency_ms),
        BYTES,
        0,
        StreamConfig::default(),
        cfg_b,
    );
    // B only ends after A's END, which never comes: B stays a plain idle receiver.
    p.b.end_after_eof = true;
    let sent = record_a(&mut p);
    p.run_until(Duration::from_secs(60), |p| p.b.received >= BYTES / 8);
    let (srtt, rto) = p.a.socket.stream(1).expect("a").rtt();
    let outstanding = p.a.socket.stream(1).expect("a").write_buffered();
    assert!(outstanding > 0, "A has data outstanding");
    blackhole(&mut p);
    let cut = p.now();
    p.run_until(Duration::from_secs(600), |p| p.a.closed.is_some());
    assert_eq!(p.a.closed, Some(Err(UdxError::TimedOut)));
    let took = p.a.closed_at.expect("closed") - cut;
    // Until the in-flight window is full A keeps sending new data; once the first RTT without
    // acks is over, only probes and retransmissions go out.
    let quiet = cut + Duration::from_millis(500);
    let retransmissions = sent
        .borrow()
        .iter()
        .filter(|(t, f)| *t > quiet && f & (FLAG_DATA | FLAG_END) != 0)
        .count();
    eprintln!(
        "rtt {latency_ms}x2 ms (srtt {srtt:?}, rto {rto:?}): A timed out {took:?} after the \
         black-hole with {outstanding} bytes outstanding, {retransmissions} data packets sent \
         from 0.5 s on (expected about PTO + 13*RTO = {:?})",
        srtt * 2 + rto * 13
    );
    assert!(
        took >= Duration::from_secs(10) && took <= Duration::from_secs(40),
        "time to timeout {took:?}"
    );
    // Roughly PTO + 13·RTO: within a second of the model (RTO is frozen during the outage).
    let model = srtt * 2 + rto * 13;
    assert!(
        took.abs_diff(model) < Duration::from_secs(1),
        "{took:?} vs model {model:?}"
    );
    // Backed off: one head retransmission per RTO plus at most a probe, not a flood.
    assert!(retransmissions <= 12, "{retransmissions} retransmissions");

    // B, the idle receiver, never times out at the UDX layer.
    let until = p.now() + Duration::from_secs(3600);
    let mut heartbeats_b = 0u64;
    let b_addr = p.b.addr;
    let hb = Rc::new(RefCell::new(0u64));
    let hb2 = hb.clone();
    p.filter = Some(Box::new(move |_, from, _, d| {
        if from == b_addr && Packet::parse(d).expect("parse").header.has(FLAG_HEARTBEAT) {
            *hb2.borrow_mut() += 1;
        }
        true
    }));
    while p.now() < until && p.step() {}
    heartbeats_b += *hb.borrow();
    assert_eq!(p.b.closed, None, "idle B never times out");
    assert!(!p.b.socket.stream(2).expect("b").is_closed());
    if let Some(k) = keep_alive_b {
        let expected = (3600.0 / k.as_secs_f64()) as u64;
        eprintln!("  B stayed open for 1 h, sending {heartbeats_b} keep-alive heartbeats");
        assert!(
            heartbeats_b + 2 >= expected && heartbeats_b <= expected + 2,
            "one heartbeat per {k:?} of idleness: {heartbeats_b} vs {expected}"
        );
    } else {
        assert_eq!(heartbeats_b, 0);
        assert_eq!(
            p.b.socket.poll_timeout(),
            None,
            "an idle stream without keep-alive has no timer at all"
        );
    }
}

#[test]
fn lan_rtt_mid_transfer() {
    vanish_mid_transfer(1, 10, None);
}

#[test]
fn wan_rtt_mid_transfer_with_keep_alive_on_the_idle_side() {
    vanish_mid_transfer(2, 60, Some(Duration::from_secs(5)));
}

/// A stream that never sent anything (no RTT sample: RTO 1 s, no tail-loss probe) and whose
/// first packets are black-holed gives up after about 13 s.
#[test]
fn first_packet_never_acknowledged() {
    let mut p = Pair::new(3, link(10), 64 * 1024, 0);
    p.b.end_after_eof = true;
    blackhole(&mut p);
    p.run_until(Duration::from_secs(600), |p| p.a.closed.is_some());
    assert_eq!(p.a.closed, Some(Err(UdxError::TimedOut)));
    let took = p.a.closed_at.expect("closed") - p.start;
    eprintln!("no RTT sample: A timed out after {took:?} (spec: about 13 s)");
    // First RTO at 1 s (the tail-loss probe, which cannot fire without an RTT sample, must
    // not push it back), then six more 2 s apart: 13 s.
    assert!(
        took.abs_diff(Duration::from_secs(13)) < Duration::from_millis(500),
        "{took:?}"
    );
    assert_eq!(p.b.closed, None);
}

/// Connected, nothing written, both directions dead: no timer fires and nothing closes, even
/// after a virtual day (there is no idle timeout in UDX).
#[test]
fn idle_pair_never_times_out() {
    let mut p = Pair::new(4, link(10), 0, 0);
    p.a.end_after_eof = true;
    p.b.end_after_eof = true;
    blackhole(&mut p);
    let day = p.start + Duration::from_secs(86_400);
    let mut steps = 0;
    while p.now() < day && p.step() {
        steps += 1;
    }
    assert!(steps < 10, "nothing to do: {steps} steps");
    assert_eq!(p.a.socket.poll_timeout(), None);
    assert_eq!(p.b.socket.poll_timeout(), None);
    assert!(p.a.closed.is_none() && p.b.closed.is_none());
    // Time passing without any event closes nothing either.
    p.net.advance_to(day);
    p.a.socket.handle_timeout(day);
    p.b.socket.handle_timeout(day);
    assert!(!p.a.socket.stream(1).expect("a").is_closed());
    assert!(!p.b.socket.stream(2).expect("b").is_closed());
}
