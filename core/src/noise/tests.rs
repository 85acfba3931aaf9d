use super::*;
use crate::crypto::{ns, to_hex};

fn kp(b: u8) -> KeyPair {
    KeyPair::from_seed(&[b; 32])
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("hex")
}

/// Runs a whole handshake and returns (messages, initiator result, responder result).
fn run(
    pattern: Pattern,
    seeds: [u8; 4],
    prologue: &[u8],
    payloads: (&[u8], &[u8]),
) -> (Vec<Vec<u8>>, HandshakeResult, HandshakeResult) {
    let [is, rs, ie, re] = seeds;
    let remote = (pattern == Pattern::IK).then(|| *kp(rs).public_key());
    let mut i =
        Handshake::with_ephemeral(pattern, true, kp(is), kp(ie), prologue, remote).expect("init");
    let mut r =
        Handshake::with_ephemeral(pattern, false, kp(rs), kp(re), prologue, None).expect("resp");
    let mut msgs = Vec::new();
    let m1 = i.write_message(payloads.0).expect("m1");
    assert_eq!(r.read_message(&m1).expect("read m1"), payloads.0);
    msgs.push(m1);
    let m2 = r.write_message(payloads.1).expect("m2");
    assert_eq!(i.read_message(&m2).expect("read m2"), payloads.1);
    msgs.push(m2);
    if pattern == Pattern::XX {
        let m3 = i.write_message(&[]).expect("m3");
        assert!(r.read_message(&m3).expect("read m3").is_empty());
        msgs.push(m3);
    }
    assert!(i.is_finished() && r.is_finished());
    let (a, b) = (i.finish().expect("i"), r.finish().expect("r"));
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.tx, b.rx);
    assert_eq!(a.rx, b.tx);
    assert_eq!(a.remote_public_key, *kp(rs).public_key());
    assert_eq!(b.remote_public_key, *kp(is).public_key());
    (msgs, a, b)
}

#[test]
fn xx_vector_from_secret_stream_spec() {
    let (msgs, i, _) = run(Pattern::XX, [0x11, 0x22, 0x33, 0x44], &[], (&[], &[]));
    assert_eq!(
        msgs[0],
        h("17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce")
    );
    assert_eq!(
        msgs[1],
        h(
            "d759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c48
           57fad62264e58c462cf599a3a94f59ffe686a8603c1b6f8c0bc07f4de6db04a5
           66c1bcd64d53fd78a7cc6a6a4efb20f0f6725cbf580bc37f7bc1503773389b42"
        )
    );
    assert_eq!(
        msgs[2],
        h(
            "adec8846a8bb239fabc493e519ea5dc1e69ef015935a5cdcbf5f8bff6794c6e6
           57548e0c16588a228ab22e2061e6292b06e83bf6efacbf95c1899f9c8f630f8c"
        )
    );
    assert_eq!(
        to_hex(&i.hash),
        "904bbe89cd78fb98b811db439e8c9b546f524311b5ca9cc38393af54937661f25ebc1dbfd3f12d1bb77a8dfbc52027ce3c4111c60e4dfac926822ef8d79e9bcc"
    );
    assert_eq!(
        to_hex(&i.tx),
        "78b14100bcd57f02f9e58fabd03b064db09f4811cfb0c69c74c8c68c4003090b"
    );
    assert_eq!(
        to_hex(&i.rx),
        "5c949cf136128f8f2bc59d63473515e57da48520f8e7742e3f40745a47b75db9"
    );
}

#[test]
fn ik_vector_from_secret_stream_spec() {
    let (msgs, i, _) = run(
        Pattern::IK,
        [0x11, 0x22, 0x33, 0x44],
        &ns::PEER_HANDSHAKE,
        (b"hello", b"world"),
    );
    assert_eq!(
        msgs[0],
        h(
            "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce
           15f7bd8bd352460911fcb50301c66e7967d957326fabc34eb4cada65150624ac
           8734704844ace0641bde64c92f4c20672361cb4ec4cbf6805781617f13354ea8
           72ad5aa324"
        )
    );
    assert_eq!(msgs[1], h("d759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c48d0792f94a44baf829b2aa4435b79b5750df81da3c8"));
    assert_eq!(
        to_hex(&i.hash),
        "a84b77b86605d715c2ad9275c95a6b5d2e21442d0b1b4d1003e06118353dd45264a8552153c714aaefc2bee2b1b1c94d20b48b244263580c4d53e4721815f9eb"
    );
    assert_eq!(
        to_hex(&i.tx),
        "0449dc486159e766f752316ddeb055984cc0ad321ca030c4df8f52c054e8e813"
    );
    assert_eq!(
        to_hex(&i.rx),
        "556f6d151502cf93ef0534537a6f4a0a3d450fc2b7c134673493541d45db730b"
    );
}

