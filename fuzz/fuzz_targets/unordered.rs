//! Unordered datagrams (`secret_stream::unordered`, XSalsa20-Poly1305 with a counter nonce).
//!
//! Input: `[mode] [hash: 64] [counter a: 8] [counter b: 8] ...`, then items `[kind] ...`.
//! Two peers share the handshake hash; `a` is the initiator, `b` the responder.
//!
//! * `Unordered::open` on arbitrary datagrams (kind bit 0 clear: `[len: 2] [bytes]`) never
//!   panics, returns `None` for anything shorter than the overhead, and a returned plaintext is
//!   exactly `len - OVERHEAD` bytes.
//! * seal -> open (kind bit 0 set: `[len: 1] [message]`): the peer opens it to the same bytes;
//!   the sender cannot open its own datagram (keys are per direction); any one-bit change is
//!   rejected; datagrams can be opened in any order and more than once (unordered, as in JS).
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pswarm::secret_stream::unordered::{send_key, Unordered, OVERHEAD};
use p2pswarm_fuzz::Input;

fn check_open(u: &Unordered, d: &[u8]) -> Option<Vec<u8>> {
    let r = u.open(d);
    if d.len() < OVERHEAD {
        assert!(r.is_none(), "a datagram shorter than the overhead opened");
    }
    if let Some(pt) = &r {
        assert_eq!(pt.len(), d.len() - OVERHEAD);
    }
    r
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mode = inp.byte();
    let hash: [u8; 64] = inp.array();
    let ca: [u8; 8] = inp.array();
    let cb: [u8; 8] = inp.array();
    assert_ne!(send_key(&hash, true), send_key(&hash, false));
    let mut peers = [
        Unordered::new(&hash, true, ca),
        Unordered::new(&hash, false, cb),
    ];
    let mut sealed: Vec<(usize, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut n = 0;
    while !inp.is_empty() && n < 64 {
        n += 1;
        let kind = inp.byte();
        let s = usize::from(kind >> 7); // sender (or receiver for arbitrary datagrams)
        let o = 1 - s;
        if kind & 1 == 0 {
            let d = inp.chunk16();
            check_open(&peers[s], d);
            continue;
        }
        let msg = inp.chunk8().to_vec();
        let d = match peers[s].seal(&msg) {
            Ok(d) => d,
            // Only after 2^64 datagrams; cannot happen here.
            Err(e) => panic!("seal failed: {e}"),
        };
        assert_eq!(d.len(), msg.len() + OVERHEAD);
        assert_eq!(
            check_open(&peers[o], &d).as_deref(),
            Some(&msg[..]),
            "round trip"
        );
        assert!(
            check_open(&peers[s], &d).is_none(),
            "sender opened its own datagram"
        );
        let bit = usize::from((kind >> 1) & 0x3f) * 13 % (d.len() * 8);
        let mut bad = d.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(
            check_open(&peers[o], &bad).is_none(),
            "forged datagram opened"
        );
        sealed.push((s, d, msg));
    }
    // Unordered: every datagram still opens, in reverse order and repeatedly.
    if mode & 1 != 0 {
        for (s, d, msg) in sealed.iter().rev() {
            assert_eq!(peers[1 - s].open(d).as_deref(), Some(&msg[..]));
        }
    }
    // Counters are distinct per sender, so no two datagrams from one side share a nonce.
    for s in 0..2 {
        let mut nonces: Vec<&[u8]> = sealed
            .iter()
            .filter(|(from, _, _)| *from == s)
            .map(|(_, d, _)| &d[..8])
            .collect();
        let total = nonces.len();
        nonces.sort_unstable();
        nonces.dedup();
        assert_eq!(nonces.len(), total, "nonce reused");
    }
});
