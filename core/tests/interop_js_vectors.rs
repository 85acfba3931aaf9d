//! Vectors generated at test time by the pinned JS stack (`tests/interop/js/gen-vectors.js`),
//! reproduced byte for byte: key pairs, hashes, namespaces, signatures, DH, compact encodings,
//! Noise IK and XX handshakes with injected ephemerals, secretstream and secretbox.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use common::{hex, hex32, hex64, node_output};
use p2pswarm::crypto::{self, to_hex, KeyPair, PublicKey};
use p2pswarm::encoding::{self, Decoder, Encoder, Uint};
use p2pswarm::noise::{Handshake, Pattern};
use p2pswarm::secret_stream::cipher::{Pull, Push, TAG_MESSAGE};
use p2pswarm::secret_stream::unordered::Unordered;
use serde_json::Value;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} missing in {v}"))
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("array {k} missing"))
}

fn num(v: &Value) -> u64 {
    v.as_str().expect("decimal string").parse().expect("u64")
}

fn addr4(v: &Value) -> SocketAddrV4 {
    SocketAddrV4::new(
        s(v, "host").parse::<Ipv4Addr>().expect("ipv4"),
        v["port"].as_u64().expect("port") as u16,
    )
}

/// Encodes a JSON value of the given compact-encoding type.
fn encode(ty: &str, v: &Value) -> Vec<u8> {
    let mut e = Encoder::default();
    match ty {
        "uint" => drop(e.uint(num(v))),
        "uint8" => drop(e.uint8(num(v) as u8)),
        "uint16" => drop(e.uint16(num(v) as u16)),
        "uint24" => drop(e.uint24(num(v) as u32)),
        "uint32" => drop(e.uint32(num(v) as u32)),
        "uint64" => drop(e.uint64(num(v))),
        "bool" => drop(e.bool(v.as_bool().expect("bool"))),
        "buffer" => drop(e.buffer(&hex(v.as_str().expect("hex")))),
        "optionalBuffer" => drop(e.optional_buffer(v.as_str().map(hex).as_deref())),
        "string" => drop(e.string(v.as_str().expect("string"))),
        "fixed32" | "fixed64" => drop(e.raw(&hex(v.as_str().expect("hex")))),
        "ipv4Address" => drop(e.ipv4_address(&addr4(v))),
        "ipv6Address" => {
            let ip: Ipv6Addr = s(v, "host").parse().expect("ipv6");
            e.ipv6_address(&SocketAddrV6::new(
                ip,
                v["port"].as_u64().expect("port") as u16,
                0,
                0,
            ));
        }
        "array_uint" => {
            let items: Vec<Uint> = v
                .as_array()
                .expect("array")
                .iter()
                .map(|x| Uint(num(x)))
                .collect();
            e.array(&items);
        }
        "array_buffer" => {
            let items: Vec<Vec<u8>> = v
                .as_array()
                .expect("array")
                .iter()
                .map(|x| hex(x.as_str().expect("hex")))
                .collect();
            e.array(&items);
        }
        "array_ipv4Address" => {
            let items: Vec<SocketAddrV4> = v.as_array().expect("array").iter().map(addr4).collect();
            e.array(&items);
        }
        other => panic!("unknown encoding type {other}"),
    }
    e.into_inner()
}

