//! Noise XX / IK handshake state machine fed with hostile messages.
//!
//! Input: `[scenario] [prologue_len] [prologue...] then scenario-specific bytes`.
//!
//! Scenarios (scenario byte % 6):
//! 0. XX responder reads an arbitrary msg1; if accepted, writes msg2 and reads an arbitrary msg3.
//! 1. IK responder reads an arbitrary msg1 (and writes msg2 if it was accepted).
//! 2. XX initiator writes msg1, reads an arbitrary msg2 (and writes msg3 if accepted).
//! 3. IK initiator writes msg1, reads an arbitrary msg2.
//! 4. A genuine XX or IK handshake between fixed keys with fuzzer-chosen payloads, optionally
//!    with one byte of one message corrupted: untouched, both sides finish with matching keys
//!    and every payload arrives unchanged; corrupted, the two sides never both finish with
//!    matching keys.
//! 5. Out-of-turn calls and oversized messages on fresh handshakes.
//!
//! Always: every call returns Ok or Err, and after an Err the handshake stays failed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pswarm::crypto::KeyPair;
use p2pswarm::noise::{Handshake, NoiseError, Pattern, MAX_MESSAGE_LEN};
use p2pswarm_fuzz::{
    key_pair, Input, INITIATOR_EPHEMERAL_SEED, INITIATOR_SEED, RESPONDER_EPHEMERAL_SEED,
    RESPONDER_SEED,
};

fn pattern(bit: bool) -> Pattern {
    if bit {
        Pattern::IK
    } else {
        Pattern::XX
    }
}

fn initiator(p: Pattern, prologue: &[u8], eph: KeyPair) -> Handshake {
    let rs = key_pair(RESPONDER_SEED);
    Handshake::with_ephemeral(
        p,
        true,
        key_pair(INITIATOR_SEED),
        eph,
        prologue,
        Some(*rs.public_key()),
    )
    .expect("initiator with a remote key must construct")
}

fn responder(p: Pattern, prologue: &[u8], eph: KeyPair) -> Handshake {
    Handshake::with_ephemeral(p, false, key_pair(RESPONDER_SEED), eph, prologue, None)
        .expect("responder must construct")
}

/// After a failure the state is poisoned: no further step succeeds.
fn assert_poisoned(hs: &mut Handshake) {
    assert!(!hs.is_finished());
    assert!(hs.finish().is_err());
    assert!(matches!(
        hs.read_message(&[0; 96]),
        Err(NoiseError::OutOfTurn)
    ));
    assert!(matches!(hs.write_message(&[]), Err(NoiseError::OutOfTurn)));
}

/// Reads `msg`; on error checks poisoning. Returns whether the read succeeded.
fn read(hs: &mut Handshake, msg: &[u8]) -> bool {
    match hs.read_message(msg) {
        Ok(payload) => {
            assert!(payload.len() <= msg.len());
            true
        }
        Err(_) => {
            assert_poisoned(hs);
            false
        }
    }
}

fn write(hs: &mut Handshake, payload: &[u8]) -> Option<Vec<u8>> {
    match hs.write_message(payload) {
        Ok(m) => {
            assert!(m.len() <= MAX_MESSAGE_LEN);
            Some(m)
        }
        Err(_) => {
            assert_poisoned(hs);
            None
        }
    }
}

/// A message from the input; when `big` it is padded past the Noise size limit.
fn msg(inp: &mut Input<'_>, big: bool) -> Vec<u8> {
    let mut m = inp.chunk16().to_vec();
    if big {
        m.resize(MAX_MESSAGE_LEN + 1 + m.len() % 8, 0);
    }
    m
}

fn finish_if_done(hs: &Handshake) {
    if hs.is_finished() {
        let r = hs.finish().expect("a finished handshake must split");
        assert_eq!(&r.hash, hs.hash());
    }
}

fn hostile_responder(p: Pattern, prologue: &[u8], inp: &mut Input<'_>, big: bool) {
    let mut r = responder(p, prologue, key_pair(RESPONDER_EPHEMERAL_SEED));
    assert!(!r.is_my_turn());
    let m1 = msg(inp, big);
    if !read(&mut r, &m1) {
        return;
    }
    let payload = inp.chunk8().to_vec();
    if write(&mut r, &payload).is_none() {
        return;
    }
    if p == Pattern::XX {
        let m3 = msg(inp, false);
        read(&mut r, &m3);
    }
    finish_if_done(&r);
}

fn hostile_initiator(p: Pattern, prologue: &[u8], inp: &mut Input<'_>, big: bool) {
    let mut i = initiator(p, prologue, key_pair(INITIATOR_EPHEMERAL_SEED));
    let payload = inp.chunk8().to_vec();
    if write(&mut i, &payload).is_none() {
        return;
    }
    let m2 = msg(inp, big);
    if !read(&mut i, &m2) {
        return;
    }
    if p == Pattern::XX {
        let payload = inp.chunk8().to_vec();
        write(&mut i, &payload);
    }
    finish_if_done(&i);
}

