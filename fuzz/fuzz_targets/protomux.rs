//! Protomux framing and channel state (`protomux::Mux`) and the blind-relay messages
//! (`dht::blind_relay::{Pair, Unpair}`).
//!
//! Input: a sequence of `[op] [len] [len bytes]` records. `op` picks a local action (open a
//! channel, send a message, close, reject, accept the last remote open) or feeds the bytes to
//! `Mux::receive` as one incoming frame; every mode also decodes the bytes as blind-relay
//! `Pair` / `Unpair` payloads.
//!
//! Properties:
//! * `receive` never panics, whatever the frame; events only name channels that exist;
//! * channel tables stay bounded (`MAX_CHANNELS`), whatever ids a remote sends;
//! * frames the mux encodes (open, message, close, reject, batch) are accepted by a second mux;
//!   an open answered by the same open on the other side reports `Opened` on both, and messages
//!   then arrive unchanged;
//! * a decoded `Pair` / `Unpair` re-encodes to a canonical form that decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pswarm::dht::blind_relay::{Pair, Unpair};
use p2pswarm::protomux::{encode_batch, Event, Mux, MAX_CHANNELS};

const PROTOCOL: &str = "blind-relay";

fn drain(mux: &mut Mux) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(ev) = mux.poll_event() {
        out.push(ev);
        assert!(out.len() <= 4 * MAX_CHANNELS + 4096, "unbounded events");
    }
    out
}

fn check_relay_messages(b: &[u8]) {
    if let Ok(p) = Pair::decode(b) {
        let enc = p.encode();
        let again = Pair::decode(&enc).expect("a re-encoded pair decodes");
        assert_eq!(again, p);
        assert_eq!(again.encode(), enc);
    }
    if let Ok(u) = Unpair::decode(b) {
        let enc = u.encode();
        assert_eq!(Unpair::decode(&enc), Ok(u));
    }
}

/// Two muxes opening the same channel exchange a message intact.
fn check_pair(id: &[u8], payload: &[u8], kind: u64) {
    let (mut a, mut b) = (Mux::new(), Mux::new());
    let (la, open_a) = a.open(PROTOCOL, Some(id), b"hs-a");
    let (lb, open_b) = b.open(PROTOCOL, Some(id), b"");
    b.receive(&open_a).expect("b accepts a's open");
    a.receive(&open_b).expect("a accepts b's open");
    assert!(drain(&mut a).contains(&Event::Opened { local_id: la, handshake: Vec::new() }));
    assert!(drain(&mut b).contains(&Event::Opened { local_id: lb, handshake: b"hs-a".to_vec() }));
    let msg = a.message(la, kind, payload).expect("channel is open");
    b.receive(&msg).expect("b accepts a's message");
    assert_eq!(
        drain(&mut b),
        vec![Event::Message { local_id: lb, kind, payload: payload.to_vec() }]
    );
}

fuzz_target!(|data: &[u8]| {
    let mut mux = Mux::new();
    let mut opened: Vec<u64> = Vec::new();
    let mut last_remote: Option<(u64, String, Option<Vec<u8>>)> = None;
    let mut rest = data;
    let mut steps = 0;
    while let [op, len, tail @ ..] = rest {
        steps += 1;
        if steps > 256 {
            break;
        }
        let n = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        check_relay_messages(bytes);
        match op % 8 {
            0 => {
                let (id, _) = mux.open(PROTOCOL, Some(bytes), b"");
                opened.push(id);
            }
            1 => {
                if let Some(&id) = opened.get(usize::from(*len) % opened.len().max(1)) {
                    let _ = mux.message(id, u64::from(op >> 3), bytes);
                }
            }
            2 => {
                if let Some(id) = opened.pop() {
                    let _ = mux.close(id);
                }
            }
            3 => {
                if let Some((rid, _, _)) = last_remote.take() {
                    let _ = mux.reject(rid);
                }
            }
            4 => {
                if let Some((_, protocol, id)) = last_remote.take() {
                    let (lid, _) = mux.open(&protocol, id.as_deref(), b"");
                    opened.push(lid);
                }
            }
            5 => check_pair(bytes, bytes, u64::from(op >> 3)),
            6 => {
                let items: Vec<(u64, u64, &[u8])> = bytes
                    .chunks(8)
                    .map(|c| (u64::from(c[0] % 4), u64::from(op >> 3), c))
                    .collect();
                let _ = mux.receive(&encode_batch(&items));
            }
            _ => {
                let _ = mux.receive(bytes);
            }
        }
        for ev in drain(&mut mux) {
            if let Event::RemoteOpen { remote_id, protocol, id } = ev {
                assert!(remote_id >= 1 && remote_id <= MAX_CHANNELS as u64);
                last_remote = Some((remote_id, protocol, id));
            }
        }
        if opened.len() > MAX_CHANNELS {
            opened.clear();
        }
    }
});