/// Decodes `bytes` as `ty` strictly and re-encodes, to check the decoder.
fn redecode(ty: &str, bytes: &[u8]) -> Vec<u8> {
    let mut d = Decoder::strict(bytes);
    let mut e = Encoder::default();
    let r: Result<(), encoding::DecodeError> = (|| {
        match ty {
            "uint" => drop(e.uint(d.uint()?)),
            "uint8" => drop(e.uint8(d.uint8()?)),
            "uint16" => drop(e.uint16(d.uint16()?)),
            "uint24" => drop(e.uint24(d.uint24()?)),
            "uint32" => drop(e.uint32(d.uint32()?)),
            "uint64" => drop(e.uint64(d.uint64()?)),
            "bool" => drop(e.bool(d.bool()?)),
            "buffer" => drop(e.buffer(d.buffer()?)),
            "optionalBuffer" => drop(e.optional_buffer(d.optional_buffer()?)),
            "string" => drop(e.string(&d.string()?)),
            "fixed32" => drop(e.raw(&d.fixed::<32>()?)),
            "fixed64" => drop(e.raw(&d.fixed::<64>()?)),
            "ipv4Address" => drop(e.ipv4_address(&d.ipv4_address()?)),
            "ipv6Address" => drop(e.ipv6_address(&d.ipv6_address()?)),
            "array_uint" => drop(e.array(&d.array::<Uint>()?)),
            "array_buffer" => drop(e.array(&d.array::<Vec<u8>>()?)),
            "array_ipv4Address" => drop(e.array(&d.array::<SocketAddrV4>()?)),
            other => panic!("unknown encoding type {other}"),
        }
        Ok(())
    })();
    r.unwrap_or_else(|err| panic!("decoding {ty} {} failed: {err}", to_hex(bytes)));
    assert!(
        d.is_empty(),
        "{ty}: trailing bytes after decoding {}",
        to_hex(bytes)
    );
    e.into_inner()
}

fn kp(seed_hex: &str) -> KeyPair {
    KeyPair::from_seed(&hex32(seed_hex))
}

fn check_handshake(v: &Value, pattern: Pattern) {
    let is = kp(s(v, "initiatorSeed"));
    let rs = kp(s(v, "responderSeed"));
    let prologue = hex(s(v, "prologue"));
    let remote = (pattern == Pattern::IK).then(|| *rs.public_key());
    let mut i = Handshake::with_ephemeral(
        pattern,
        true,
        is.clone(),
        kp(s(v, "initiatorEphSeed")),
        &prologue,
        remote,
    )
    .expect("i");
    let mut r = Handshake::with_ephemeral(
        pattern,
        false,
        rs.clone(),
        kp(s(v, "responderEphSeed")),
        &prologue,
        None,
    )
    .expect("r");
    let p1 = hex(s(v, "payload1"));
    let m1 = i.write_message(&p1).expect("m1");
    assert_eq!(to_hex(&m1), s(v, "msg1"), "{pattern:?} msg1");
    assert_eq!(r.read_message(&m1).expect("read m1"), p1);
    let p2 = hex(s(v, "payload2"));
    let m2 = r.write_message(&p2).expect("m2");
    assert_eq!(to_hex(&m2), s(v, "msg2"), "{pattern:?} msg2");
    assert_eq!(i.read_message(&m2).expect("read m2"), p2);
    if pattern == Pattern::XX {
        let p3 = hex(s(v, "payload3"));
        let m3 = i.write_message(&p3).expect("m3");
        assert_eq!(to_hex(&m3), s(v, "msg3"), "XX msg3");
        assert_eq!(r.read_message(&m3).expect("read m3"), p3);
    }
    let (a, b) = (i.finish().expect("i done"), r.finish().expect("r done"));
    assert_eq!(to_hex(&a.hash), s(v, "hash"));
    assert_eq!(to_hex(&a.tx), s(v, "initiatorTx"));
    assert_eq!(to_hex(&a.rx), s(v, "initiatorRx"));
    assert_eq!((b.tx, b.rx), (a.rx, a.tx));
    assert_eq!(b.remote_public_key, *is.public_key());
}