fn genuine(p: Pattern, prologue: &[u8], inp: &mut Input<'_>) {
    let flags = inp.byte();
    // Ephemerals from the input or fixed.
    let (ei, er) = if flags & 1 != 0 {
        (
            KeyPair::from_seed(&inp.array()),
            KeyPair::from_seed(&inp.array()),
        )
    } else {
        (
            key_pair(INITIATOR_EPHEMERAL_SEED),
            key_pair(RESPONDER_EPHEMERAL_SEED),
        )
    };
    let tamper = flags & 2 != 0;
    let tamper_msg = (inp.byte() % 3) as usize;
    let tamper_pos = inp.u16() as usize;
    let tamper_xor = inp.byte() | 1; // never a no-op

    let mut hs = [initiator(p, prologue, ei), responder(p, prologue, er)];
    let steps = if p == Pattern::XX { 3 } else { 2 };
    let mut tampered = false;
    for step in 0..steps {
        let (w, r) = if step % 2 == 0 { (0, 1) } else { (1, 0) };
        assert!(hs[w].is_my_turn() && !hs[r].is_my_turn());
        let payload = inp.chunk8().to_vec();
        let mut m = match hs[w].write_message(&payload) {
            Ok(m) => m,
            Err(e) => {
                // A corrupted ephemeral key can make the next DH fail on the writer's side.
                assert!(tampered, "genuine write {step} failed: {e}");
                assert_poisoned(&mut hs[w]);
                return;
            }
        };
        if tamper && step == tamper_msg && !m.is_empty() {
            let at = tamper_pos % m.len();
            m[at] ^= tamper_xor;
            tampered = true;
        }
        match hs[r].read_message(&m) {
            Ok(got) => {
                if !tampered {
                    assert_eq!(got, payload, "payload changed in a genuine handshake");
                }
            }
            Err(e) => {
                assert!(tampered, "genuine read {step} failed: {e}");
                assert_poisoned(&mut hs[r]);
                return;
            }
        }
    }
    let both = hs[0].is_finished() && hs[1].is_finished();
    if !tampered {
        assert!(both, "genuine handshake did not finish");
    }
    if both {
        let a = hs[0].finish().expect("finish initiator");
        let b = hs[1].finish().expect("finish responder");
        let agree = a.tx == b.rx && a.rx == b.tx && a.hash == b.hash;
        if tampered {
            assert!(!agree, "a corrupted handshake completed with matching keys");
        } else {
            assert!(agree, "genuine handshake disagrees on keys");
            assert_eq!(a.remote_public_key, b.public_key);
            assert_eq!(b.remote_public_key, a.public_key);
            assert!(a.is_initiator && !b.is_initiator);
        }
    }
}

fn out_of_turn(p: Pattern, prologue: &[u8], inp: &mut Input<'_>) {
    let mut i = initiator(p, prologue, key_pair(INITIATOR_EPHEMERAL_SEED));
    let mut r = responder(p, prologue, key_pair(RESPONDER_EPHEMERAL_SEED));
    let m = inp.chunk16().to_vec();
    // An initiator cannot read first, a responder cannot write first.
    assert!(matches!(i.read_message(&m), Err(NoiseError::OutOfTurn)));
    assert!(matches!(r.write_message(&m), Err(NoiseError::OutOfTurn)));
    // An oversized payload is refused by the writer.
    let fresh_len = inp.byte() as usize;
    let mut i2 = initiator(p, prologue, key_pair(INITIATOR_EPHEMERAL_SEED));
    let big = vec![0x5a; MAX_MESSAGE_LEN - 8 + fresh_len];
    match i2.write_message(&big) {
        Ok(out) => assert!(out.len() <= MAX_MESSAGE_LEN),
        Err(e) => {
            assert!(matches!(e, NoiseError::MessageTooLong), "{e}");
            assert_poisoned(&mut i2);
        }
    }
    // IK initiator without the server key.
    assert!(matches!(
        Handshake::with_ephemeral(
            Pattern::IK,
            true,
            key_pair(INITIATOR_SEED),
            key_pair(INITIATOR_EPHEMERAL_SEED),
            prologue,
            None
        ),
        Err(NoiseError::MissingRemoteStatic)
    ));
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let sel = inp.byte();
    let prologue = inp.chunk8().to_vec();
    let p = pattern(sel & 0x80 != 0);
    let big = sel & 0x40 != 0 && sel & 0x20 != 0;
    match sel % 6 {
        0 => hostile_responder(Pattern::XX, &prologue, &mut inp, big),
        1 => hostile_responder(Pattern::IK, &prologue, &mut inp, big),
        2 => hostile_initiator(Pattern::XX, &prologue, &mut inp, big),
        3 => hostile_initiator(Pattern::IK, &prologue, &mut inp, big),
        4 => genuine(p, &prologue, &mut inp),
        _ => out_of_turn(p, &prologue, &mut inp),
    }
});
