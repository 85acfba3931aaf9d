//! Byte vectors produced by the pinned JS protomux 3.12.1 and blind-relay 1.6.1
//! (`tests/interop/js/gen-protomux-vectors.js`).

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

const OPEN: &str = "0001010b626c696e642d72656c617920aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const PAIR_INIT: &str =
    "0100011111111111111111111111111111111111111111111111111111111111111111fe87d6120000";
const BATCH: &str = "000001060268656c6c6f0602776f726c640000090102056f7468657200";

#[test]
fn open_message_close_and_batch_match_js() {
    let mut mux = Mux::new();
    let (id, frame) = mux.open("blind-relay", Some(&[0xaa; 32]), &[]);
    assert_eq!(id, 1);
    assert_eq!(frame, hex(OPEN));
    assert!(!mux.is_open(1));
    mux.receive(&hex(OPEN)).expect("remote open");
    assert_eq!(
        mux.poll_event(),
        Some(Event::Opened {
            local_id: 1,
            handshake: vec![]
        })
    );
    assert!(mux.is_open(1));
    let mut pair = vec![1u8];
    pair.extend_from_slice(&[0x11; 32]);
    pair.extend_from_slice(&hex("fe87d61200"));
    pair.push(0);
    assert_eq!(mux.message(1, 0, &pair), Some(hex(PAIR_INIT)));
    assert_eq!(
        encode_batch(&[
            (1, 2, b"hello"),
            (1, 2, b"world"),
            (0, control::OPEN, &hex("02056f7468657200"))
        ]),
        hex(BATCH)
    );
    assert_eq!(mux.close(1), Some(hex("000301")));
    assert!(!mux.is_open(1));
}

#[test]
fn js_frames_decode_into_channel_events() {
    let mut mux = Mux::new();
    // the remote opens first; its message arrives before we open and is buffered
    mux.receive(&hex(OPEN)).expect("open");
    assert_eq!(
        mux.poll_event(),
        Some(Event::RemoteOpen {
            remote_id: 1,
            protocol: "blind-relay".into(),
            id: Some(vec![0xaa; 32])
        })
    );
    mux.receive(&hex(PAIR_INIT)).expect("pair");
    assert_eq!(mux.poll_event(), None);
    let (local, _) = mux.open("blind-relay", Some(&[0xaa; 32]), &[]);
    assert!(matches!(mux.poll_event(), Some(Event::Opened { local_id, .. }) if local_id == local));
    match mux.poll_event() {
        Some(Event::Message {
            local_id,
            kind: 0,
            payload,
        }) => {
            assert_eq!(local_id, local);
            assert_eq!(payload[0], 1);
            assert_eq!(&payload[1..33], &[0x11; 32]);
        }
        other => panic!("expected the buffered pair, got {other:?}"),
    }
    // a batch: two messages on remote channel 1, then an open of "other" (remote id 2)
    mux.receive(&hex(BATCH)).expect("batch");
    let evs: Vec<Event> = std::iter::from_fn(|| mux.poll_event()).collect();
    assert_eq!(
        evs,
        vec![
            Event::Message {
                local_id: local,
                kind: 2,
                payload: b"hello".to_vec()
            },
            Event::Message {
                local_id: local,
                kind: 2,
                payload: b"world".to_vec()
            },
            Event::RemoteOpen {
                remote_id: 2,
                protocol: "other".into(),
                id: None
            },
        ]
    );
    assert_eq!(mux.reject(2), Some(hex("000202")));
    mux.receive(&hex("000301")).expect("close");
    assert_eq!(mux.poll_event(), Some(Event::Closed { local_id: local }));
    // messages for a closed channel are ignored
    mux.receive(&hex(PAIR_INIT)).expect("ignored");
    assert_eq!(mux.poll_event(), None);
}

#[test]
fn bad_frames_are_errors_not_panics() {
    let mut mux = Mux::new();
    assert_eq!(mux.receive(&hex("0001")), Err(Error::Malformed));
    // open skipping remote ids
    assert_eq!(
        mux.receive(&hex("000105056f7468657200")),
        Err(Error::InvalidOpen)
    );
    // reject of something we never opened
    assert_eq!(mux.receive(&hex("000207")), Err(Error::InvalidReject));
    // pseudo-random garbage, including mutations of valid frames
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let seeds = [hex(OPEN), hex(PAIR_INIT), hex(BATCH)];
    for i in 0..20_000 {
        let mut m = Mux::new();
        let _ = m.open("blind-relay", Some(&[0xaa; 32]), &[]);
        let mut f = seeds[i % 3].clone();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = (x as usize) % f.len();
            f[pos] = (x >> 32) as u8;
        }
        f.truncate(((x >> 40) as usize) % (f.len() + 1));
        let _ = m.receive(&f);
        while m.poll_event().is_some() {}
    }
}
