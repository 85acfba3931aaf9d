//! Half close works in every order (spec `udx.md` §3.9, test plan item 13): (a) A writes and
//! ends first while B keeps writing and only ends after A's EOF, (b) the reverse, (c) both end
//! at the same time, (d) one side ends having written nothing (immediately, or only after the
//! peer's EOF). In every case both sides see `End`, `Finished` and `Closed(Ok)`, and every byte
//! arrives intact in both directions. Each case also runs over a lossy, reordering link.
//! Deterministic (seeded) and on a virtual clock.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::time::Duration;

use common::udx_sim::Pair;
use p2pswarm::testing::LinkConfig;

fn clean() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(20),
        ..LinkConfig::default()
    }
}

fn lossy() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        loss: 0.05,
        duplicate: 0.01,
        ..LinkConfig::default()
    }
}

/// What happened during a run, for order assertions.
#[derive(Debug, Default)]
struct Trace {
    /// When A's write side finished: (bytes B had handed to its stream, bytes A had read).
    at_a_finished: Option<(usize, usize)>,
    /// When B's write side finished: bytes B had read.
    at_b_finished: Option<usize>,
}

fn run(
    label: &str,
    seed: u64,
    link: LinkConfig,
    (bytes_a, a_waits): (usize, bool),
    (bytes_b, b_waits): (usize, bool),
) -> (Pair, Trace) {
    let mut p = Pair::new(seed, link, bytes_a, bytes_b);
    p.a.end_after_eof = a_waits;
    p.b.end_after_eof = b_waits;
    let mut t = Trace::default();
    p.run_until(Duration::from_secs(300), |p| {
        if p.a.finished && t.at_a_finished.is_none() {
            t.at_a_finished = Some((p.b.sent, p.a.received));
        }
        if p.b.finished && t.at_b_finished.is_none() {
            t.at_b_finished = Some(p.b.received);
        }
        p.transfer_done()
    });
    for (name, side, want) in [("A", &p.a, bytes_b), ("B", &p.b, bytes_a)] {
        assert_eq!(side.received, want, "{label}: {name} received every byte");
        assert!(side.got_end, "{label}: {name} saw the peer's End");
        assert!(side.finished, "{label}: {name}'s END was acknowledged");
        assert_eq!(side.closed, Some(Ok(())), "{label}: {name} closed cleanly");
    }
    let start = p.start;
    let at = |t: Option<std::time::Instant>| t.expect("seen") - start;
    for side in [&p.a, &p.b] {
        // Our END acked and the peer's END seen both precede the close.
        assert!(side.finished_at <= side.closed_at && side.got_end_at <= side.closed_at);
    }
    // After TIME_WAIT both sockets forget the stream, and nothing arrives for it afterwards.
    p.run_until(Duration::from_secs(400), |p| {
        p.a.socket.stream_count() == 0 && p.b.socket.stream_count() == 0
    });
    eprintln!(
        "{label}: A closed at {:?}, B at {:?} (virtual); {} datagrams sent, {} lost",
        at(p.a.closed_at),
        at(p.b.closed_at),
        p.net.stats.sent,
        p.net.stats.lost
    );
    (p, t)
}

const SMALL: usize = 100 * 1024;
const LARGE: usize = 3 * 1024 * 1024;

/// (a) A writes a little and ends; B keeps writing a lot and ends only after A's EOF.
fn a_ends_first(seed: u64, link: LinkConfig) {
    let (_p, t) = run("a ends first", seed, link, (SMALL, false), (LARGE, true));
    let (b_sent, a_recv) = t.at_a_finished.expect("A finished");
    eprintln!(
        "  when A's END was acked: B had handed {b_sent} bytes to its stream, A had read {a_recv}"
    );
    assert!(
        a_recv < LARGE,
        "A was still receiving after its own write side finished (had {a_recv} of {LARGE})"
    );
}

/// (b) The reverse: B ends first, A keeps writing and ends after B's EOF.
fn b_ends_first(seed: u64, link: LinkConfig) {
    let (_p, t) = run("b ends first", seed, link, (LARGE, true), (SMALL, false));
    let b_recv = t.at_b_finished.expect("B finished");
    eprintln!("  when B's END was acked: B had read {b_recv} bytes");
    assert!(
        b_recv < LARGE,
        "B was still receiving after its own write side finished (had {b_recv} of {LARGE})"
    );
}

#[test]
fn a_ends_first_then_b_after_eof() {
    a_ends_first(11, clean());
}

#[test]
fn a_ends_first_then_b_after_eof_lossy() {
    a_ends_first(12, lossy());
}

#[test]
fn b_ends_first_then_a_after_eof() {
    b_ends_first(21, clean());
}

#[test]
fn b_ends_first_then_a_after_eof_lossy() {
    b_ends_first(22, lossy());
}

/// (c) Both sides end in the same instant: their END packets cross on the wire.
#[test]
fn both_end_simultaneously() {
    for (seed, link) in [(31, clean()), (32, lossy()), (33, lossy())] {
        let (p, _) = run("simultaneous", seed, link, (SMALL, false), (SMALL, false));
        assert!(p.a.ended_write && p.b.ended_write);
    }
}

/// (c') Both sides end at once without writing anything: two END-only packets cross.
#[test]
fn both_end_simultaneously_with_zero_bytes() {
    for (seed, link) in [(41, clean()), (42, lossy()), (43, lossy())] {
        run("zero+zero", seed, link, (0, false), (0, false));
    }
}

/// (d) One side writes nothing and ends immediately (an END-only packet with seq 0) while
/// the other writes a lot; and one side writes nothing and ends only after the peer's EOF.
#[test]
fn end_with_zero_bytes_on_one_side() {
    for (seed, link) in [(51, clean()), (52, lossy())] {
        run(
            "a zero, ends at once",
            seed,
            link.clone(),
            (0, false),
            (LARGE, false),
        );
        run(
            "b zero, ends at once",
            seed + 100,
            link.clone(),
            (LARGE, false),
            (0, false),
        );
        run(
            "a zero, ends after eof",
            seed + 200,
            link.clone(),
            (0, true),
            (SMALL, false),
        );
        run(
            "b zero, ends after eof",
            seed + 300,
            link,
            (SMALL, false),
            (0, true),
        );
    }
}
