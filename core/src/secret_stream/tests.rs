use std::time::{Duration, Instant};

use super::cipher::{Pull, Push, TAG_FINAL, TAG_MESSAGE};
use super::unordered::{send_key, Unordered};
use super::*;
use crate::crypto::{to_hex, KeyPair};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("hex")
}

fn kp(b: u8) -> KeyPair {
    KeyPair::from_seed(&[b; 32])
}

const XX_HASH: &str = "904bbe89cd78fb98b811db439e8c9b546f524311b5ca9cc38393af54937661f25ebc1dbfd3f12d1bb77a8dfbc52027ce3c4111c60e4dfac926822ef8d79e9bcc";
const XX_INIT_TX: &str = "78b14100bcd57f02f9e58fabd03b064db09f4811cfb0c69c74c8c68c4003090b";

fn header_a0() -> [u8; 24] {
    std::array::from_fn(|i| 0xa0 + i as u8)
}

#[test]
fn stream_ids_and_send_keys_match_spec() {
    let hash: [u8; 64] = h(XX_HASH).try_into().expect("64");
    assert_eq!(
        to_hex(&stream_id(&hash, true)),
        "81db16addd83a7be6d290f46957a17f55a8e18008cdfb6ad6a2a00198919b670"
    );
    assert_eq!(
        to_hex(&stream_id(&hash, false)),
        "33bdb0e5fa9b7df6f0636ab020c5adba68e3ca9719dd8ad144bb231ec85c843c"
    );
    assert_eq!(
        to_hex(&send_key(&hash, true)),
        "268ee8db15293bb25fc6b56474490306bdcd847aaa231d732d396e9245ab4ebf"
    );
    assert_eq!(
        to_hex(&send_key(&hash, false)),
        "0ec2ca1c7735f2a6317d799645ebdb903129f08c562a65407bf360f7d9c489d5"
    );
}

#[test]
fn secretstream_frames_match_spec() {
    let key: [u8; 32] = h(XX_INIT_TX).try_into().expect("32");
    let mut push = Push::new(&key, &header_a0());
    let mut pull = Pull::new(&key, &header_a0());
    let cases: [(&[u8], &str); 3] = [
        (b"hello", "07457c6794f30f2bf5f8d250c07ce3e21ff8bd50a76f"),
        (b"", "4970e8f2ba98a873a59bcc956eb0683751"),
        (
            b"a longer message that spans more than sixteen bytes",
            "3202ac5e314c276eb6dc65eb0674d81d7cb2c3f01e60825be46ceea7053801a0f12e10d5ded6095a4d334a6029728c5d93d6d3dbacccdd1ce5feecff024eb8f47886173d",
        ),
    ];
    for (msg, want) in cases {
        let mut out = Vec::new();
        push.push(msg, TAG_MESSAGE, &mut out);
        assert_eq!(to_hex(&out), want);
        assert_eq!(pull.pull_in_place(&mut out), Ok(TAG_MESSAGE));
        assert_eq!(&out[1..out.len() - 16], msg);
    }
}

#[test]
fn secretstream_rekeys_on_final_like_libsodium() {
    let key = [7u8; 32];
    let mut push = Push::new(&key, &header_a0());
    let mut pull = Pull::new(&key, &header_a0());
    for (i, tag) in [
        TAG_MESSAGE,
        TAG_FINAL,
        TAG_MESSAGE,
        cipher::TAG_REKEY,
        TAG_MESSAGE,
    ]
    .into_iter()
    .enumerate()
    {
        let mut out = Vec::new();
        push.push(&[i as u8; 33], tag, &mut out);
        assert_eq!(pull.pull_in_place(&mut out), Ok(tag));
    }
    // a flipped bit fails and leaves the state usable for the genuine message
    let mut out = Vec::new();
    push.push(b"x", TAG_MESSAGE, &mut out);
    let mut bad = out.clone();
    bad[1] ^= 1;
    assert!(pull.pull_in_place(&mut bad).is_err());
    assert!(pull.pull_in_place(&mut out).is_ok());
    assert!(pull.pull_in_place(&mut [0u8; 16]).is_err());
}

