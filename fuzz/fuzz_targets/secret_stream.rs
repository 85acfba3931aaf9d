//! The secret-stream `Engine` (sans-IO state machine) fed with hostile raw bytes.
//!
//! Input: `[mode] [config flags] [n] [n split sizes] ...`. The raw byte stream given to the
//! engine is cut into chunks whose sizes cycle through the split sizes, so the same bytes are
//! delivered byte by byte, in odd pieces or in one read.
//!
//! Modes (mode byte % 5; bit 7 picks the role or the pattern, bit 6 allows corruption):
//! 0. Handshake mode, initiator (XX, or IK towards the fixed responder key): arbitrary bytes.
//! 1. Handshake mode, responder (XX or IK): arbitrary bytes.
//! 2. Opened from a premade IK handshake between two fixed key pairs: arbitrary bytes.
//! 3. As 2, but the bytes start with what the genuine peer sends (its header frame and
//!    data frames of fuzzer-chosen messages), optionally with one byte corrupted, followed by
//!    arbitrary bytes. Untouched, every message arrives exactly as written.
//! 4. Two engines in handshake mode talking to each other under a fuzzer-chosen schedule of
//!    writes, partial deliveries, ends, timeouts and datagrams, optionally with corruption in
//!    transit. Untouched, both open, every message and datagram arrives exactly as written and
//!    ending both sides closes both without error.
//!
//! Always: no call panics; events come in a sane order (Open once, before any Message; no
//! Message after End or Destroyed; at most one Destroyed); a destroyed stream sends nothing.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use p2pswarm::crypto::PublicKey;
use p2pswarm::noise::Pattern;
use p2pswarm::secret_stream::{Config, Engine, Error, Event, Randomness};
use p2pswarm_fuzz::{
    key_pair, premade_ik_cached, split_by, Input, INITIATOR_EPHEMERAL_SEED, INITIATOR_SEED,
    RESPONDER_EPHEMERAL_SEED, RESPONDER_SEED,
};

/// Tracks one engine's events and checks their order.
#[derive(Debug, Default)]
struct Watch {
    opened: bool,
    ended: bool,
    closed: bool,
    destroyed: Option<Error>,
    messages: Vec<Vec<u8>>,
    sent: Vec<u8>,
}

impl Watch {
    /// Takes every pending event and transmit byte from `e`.
    fn drain(&mut self, e: &mut Engine) {
        self.events(e);
        if let Some(bytes) = e.poll_transmit() {
            assert!(!bytes.is_empty());
            self.sent.extend_from_slice(&bytes);
        }
        assert!(e.poll_transmit().is_none());
        assert!(e.transmit_buf().is_empty());
    }