#[test]
fn ik_vector_from_hyperdht_spec() {
    let p1 = h("011a000001c0a8010a49c20100fdd2040001");
    let p2 = h("01590002000101010101 49c2 02020202409c 0100fd2e16 0001 01 0101010149c2");
    let (msgs, i, _) = run(
        Pattern::IK,
        [0x02, 0x01, 0x03, 0x04],
        &ns::PEER_HANDSHAKE,
        (&p1, &p2),
    );
    assert_eq!(msgs[0], h("ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1eb98e814d9b061b59c29cb8a24bd293ee473e09abb37a0a40f29c9113dab177d939149ef1d5cb5e8eafb3b626eba3288d748bd565b35331091d541ce4b58cae4458b36a5e242109fdf01bf7ae70cac6e008b"));
    assert_eq!(msgs[1], h("ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7cf0c569e9b2c8017300f996e571fcce7fdf11bbd2c74730bb67e051a4dd0bab8328dde0b1ffa653701af7c5458d130903"));
    assert_eq!(to_hex(&i.hash), "c401287ccbc34a0b2b029f471299b9b70a709e46c2a83b5cbd473be9c9769ac959587376e4aec780747eb0afb223980d8d3ae82771944e7f1aad987baa100905");
    assert_eq!(
        to_hex(&i.tx),
        "88f41322c8efc67f344de059727676294ec96ff366637cc0db4d57a58a03c3a1"
    );
    assert_eq!(
        to_hex(&i.rx),
        "2d9e8726cff2116154a33281bfb730696d45a7dbc01ec0c702f82e9c83002685"
    );
}

#[test]
fn corrupted_or_wrong_key_messages_fail_and_poison() {
    for flip in [0usize, 40, 100] {
        let mut i = Handshake::with_ephemeral(
            Pattern::IK,
            true,
            kp(1),
            kp(3),
            b"p",
            Some(*kp(2).public_key()),
        )
        .expect("i");
        let mut r =
            Handshake::with_ephemeral(Pattern::IK, false, kp(2), kp(4), b"p", None).expect("r");
        let mut m1 = i.write_message(b"payload").expect("m1");
        let idx = flip.min(m1.len() - 1);
        m1[idx] ^= 0x80;
        assert!(r.read_message(&m1).is_err(), "flip at {idx}");
        assert_eq!(r.write_message(b""), Err(NoiseError::OutOfTurn));
    }
    // initiator believes the server has another key
    let mut i =
        Handshake::new(Pattern::IK, true, kp(1), b"p", Some(*kp(9).public_key())).expect("i");
    let mut r = Handshake::new(Pattern::IK, false, kp(2), b"p", None).expect("r");
    assert_eq!(
        r.read_message(&i.write_message(b"").expect("m1")),
        Err(NoiseError::Decrypt)
    );
    // prologue mismatch
    let mut i = Handshake::new(Pattern::XX, true, kp(1), b"a", None).expect("i");
    let mut r = Handshake::new(Pattern::XX, false, kp(2), b"b", None).expect("r");
    let m2 = r.write_message(b"").map(|_| ()).err();
    assert_eq!(m2, Some(NoiseError::OutOfTurn));
    r.read_message(&i.write_message(b"").expect("m1"))
        .expect("read m1");
    assert_eq!(
        i.read_message(&r.write_message(b"").expect("m2")),
        Err(NoiseError::Decrypt)
    );
    // truncated
    let mut r = Handshake::new(Pattern::XX, false, kp(2), b"", None).expect("r");
    assert_eq!(r.read_message(&[0; 31]), Err(NoiseError::MessageTooShort));
    // IK initiator without the remote key
    assert!(matches!(
        Handshake::new(Pattern::IK, true, kp(1), b"", None),
        Err(NoiseError::MissingRemoteStatic)
    ));
}

#[test]
fn xx_rejects_an_unexpected_remote_static_key() {
    let mut i =
        Handshake::new(Pattern::XX, true, kp(1), b"", Some(*kp(7).public_key())).expect("i");
    let mut r = Handshake::new(Pattern::XX, false, kp(2), b"", None).expect("r");
    r.read_message(&i.write_message(b"").expect("m1"))
        .expect("m1");
    let err = i.read_message(&r.write_message(b"").expect("m2"));
    assert!(
        matches!(err, Err(NoiseError::UnexpectedRemoteKey { .. })),
        "{err:?}"
    );
}

#[test]
fn small_order_ephemeral_is_rejected() {
    let mut r = Handshake::new(Pattern::XX, false, kp(2), b"", None).expect("r");
    let mut identity = [0u8; 32];
    identity[0] = 1;
    r.read_message(&identity).expect("e token is only hashed");
    // the next write does ee with the identity point
    assert!(matches!(r.write_message(b""), Err(NoiseError::Dh(_))));
}

#[test]
fn oversized_payload_is_refused() {
    let mut i = Handshake::new(Pattern::XX, true, kp(1), b"", None).expect("i");
    assert_eq!(
        i.write_message(&vec![0; MAX_MESSAGE_LEN]),
        Err(NoiseError::MessageTooLong)
    );
}