#[test]
fn unordered_datagram_matches_spec() {
    let hash: [u8; 64] = h(XX_HASH).try_into().expect("64");
    // counter after increment must be 0102030405060708
    let start = u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]) - 1;
    let mut u = Unordered::new(&hash, true, start.to_le_bytes());
    let d = u.seal(b"ping").expect("seal");
    assert_eq!(
        to_hex(&d),
        "010203040506070833fb2fa71c8157b18462a821f4dd38f6ebc5a67a"
    );
    let r = Unordered::new(&hash, false, [0; 8]);
    assert_eq!(r.open(&d), Some(b"ping".to_vec()));
    let mut bad = d.clone();
    bad[20] ^= 1;
    assert_eq!(r.open(&bad), None);
    assert_eq!(r.open(&d[..23]), None);
}

fn rnd(eph: u8, header: [u8; 24]) -> Randomness {
    Randomness {
        ephemeral: kp(eph),
        header,
        send_counter: [0; 8],
    }
}

fn cfg(init: bool, key: u8) -> Config {
    Config {
        key_pair: Some(kp(key)),
        ..Config::new(init)
    }
}

/// Moves bytes between two engines, `chunk` bytes at a time, until both are quiet.
fn pump(a: &mut Engine, b: &mut Engine, now: Instant, chunk: usize) {
    loop {
        let mut moved = false;
        if let Some(bytes) = a.poll_transmit() {
            moved = true;
            for c in bytes.chunks(chunk) {
                b.handle_input(now, c);
            }
        }
        if let Some(bytes) = b.poll_transmit() {
            moved = true;
            for c in bytes.chunks(chunk) {
                a.handle_input(now, c);
            }
        }
        if !moved {
            return;
        }
    }
}

