//! `crypto_secretstream_xchacha20poly1305` reimplementation (`secret_stream::cipher`).
//!
//! Input: `[mode] [key: 32] [header: 24] ...`.
//!
//! * mode bit 0 clear: arbitrary ciphertexts (`[kind] [len: 2] [bytes]`), mixed with genuine
//!   next messages from a `Push` on the same key (kind & 0x0f == 0x0f), go to
//!   `Pull::pull_in_place`. Never panics; a failed pull changes neither its buffer nor the
//!   state, checked by replaying only the accepted ciphertexts on a second `Pull`, which must
//!   give the same results.
//! * mode bit 0 set: a push -> pull round trip of arbitrary messages with arbitrary tags (each
//!   `[tag] [len] [plaintext]`). Every message decrypts to the same bytes and tag; a corrupted
//!   copy, a truncated copy and the next message (out of order) are rejected first and do not
//!   disturb the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pswarm::secret_stream::cipher::{Pull, Push, ABYTES, HEADERBYTES};
use p2pswarm_fuzz::Input;

fn hostile(key: &[u8; 32], header: &[u8; HEADERBYTES], inp: &mut Input<'_>) {
    let mut all = Pull::new(key, header);
    let mut push = Push::new(key, header);
    let mut accepted = Vec::new();
    let mut results = Vec::new();
    let mut n = 0;
    while !inp.is_empty() && n < 64 {
        n += 1;
        // Mostly arbitrary ciphertexts; sometimes the genuine next message, so that pulls
        // succeed in between and a rejected ciphertext is followed by a valid one.
        let kind = inp.byte();
        let genuine = kind & 0x0f == 0x0f;
        let original = if genuine {
            let mut ct = Vec::new();
            push.push(inp.chunk8(), kind >> 4, &mut ct);
            ct
        } else {
            inp.chunk16().to_vec()
        };
        let mut ct = original.clone();
        match all.pull_in_place(&mut ct) {
            Ok(tag) => {
                assert!(original.len() >= ABYTES);
                // Only the message part changes; the tag byte and MAC stay in place.
                assert_eq!(ct[0], original[0]);
                assert_eq!(ct[ct.len() - 16..], original[original.len() - 16..]);
                accepted.push(original);
                results.push((tag, ct));
            }
            Err(_) => {
                assert!(!genuine, "a genuine message was rejected after garbage");
                assert_eq!(ct, original, "a failed pull modified its input");
            }
        }
    }
    let mut replay = Pull::new(key, header);
    for (ct, (tag, pt)) in accepted.iter().zip(&results) {
        let mut c = ct.clone();
        let t = replay
            .pull_in_place(&mut c)
            .expect("a rejected message changed the pull state");
        assert_eq!((t, &c), (*tag, pt));
    }
}

fn round_trip(key: &[u8; 32], header: &[u8; HEADERBYTES], inp: &mut Input<'_>) {
    let flags = inp.byte();
    let mut push = Push::new(key, header);
    let mut pull = Pull::new(key, header);
    let mut msgs = Vec::new();
    let mut n = 0;
    while !inp.is_empty() && n < 32 {
        n += 1;
        let tag = inp.byte();
        let pt = inp.chunk16().to_vec();
        let mut ct = Vec::new();
        push.push(&pt, tag, &mut ct);
        assert_eq!(ct.len(), pt.len() + ABYTES);
        msgs.push((tag, pt, ct));
    }
    for i in 0..msgs.len() {
        let (tag, pt, ct) = &msgs[i];
        if flags & 1 != 0 {
            // Flip one bit somewhere.
            let mut bad = ct.clone();
            let at = (usize::from(flags >> 1) * 7 + i) % bad.len();
            bad[at] ^= 1 << (i % 8);
            assert!(
                pull.pull_in_place(&mut bad).is_err(),
                "corrupted message accepted"
            );
        }
        if flags & 2 != 0 {
            let mut short = ct[..ct.len() - 1].to_vec();
            assert!(
                pull.pull_in_place(&mut short).is_err(),
                "truncated message accepted"
            );
        }
        if flags & 4 != 0 {
            if let Some((_, _, next)) = msgs.get(i + 1) {
                let mut next = next.clone();
                assert!(
                    pull.pull_in_place(&mut next).is_err(),
                    "reordered message accepted"
                );
            }
        }
        let mut buf = ct.clone();
        let got = pull
            .pull_in_place(&mut buf)
            .expect("a pushed message failed to pull");
        assert_eq!(got, *tag, "tag changed");
        assert_eq!(&buf[1..buf.len() - 16], &pt[..], "plaintext changed");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let key: [u8; 32] = inp.array();
    let header: [u8; HEADERBYTES] = inp.array();
    if mode & 1 == 0 {
        hostile(&key, &header, &mut inp);
    } else {
        round_trip(&key, &header, &mut inp);
    }
});
