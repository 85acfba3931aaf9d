use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

#[test]
fn seed_keypair_vectors() {
    let cases = [
        (
            [0x01; 32],
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
        ),
        (
            [0x02; 32],
            "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
        ),
        (
            [0x11; 32],
            "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737",
        ),
        (
            [0x22; 32],
            "a09aa5f47a6759802ff955f8dc2d2a14a5c99d23be97f864127ff9383455a4f0",
        ),
        (
            [0x33; 32],
            "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce",
        ),
        (
            [0x44; 32],
            "d759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c48",
        ),
    ];
    for (seed, pk) in cases {
        let kp = KeyPair::from_seed(&seed);
        assert_eq!(kp.public_key().to_hex(), pk);
        assert_eq!(&kp.secret_key()[..32], &seed);
        assert_eq!(&kp.secret_key()[32..], &h(pk)[..]);
        assert_eq!(KeyPair::from_secret_key(kp.secret_key()), Ok(kp.clone()));
    }
    let mut bad = *KeyPair::from_seed(&[1; 32]).secret_key();
    bad[40] ^= 1;
    assert_eq!(KeyPair::from_secret_key(&bad), Err(InvalidKeyPair));
}

#[test]
fn scalar_and_dh_vectors() {
    let a = KeyPair::from_seed(&[0x11; 32]);
    let b = KeyPair::from_seed(&[0x22; 32]);
    assert_eq!(
        to_hex(&a.scalar_bytes()),
        "805b920bda4cd49d251d3329144a0cf8bdaaa07502626fa87f08e80faedab15f"
    );
    let want = "2b6355c5f0e9667ee457b73ad5dc3cb172abf8d62362402d732c4e8241b97380";
    assert_eq!(to_hex(&dh(&a, b.public_key()).expect("dh")), want);
    assert_eq!(to_hex(&dh(&b, a.public_key()).expect("dh")), want);
}

#[test]
fn dh_rejects_what_libsodium_rejects() {
    let a = KeyPair::from_seed(&[0x11; 32]);
    // identity (small order)
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(dh(&a, &PublicKey(identity)), Err(DhError::WeakPoint));
    // not on the curve / non-canonical (y = p)
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    assert!(dh(&a, &PublicKey(p)).is_err());
    // a point with a torsion component: valid key + an order-2 point
    let valid = CompressedEdwardsY(*KeyPair::from_seed(&[9; 32]).public_key().as_bytes())
        .decompress()
        .expect("pt");
    let mut order2 = [0xffu8; 32];
    order2[0] = 0xec;
    order2[31] = 0x7f; // y = -1
    let t = CompressedEdwardsY(order2)
        .decompress()
        .expect("order-2 point");
    let mixed = (valid + t).compress().to_bytes();
    assert_eq!(dh(&a, &PublicKey(mixed)), Err(DhError::WeakPoint));
}

#[test]
fn hash_vectors() {
    assert_eq!(
        to_hex(&blake2b256(b"hello")),
        "324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf"
    );
    let pk = KeyPair::from_seed(&[1; 32]);
    assert_eq!(
        to_hex(&blake2b256(pk.public_key().as_bytes())),
        "c5e21ab1c9f6022d81c3b25e3436cb7f1df77f9652ae3e1310c28e621dd87b4c"
    );
    // BLAKE2b-512 of the empty string (RFC 7693 / libsodium)
    assert_eq!(
        to_hex(&blake2b512(b"")),
        "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce"
    );
    // keyed: holepunch secret of the IK vector in secret-stream.md §12
    let hash = h("a84b77b86605d715c2ad9275c95a6b5d2e21442d0b1b4d1003e06118353dd45264a8552153c714aaefc2bee2b1b1c94d20b48b244263580c4d53e4721815f9eb");
    assert_eq!(
        to_hex(&blake2b256_keyed(&hash, &ns::PEER_HOLEPUNCH)),
        "15a0b110818afc92f2cfee571438688b4b5c5c1a6e831d79ff8c946a566fa9af"
    );
}

#[test]
fn namespaces_match_constants() {
    let dht = namespace("hyperswarm/dht", 11);
    assert_eq!(dht[0], ns::PEER_HANDSHAKE);
    assert_eq!(dht[1], ns::PEER_HOLEPUNCH);
    assert_eq!(dht[4], ns::ANNOUNCE);
    assert_eq!(dht[5], ns::UNANNOUNCE);
    assert_eq!(dht[6], ns::MUTABLE_PUT);
    assert_eq!(dht[10], ns::PLUGIN);
    let ss = namespace("hyperswarm/secret-stream", 3);
    assert_eq!(
        ss,
        vec![
            ns::SECRET_STREAM_INITIATOR,
            ns::SECRET_STREAM_RESPONDER,
            ns::SECRET_STREAM_SEND
        ]
    );
}

#[test]
fn sign_and_verify_strictly() {
    let kp = KeyPair::from_seed(&[5; 32]);
    let msg = b"a message";
    let sig = kp.sign(msg);
    assert!(verify(kp.public_key(), msg, &sig));
    assert!(!verify(kp.public_key(), b"another", &sig));
    // flipped bit anywhere fails
    for i in [0, 31, 32, 63] {
        let mut s = sig;
        s[i] ^= 0x01;
        assert!(!verify(kp.public_key(), msg, &s), "bit flip at {i}");
    }
    // non-canonical S (S + L) is refused although the equation would hold
    let l: [u8; 32] = h("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
        .try_into()
        .expect("L");
    let mut s_plus_l = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
        s_plus_l[i] = v as u8;
        carry = v >> 8;
    }
    let mut malleable = sig;
    malleable[32..].copy_from_slice(&s_plus_l);
    assert!(!verify(kp.public_key(), msg, &malleable));
    // small-order public key (identity) with R = identity, S = 0 satisfies the equation: refused
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&identity);
    assert!(!verify(&PublicKey(identity), msg, &forged));
    // agrees with ed25519-dalek's strict verification on honest signatures
    let vk = ed25519_dalek::VerifyingKey::from_bytes(kp.public_key().as_bytes()).expect("vk");
    assert!(vk
        .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok());
}

#[test]
fn debug_never_prints_the_secret() {
    let kp = KeyPair::from_seed(&[0xab; 32]);
    let s = format!("{kp:?}");
    assert!(!s.contains("abab"), "{s}");
}