fn events(e: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

fn messages(e: &mut Engine) -> Vec<Vec<u8>> {
    events(e)
        .into_iter()
        .filter_map(|ev| match ev {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn open_pair(now: Instant) -> (Engine, Engine) {
    let mut a = Engine::with_randomness(&cfg(true, 0x11), &rnd(0x33, header_a0())).expect("a");
    let mut b = Engine::with_randomness(&cfg(false, 0x22), &rnd(0x44, [0xbb; 24])).expect("b");
    a.start(now);
    b.start(now);
    pump(&mut a, &mut b, now, usize::MAX);
    assert!(a.is_open() && b.is_open());
    assert!(matches!(events(&mut a)[..], [Event::Open]));
    assert!(matches!(events(&mut b)[..], [Event::Open]));
    (a, b)
}

#[test]
fn xx_wire_bytes_match_spec() {
    let now = Instant::now();
    let mut a = Engine::with_randomness(&cfg(true, 0x11), &rnd(0x33, header_a0())).expect("a");
    let mut b = Engine::with_randomness(&cfg(false, 0x22), &rnd(0x44, [0xbb; 24])).expect("b");
    a.start(now);
    b.start(now);
    assert!(b.poll_transmit().is_none(), "responder waits for msg1");
    let m1 = a.poll_transmit().expect("m1");
    assert_eq!(
        to_hex(&m1),
        format!(
            "200000{}",
            "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce"
        )
    );
    b.handle_input(now, &m1);
    let m2 = b.poll_transmit().expect("m2");
    assert_eq!(&m2[..3], &[96, 0, 0]);
    a.handle_input(now, &m2);
    assert!(a.is_open());
    a.write(now, b"hello").expect("write");
    let out = a.poll_transmit().expect("m3 + header + data");
    assert_eq!(&out[..3], &[64, 0, 0]);
    let header_frame = &out[67..67 + 59];
    assert_eq!(
        to_hex(header_frame),
        "38000081db16addd83a7be6d290f46957a17f55a8e18008cdfb6ad6a2a00198919b670a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7"
    );
    assert_eq!(
        to_hex(&out[126..]),
        "16000007457c6794f30f2bf5f8d250c07ce3e21ff8bd50a76f"
    );
    b.handle_input(now, &out);
    assert!(b.is_open());
    assert_eq!(messages(&mut b), vec![b"hello".to_vec()]);
    assert_eq!(a.remote_public_key(), Some(kp(0x22).public_key()));
    assert_eq!(b.remote_public_key(), Some(kp(0x11).public_key()));
    assert_eq!(to_hex(&a.handshake().expect("hs").hash), XX_HASH);
}

#[test]
fn one_byte_chunks_and_boundaries_preserved() {
    let now = Instant::now();
    let mut a = Engine::new(&cfg(true, 1)).expect("a");
    let mut b = Engine::new(&cfg(false, 2)).expect("b");
    let msgs: Vec<Vec<u8>> = vec![vec![], vec![1], vec![2; 1000], vec![3; 70_000]];
    for m in &msgs {
        a.write(now, m).expect("queued before open");
    }
    a.start(now);
    b.start(now);
    pump(&mut a, &mut b, now, 1);
    assert_eq!(messages(&mut b), msgs);
    assert_eq!(
        b.raw_bytes_read(),
        msgs.iter().map(|m| m.len() as u64 + 17).sum::<u64>()
    );
    assert_eq!(
        a.raw_bytes_written(),
        msgs.iter().map(|m| m.len() as u64 + 20).sum::<u64>()
    );
}

#[test]
fn premade_handshake_goes_straight_to_headers() {
    use crate::noise::{Handshake, Pattern};
    let now = Instant::now();
    let mut i = Handshake::new(
        Pattern::IK,
        true,
        kp(1),
        &crate::crypto::ns::PEER_HANDSHAKE,
        Some(*kp(2).public_key()),
    )
    .expect("i");
    let mut r = Handshake::new(
        Pattern::IK,
        false,
        kp(2),
        &crate::crypto::ns::PEER_HANDSHAKE,
        None,
    )
    .expect("r");
    r.read_message(&i.write_message(b"p1").expect("m1"))
        .expect("r1");
    i.read_message(&r.write_message(b"p2").expect("m2"))
        .expect("i2");
    let mut a = Engine::from_handshake(i.finish().expect("i"), &Config::default());
    let mut b = Engine::from_handshake(r.finish().expect("r"), &Config::default());
    assert!(a.is_initiator() && !b.is_initiator());
    a.start(now);
    b.start(now);
    assert_eq!(a.transmit_buf().len(), 59, "only the header frame");
    a.write(now, b"data").expect("write");
    pump(&mut a, &mut b, now, usize::MAX);
    assert_eq!(messages(&mut b), vec![b"data".to_vec()]);
    let d = a.seal_datagram(b"dgram").expect("seal");
    assert_eq!(b.open_datagram(&d), Some(b"dgram".to_vec()));
}

fn destroyed(e: &mut Engine) -> Option<Error> {
    events(e).into_iter().find_map(|ev| match ev {
        Event::Destroyed(err) => Some(err),
        _ => None,
    })
}

#[test]
fn flipped_bit_in_data_destroys_with_decrypt_error() {
    let now = Instant::now();
    let (mut a, mut b) = open_pair(now);
    a.write(now, b"secret").expect("w");
    let mut out = a.poll_transmit().expect("out");
    let last = out.len() - 1;
    out[last] ^= 0x40;
    b.handle_input(now, &out);
    assert!(matches!(destroyed(&mut b), Some(Error::Decrypt)));
    assert!(matches!(b.write(now, b"x"), Err(Error::Decrypt)));
}

#[test]
fn short_data_frame_is_invalid_message() {
    let now = Instant::now();
    let (_a, mut b) = open_pair(now);
    b.handle_input(now, &[5, 0, 0, 1, 2, 3, 4, 5]);
    assert!(matches!(destroyed(&mut b), Some(Error::InvalidMessage(5))));
}

#[test]
fn oversized_length_prefix_in_handshake_fails_fast() {
    let now = Instant::now();
    let mut b = Engine::new(&cfg(false, 2)).expect("b");
    b.start(now);
    b.handle_input(now, &[0xff, 0xff, 0xff]);
    assert!(matches!(
        destroyed(&mut b),
        Some(Error::FrameTooLarge(0xff_ffff))
    ));
}

#[test]
fn wrong_header_length_or_id_is_rejected() {
    let now = Instant::now();
    let mut a = Engine::new(&cfg(true, 1)).expect("a");
    let mut b = Engine::new(&cfg(false, 2)).expect("b");
    a.start(now);
    b.handle_input(now, &a.poll_transmit().expect("m1"));
    a.handle_input(now, &b.poll_transmit().expect("m2"));
    let out = a.poll_transmit().expect("m3+hdr");
    // msg3 ok, then a header frame with a flipped stream id
    let mut bad = out.clone();
    bad[67 + 3] ^= 1;
    b.handle_input(now, &bad);
    assert!(matches!(destroyed(&mut b), Some(Error::InvalidHeader)));

    let mut a = Engine::new(&cfg(true, 1)).expect("a");
    let mut b = Engine::new(&cfg(false, 2)).expect("b");
    a.start(now);
    b.handle_input(now, &a.poll_transmit().expect("m1"));
    a.handle_input(now, &b.poll_transmit().expect("m2"));
    let out = a.poll_transmit().expect("m3+hdr");
    let mut bad = out[..67].to_vec();
    bad.extend_from_slice(&[57, 0, 0]);
    b.handle_input(now, &bad);
    assert!(matches!(
        destroyed(&mut b),
        Some(Error::InvalidHeaderMessage(57))
    ));
}

#[test]
fn garbage_handshake_fails() {
    let now = Instant::now();
    let mut b = Engine::new(&cfg(false, 2)).expect("b");
    b.start(now);
    b.handle_input(now, &[10, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert!(matches!(destroyed(&mut b), Some(Error::Handshake(_))));
}

#[test]
fn wrong_remote_static_key_is_a_handshake_error() {
    let now = Instant::now();
    let mut a = Engine::new(&Config {
        remote_public_key: Some(*kp(9).public_key()),
        ..cfg(true, 1)
    })
    .expect("a");
    let mut b = Engine::new(&cfg(false, 2)).expect("b");
    a.start(now);
    b.start(now);
    pump(&mut a, &mut b, now, usize::MAX);
    assert!(matches!(
        destroyed(&mut a),
        Some(Error::Handshake(
            crate::noise::NoiseError::UnexpectedRemoteKey { .. }
        ))
    ));
    // the responder never opens: its raw stream ends before msg3
    b.handle_input_end(now);
    assert!(matches!(destroyed(&mut b), Some(Error::EndedBeforeOpen)));
}

#[test]
fn eof_mid_frame_is_truncated_and_clean_end_closes() {
    let now = Instant::now();
    let (mut a, mut b) = open_pair(now);
    a.write(now, b"abc").expect("w");
    let out = a.poll_transmit().expect("out");
    b.handle_input(now, &out[..out.len() - 1]);
    b.handle_input_end(now);
    assert!(matches!(destroyed(&mut b), Some(Error::TruncatedFrame)));

    let (mut a, mut b) = open_pair(now);
    a.write(now, b"last").expect("w");
    a.end();
    assert!(!a.wants_raw_end(), "bytes still pending");
    b.handle_input(now, &a.poll_transmit().expect("out"));
    assert!(a.wants_raw_end());
    assert!(matches!(a.write(now, b"x"), Err(Error::WriteAfterEnd)));
    b.handle_input_end(now);
    assert_eq!(messages(&mut b), vec![b"last".to_vec()]);
    b.end();
    assert!(matches!(events(&mut b)[..], [Event::Closed]));
}

#[test]
fn keep_alive_sends_empty_frames_that_the_peer_filters() {
    let t0 = Instant::now();
    let ka = Some(Duration::from_secs(5));
    let mut a = Engine::new(&Config {
        keep_alive: ka,
        ..cfg(true, 1)
    })
    .expect("a");
    let mut b = Engine::new(&Config {
        keep_alive: ka,
        ..cfg(false, 2)
    })
    .expect("b");
    a.start(t0);
    b.start(t0);
    pump(&mut a, &mut b, t0, usize::MAX);
    events(&mut a);
    events(&mut b);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    a.handle_timeout(t0 + Duration::from_secs(4));
    assert!(a.poll_transmit().is_none());
    a.handle_timeout(t0 + Duration::from_secs(5));
    let ka_frame = a.poll_transmit().expect("keep-alive");
    assert_eq!(ka_frame.len(), 20);
    b.handle_input(t0, &ka_frame);
    assert!(events(&mut b).is_empty(), "filtered");
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    // a write refreshes the idle timer
    a.write(t0 + Duration::from_secs(7), b"x").expect("w");
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(12)));
}

#[test]
fn inactivity_timeout_destroys() {
    let t0 = Instant::now();
    let mut a = Engine::new(&Config {
        timeout: Some(Duration::from_secs(3)),
        ..cfg(true, 1)
    })
    .expect("a");
    a.start(t0);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    a.handle_timeout(t0 + Duration::from_secs(3));
    assert!(matches!(destroyed(&mut a), Some(Error::TimedOut)));
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn too_large_write_is_refused_without_destroying() {
    let now = Instant::now();
    let (mut a, _b) = open_pair(now);
    let big = vec![0u8; MAX_MESSAGE_LEN + 1];
    assert!(matches!(a.write(now, &big), Err(Error::MessageTooLarge(_))));
    assert!(a.write(now, &big[..MAX_MESSAGE_LEN]).is_ok());
    assert_eq!(a.transmit_buf().len(), 16_777_215 + 3);
}