#[test]
fn rust_reproduces_js_vectors() {
    let seed = std::env::var("P2PSWARM_VECTOR_SEED").unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock");
        (t.as_nanos() as u64 & 0xffff_ffff_ffff).to_string()
    });
    eprintln!("gen-vectors seed {seed} (set P2PSWARM_VECTOR_SEED to replay)");
    let out = node_output("gen-vectors.js", &["--count", "40", "--seed", &seed]);
    let v: Value = serde_json::from_str(&out).expect("json");
    let mut checked = 0usize;

    for k in arr(&v, "keypairs") {
        let pair = kp(s(k, "seed"));
        assert_eq!(pair.public_key().to_hex(), s(k, "publicKey"));
        assert_eq!(to_hex(pair.secret_key()), s(k, "secretKey"));
        checked += 1;
    }
    for h in arr(&v, "hashes") {
        let data = hex(s(h, "data"));
        assert_eq!(to_hex(&crypto::blake2b256(&data)), s(h, "blake2b256"));
        assert_eq!(to_hex(&crypto::blake2b512(&data)), s(h, "blake2b512"));
        assert_eq!(
            to_hex(&crypto::blake2b256_keyed(&hex(s(h, "key")), &data)),
            s(h, "keyed256")
        );
        checked += 1;
    }
    for n in arr(&v, "namespaces") {
        let count = n["count"].as_u64().expect("count") as u8;
        let got: Vec<String> = crypto::namespace(s(n, "name"), count)
            .iter()
            .map(|x| to_hex(x))
            .collect();
        let want: Vec<&str> = arr(n, "values")
            .iter()
            .map(|x| x.as_str().expect("hex"))
            .collect();
        assert_eq!(got, want, "namespace {:?}", s(n, "name"));
        checked += 1;
    }
    for g in arr(&v, "signatures") {
        let pair = kp(s(g, "seed"));
        let msg = hex(s(g, "message"));
        let sig = pair.sign(&msg);
        assert_eq!(to_hex(&sig), s(g, "signature"));
        assert!(crypto::verify(
            pair.public_key(),
            &msg,
            &hex64(s(g, "signature"))
        ));
        checked += 1;
    }
    for d in arr(&v, "dh") {
        let shared =
            crypto::dh(&kp(s(d, "seedA")), &PublicKey(hex32(s(d, "publicKeyB")))).expect("dh");
        assert_eq!(to_hex(&shared), s(d, "shared"));
        checked += 1;
    }
    for e in arr(&v, "encodings") {
        let ty = s(e, "type");
        let bytes = encode(ty, &e["value"]);
        assert_eq!(
            to_hex(&bytes),
            s(e, "hex"),
            "encoding {ty} of {}",
            e["value"]
        );
        assert_eq!(redecode(ty, &bytes), bytes, "re-decoding {ty}");
        checked += 1;
    }
    for h in arr(&v, "ik") {
        check_handshake(h, Pattern::IK);
        checked += 1;
    }
    for h in arr(&v, "xx") {
        check_handshake(h, Pattern::XX);
        checked += 1;
    }
    for ss in arr(&v, "secretstream") {
        let key = hex32(s(ss, "key"));
        let header: [u8; 24] = hex(s(ss, "header")).try_into().expect("24");
        let mut push = Push::new(&key, &header);
        let mut pull = Pull::new(&key, &header);
        for (m, c) in arr(ss, "messages").iter().zip(arr(ss, "ciphertexts")) {
            let msg = hex(m.as_str().expect("hex"));
            let mut out = Vec::new();
            push.push(&msg, TAG_MESSAGE, &mut out);
            assert_eq!(to_hex(&out), c.as_str().expect("hex"));
            assert_eq!(pull.pull_in_place(&mut out), Ok(TAG_MESSAGE));
            assert_eq!(&out[1..out.len() - 16], &msg[..]);
        }
        checked += 1;
    }
    for b in arr(&v, "secretbox") {
        let key = hex32(s(b, "key"));
        let counter = u64::from_le_bytes(hex(s(b, "counter")).try_into().expect("8"));
        let mut u = Unordered::from_keys(key, key, counter.wrapping_sub(1).to_le_bytes());
        let datagram = u.seal(&hex(s(b, "message"))).expect("seal");
        assert_eq!(to_hex(&datagram), s(b, "datagram"));
        assert_eq!(u.open(&datagram), Some(hex(s(b, "message"))));
        checked += 1;
    }
    assert!(checked > 300, "only {checked} vectors checked");
    eprintln!("{checked} JS vectors reproduced");
}