    /// Takes every pending event from `e`, leaving its transmit buffer alone.
    fn events(&mut self, e: &mut Engine) {
        while let Some(ev) = e.poll_event() {
            match ev {
                Event::Open => {
                    assert!(!self.opened, "Open twice");
                    assert!(self.destroyed.is_none(), "Open after Destroyed");
                    self.opened = true;
                }
                Event::Message(m) => {
                    assert!(self.opened, "Message before Open");
                    assert!(!self.ended, "Message after End");
                    assert!(self.destroyed.is_none(), "Message after Destroyed");
                    self.messages.push(m);
                }
                Event::End => {
                    assert!(!self.ended, "End twice");
                    assert!(self.destroyed.is_none(), "End after Destroyed");
                    self.ended = true;
                }
                Event::Closed => {
                    assert!(!self.closed, "Closed twice");
                    assert!(self.destroyed.is_none(), "Closed after Destroyed");
                    self.closed = true;
                }
                Event::Destroyed(err) => {
                    assert!(self.destroyed.is_none(), "Destroyed twice");
                    assert!(e.error().is_some());
                    self.destroyed = Some(err);
                }
                _ => {}
            }
        }
        if e.error().is_some() {
            assert!(!e.is_open());
            assert!(
                e.transmit_buf().is_empty(),
                "a destroyed stream still has bytes to send"
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    keep_alive: bool,
    timeout: bool,
    filter_empty: bool,
    /// XX initiator/responder: expect the peer's key (the right one or a wrong one).
    expect_key: Option<bool>,
    end_input: bool,
    end_local: bool,
    write_after: bool,
    tamper: bool,
}

impl Flags {
    fn parse(b: u8, mode: u8) -> Self {
        Self {
            keep_alive: b & 0x01 != 0,
            timeout: b & 0x02 != 0,
            filter_empty: b & 0x04 != 0,
            expect_key: match (b >> 3) & 3 {
                1 => Some(true),
                2 => Some(false),
                _ => None,
            },
            end_input: b & 0x20 != 0,
            end_local: b & 0x40 != 0,
            write_after: b & 0x80 != 0,
            tamper: mode & 0x40 != 0,
        }
    }

    fn config(&self, is_initiator: bool, pattern: Pattern, me: u8, peer: u8) -> Config {
        let peer_key = *key_pair(peer).public_key();
        let remote_public_key = match (pattern, is_initiator, self.expect_key) {
            (Pattern::IK, true, _) => Some(peer_key),
            (_, _, Some(true)) => Some(peer_key),
            (_, _, Some(false)) => Some(PublicKey([0x5a; 32])),
            _ => None,
        };
        Config {
            is_initiator,
            key_pair: Some(key_pair(me)),
            pattern,
            remote_public_key,
            keep_alive: self.keep_alive.then(|| Duration::from_secs(5)),
            timeout: self.timeout.then(|| Duration::from_secs(20)),
            filter_zero_byte_messages: self.filter_empty,
        }
    }
}

fn rnd(eph: u8, header: u8, counter: u8) -> Randomness {
    Randomness {
        ephemeral: key_pair(eph),
        header: [header; 24],
        send_counter: [counter; 8],
    }
}

fn split_sizes<'a>(inp: &mut Input<'a>) -> &'a [u8] {
    let n = (inp.byte() % 4) as usize;
    inp.bytes(n)
}

/// Feeds `stream` to `e` in chunks of `sizes` (cycled), draining after each.
fn feed(e: &mut Engine, w: &mut Watch, now: &mut Instant, stream: &[u8], sizes: &[u8]) {
    for chunk in split_by(stream, sizes) {
        *now += Duration::from_millis(chunk.len() as u64);
        e.handle_input(*now, chunk);
        w.drain(e);
    }
}

fn finish(e: &mut Engine, w: &mut Watch, now: &mut Instant, flags: Flags, msg: &[u8]) {
    if flags.write_after {
        let r = e.write(*now, msg);
        assert_eq!(r.is_err(), e.error().is_some() || e.is_local_ended());
        w.drain(e);
        let d = e.seal_datagram(msg);
        if e.is_open() {
            let d = d.expect("an open stream seals datagrams");
            // Our own datagram is keyed for the peer, not for us.
            assert!(e.open_datagram(&d).is_none());
        }
        let _ = e.open_datagram(msg);
        w.drain(e);
    }
    if flags.end_local {
        e.end();
        w.drain(e);
        let _ = e.wants_raw_end();
    }
    *now += Duration::from_secs(6);
    let _ = e.poll_timeout();
    e.handle_timeout(*now);
    w.drain(e);
    if flags.end_input {
        e.handle_input_end(*now);
        w.drain(e);
    }
    *now += Duration::from_secs(30);
    e.handle_timeout(*now);
    w.drain(e);
    // Destroying is always possible and idempotent.
    e.destroy(None);
    w.drain(e);
    assert!(w.destroyed.is_some());
    e.destroy(None);
    e.handle_input(*now, &[0, 0, 0]);
    w.drain(e);
}

fn handshake_mode(inp: &mut Input<'_>, is_initiator: bool, pattern: Pattern, flags: Flags) {
    let sizes = split_sizes(inp);
    let (me, peer, eph) = if is_initiator {
        (INITIATOR_SEED, RESPONDER_SEED, INITIATOR_EPHEMERAL_SEED)
    } else {
        (RESPONDER_SEED, INITIATOR_SEED, RESPONDER_EPHEMERAL_SEED)
    };
    let cfg = flags.config(is_initiator, pattern, me, peer);
    let mut e = Engine::with_randomness(&cfg, &rnd(eph, 0xa0, 0x01)).expect("engine setup");
    let mut w = Watch::default();
    let mut now = Instant::now();
    // A write before the stream opens is queued.
    if flags.write_after {
        e.write(now, b"queued").expect("queued write");
    }
    e.start(now);
    w.drain(&mut e);
    if is_initiator {
        assert!(!w.sent.is_empty(), "initiator sends msg1 at start");
    }
    let msg = inp.chunk8();
    let stream = inp.rest();
    feed(&mut e, &mut w, &mut now, stream, sizes);
    finish(&mut e, &mut w, &mut now, flags, msg);
}

fn premade_mode(inp: &mut Input<'_>, is_initiator: bool, flags: Flags, genuine_prefix: bool) {
    let sizes = split_sizes(inp);
    let (ri, rr) = premade_ik_cached();
    let (mine, theirs) = if is_initiator { (ri, rr) } else { (rr, ri) };
    let cfg = flags.config(is_initiator, Pattern::IK, 0, 0);
    let mut e = Engine::from_handshake_with_randomness(mine, &cfg, &rnd(1, 0xa1, 0x02));
    let mut w = Watch::default();
    let mut now = Instant::now();
    e.start(now);
    w.drain(&mut e);
    assert!(w.opened && e.is_open(), "premade stream opens at start");

    if genuine_prefix {
        let mut peer =
            Engine::from_handshake_with_randomness(theirs, &Config::default(), &rnd(2, 0xb2, 0x03));
        let mut pw = Watch::default();
        peer.start(now);
        let count = inp.byte() % 8;
        let mut written = Vec::new();
        for _ in 0..count {
            let m = inp.chunk8();
            peer.write(now, m).expect("peer write");
            written.push(m.to_vec());
        }
        pw.drain(&mut peer);
        let mut bytes = std::mem::take(&mut pw.sent);
        let tamper_at = inp.u16() as usize;
        let tamper_xor = inp.byte() | 1;
        let tampered = flags.tamper && !bytes.is_empty();
        if tampered {
            let at = tamper_at % bytes.len();
            bytes[at] ^= tamper_xor;
        }
        feed(&mut e, &mut w, &mut now, &bytes, sizes);
        if !tampered {
            assert!(w.destroyed.is_none(), "genuine frames destroyed the stream");
            let expect: Vec<Vec<u8>> = written
                .into_iter()
                .filter(|m| !(m.is_empty() && (flags.filter_empty || flags.keep_alive)))
                .collect();
            assert_eq!(w.messages, expect, "messages changed on the way");
        }
    }
    let msg = inp.chunk8();
    let stream = inp.rest();
    feed(&mut e, &mut w, &mut now, stream, sizes);
    finish(&mut e, &mut w, &mut now, flags, msg);
}

/// Two engines, a fuzzer-driven schedule.
fn pair_mode(inp: &mut Input<'_>, pattern: Pattern, flags: Flags) {
    let mut cfg_a = flags.config(true, pattern, INITIATOR_SEED, RESPONDER_SEED);
    let mut cfg_b = flags.config(false, pattern, RESPONDER_SEED, INITIATOR_SEED);
    // Keep-alives would add empty messages nobody wrote; exercise them in the other modes.
    cfg_a.keep_alive = None;
    cfg_b.keep_alive = None;
    // A deliberately wrong expected key is a legitimate failure; only allow the right one here.
    if flags.expect_key == Some(false) {
        cfg_a.remote_public_key =
            (pattern == Pattern::IK).then(|| *key_pair(RESPONDER_SEED).public_key());
        cfg_b.remote_public_key = None;
    }
    let filter = flags.filter_empty;
    let mut es = [
        Engine::with_randomness(&cfg_a, &rnd(INITIATOR_EPHEMERAL_SEED, 0xa3, 0x04))
            .expect("engine a"),
        Engine::with_randomness(&cfg_b, &rnd(RESPONDER_EPHEMERAL_SEED, 0xb3, 0x05))
            .expect("engine b"),
    ];
    let mut ws = [Watch::default(), Watch::default()];
    // Bytes each side sent that the other has not received yet.
    let mut wire: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut written: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let mut tampered = false;
    let mut now = Instant::now();
    for (e, w) in es.iter_mut().zip(ws.iter_mut()) {
        e.start(now);
        w.events(e);
    }

    let mut steps = 0;
    while !inp.is_empty() && steps < 64 {
        steps += 1;
        let op = inp.byte();
        let s = (op >> 7) as usize; // which side acts
        let o = 1 - s;
        now += Duration::from_millis(u64::from(op & 7));
        match op % 8 {
            0 | 1 => {
                let m = inp.chunk8();
                match es[s].write(now, m) {
                    Ok(()) => written[s].push(m.to_vec()),
                    Err(_) => assert!(es[s].error().is_some() || es[s].is_local_ended()),
                }
            }
            2 | 3 => {
                // Deliver part of what s sent to o; maybe corrupt one byte of it.
                if let Some(bytes) = es[s].poll_transmit() {
                    wire[s].extend(bytes);
                }
                let n = (inp.byte() as usize).min(wire[s].len());
                let mut part: Vec<u8> = wire[s].drain(..n).collect();
                if op & 0x40 != 0 && flags.tamper && !part.is_empty() {
                    let at = inp.byte() as usize % part.len();
                    part[at] ^= inp.byte() | 1;
                    tampered = true;
                }
                es[o].handle_input(now, &part);
            }
            4 => es[s].end(),
            5 => {
                let m = inp.chunk8();
                if let Ok(d) = es[s].seal_datagram(m) {
                    let got = es[o].open_datagram(&d);
                    if es[o].is_open() {
                        assert_eq!(got.as_deref(), Some(m), "datagram changed on the way");
                    }
                    let mut bad = d.clone();
                    let at = inp.byte() as usize % bad.len();
                    bad[at] ^= 0x80;
                    assert!(
                        es[o].open_datagram(&bad).is_none(),
                        "forged datagram accepted"
                    );
                }
            }
            6 => {
                let _ = es[s].poll_timeout();
                es[s].handle_timeout(now);
            }
            _ => {
                // Move a prefix of the transmit buffer to the wire, the way the I/O adapter does.
                let n = (inp.byte() as usize).min(es[s].transmit_buf().len());
                wire[s].extend_from_slice(&es[s].transmit_buf()[..n]);
                es[s].advance_transmit(n);
                let _ = es[s].wants_raw_end();
            }
        }
        for (e, w) in es.iter_mut().zip(ws.iter_mut()) {
            w.events(e);
        }
    }

    // Flush everything both ways until quiet.
    for _ in 0..4 {
        for s in 0..2 {
            let o = 1 - s;
            if let Some(bytes) = es[s].poll_transmit() {
                wire[s].extend(bytes);
            }
            let part = std::mem::take(&mut wire[s]);
            if !part.is_empty() {
                es[o].handle_input(now, &part);
                ws[o].events(&mut es[o]);
            }
        }
    }
    if tampered {
        return;
    }
    for s in 0..2 {
        assert!(
            ws[s].destroyed.is_none(),
            "side {s} destroyed: {:?}",
            ws[s].destroyed
        );
        assert!(ws[s].opened, "side {s} never opened");
        let o = 1 - s;
        let expect: Vec<Vec<u8>> = written[s]
            .iter()
            .filter(|m| !(m.is_empty() && filter))
            .cloned()
            .collect();
        assert_eq!(
            ws[o].messages, expect,
            "messages from side {s} changed on the way"
        );
    }
    // Ending both sides and then both raw transports closes both cleanly.
    for s in 0..2 {
        es[s].end();
        ws[s].drain(&mut es[s]);
        assert!(
            ws[s].sent.is_empty(),
            "side {s} had unsent bytes after the flush"
        );
        assert!(es[s].wants_raw_end());
    }
    for s in 0..2 {
        es[s].handle_input_end(now);
        ws[s].drain(&mut es[s]);
        assert!(ws[s].ended && ws[s].closed && ws[s].destroyed.is_none());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let flags = Flags::parse(inp.byte(), mode);
    let hi = mode & 0x80 != 0;
    let pattern = if hi { Pattern::IK } else { Pattern::XX };
    match mode % 5 {
        0 => handshake_mode(&mut inp, true, pattern, flags),
        1 => handshake_mode(&mut inp, false, pattern, flags),
        2 => premade_mode(&mut inp, hi, flags, false),
        3 => premade_mode(&mut inp, hi, flags, true),
        _ => pair_mode(&mut inp, pattern, flags),
    }
});
