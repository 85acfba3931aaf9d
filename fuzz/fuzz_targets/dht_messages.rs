//! hyperdht message encodings, key strings and record signatures (`dht::messages`,
//! `dht::sign`).
//!
//! Input: `[selector] [payload...]`. The selector (mod 14) picks one of the 12 message decoders,
//! the key-string parsers, or a structured mode; bit 7 picks strict (`Decoder::strict`) over
//! lenient decoding. The structured mode builds one message of every type from the payload
//! (with the `Input` cursor) and signs and verifies records.
//!
//! Properties:
//! * decoding never panics, and a decoder never reads past the input;
//! * a decoded message re-encodes to exactly `encoded_len` bytes, that encoding decodes to the
//!   same message (in strict mode too) and re-encodes to itself, and bytes appended to it are
//!   ignored;
//! * strict is a restriction of lenient: whatever strict accepts, lenient decodes alike;
//! * structured messages (any field values a JS peer could send) round-trip exactly, with flags
//!   derived from the fields, and every strict prefix of their encoding fails or (for the
//!   optional tails: lookup bump, address flags) decodes to a prefix-consistent message;
//! * `parse_key` / `z32_decode` never panic; a decoded z32 re-encodes to a string that decodes
//!   to the same bytes;
//! * announce / unannounce / mutable signatures verify for what was signed and not for a
//!   flipped bit, another node id or token; `verify` never panics on arbitrary signatures.
#![no_main]

use std::fmt::Debug;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use libfuzzer_sys::fuzz_target;
use p2pswarm::crypto::PublicKey;
use p2pswarm::dht::messages::{
    parse_key, z32_decode, z32_encode, Announce, ErrorCode, Firewall, Handshake, Holepunch,
    HolepunchInfo, HolepunchPayload, HyperdhtAddress, LookupRawReply, Mode, MutableGetResponse,
    MutablePutRequest, MutableSignable, NoisePayload, PeerRecord, PluginRequest, RelayInfo,
    RelayThroughInfo, SecretStreamInfo, UdxInfo,
};
use p2pswarm::dht::sign::{
    sign_announce, sign_mutable, sign_unannounce, verify_announce, verify_announce_message,
    verify_mutable, verify_unannounce,
};
use p2pswarm::encoding::{
    from_slice, to_vec, uint_len, Decode, DecodeError, Decoder, Encode, Encoder, MAX_SAFE_INTEGER,
};
use p2pswarm_fuzz::{key_pair, Input};

/// Decodes `data` as a `T` (strict or lenient) and checks the round-trip properties.
fn check_decode<T>(data: &[u8], strict: bool)
where
    T: Encode + for<'a> Decode<'a> + PartialEq + Debug,
{
    let mut dec = if strict {
        Decoder::strict(data)
    } else {
        Decoder::new(data)
    };
    let got = T::decode(&mut dec);
    assert!(dec.position() <= data.len());
    let Ok(msg) = got else {
        return;
    };
    if strict {
        assert_eq!(
            T::decode(&mut Decoder::new(data)).as_ref(),
            Ok(&msg),
            "lenient disagrees with strict"
        );
    }
    check_roundtrip(&msg);
}

/// `msg` encodes to `encoded_len` bytes that decode (lenient and strict) to `msg`, re-encode to
/// themselves, and tolerate appended bytes.
fn check_roundtrip<T>(msg: &T) -> Vec<u8>
where
    T: Encode + for<'a> Decode<'a> + PartialEq + Debug,
{
    let bytes = to_vec(msg);
    assert_eq!(bytes.len(), msg.encoded_len(), "encoded_len disagrees");
    let again = T::decode(&mut Decoder::new(&bytes)).expect("a re-encoding decodes");
    assert_eq!(
        &again, msg,
        "decode -> encode -> decode changed the message"
    );
    assert_eq!(to_vec(&again), bytes, "re-encoding is not canonical");
    assert_eq!(
        T::decode(&mut Decoder::strict(&bytes)).as_ref(),
        Ok(msg),
        "strict rejects a canonical encoding"
    );
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0xff, 0x01, 0xfd, 0x00]);
    assert_eq!(
        T::decode(&mut Decoder::new(&longer)).as_ref(),
        Ok(msg),
        "trailing bytes changed the message"
    );
    bytes
}

/// Every strict prefix of a canonical encoding is a truncation error, except where `tail_ok`
/// allows the decoder to stop.
fn check_prefixes<T>(bytes: &[u8], cut: usize, tail_ok: impl Fn(usize) -> bool)
where
    T: Encode + for<'a> Decode<'a> + PartialEq + Debug,
{
    if bytes.is_empty() {
        return;
    }
    let n = cut % bytes.len();
    match T::decode(&mut Decoder::new(&bytes[..n])) {
        Err(DecodeError::Truncated { .. }) => {}
        Ok(_) if tail_ok(n) => {}
        other => panic!("prefix {n} of {} bytes: {other:?}", bytes.len()),
    }
}

fn decode_kind(kind: u8, data: &[u8], strict: bool) {
    match kind {
        0 => check_decode::<PeerRecord>(data, strict),
        1 => check_decode::<Announce>(data, strict),
        2 => check_decode::<LookupRawReply>(data, strict),
        3 => check_decode::<MutableSignable>(data, strict),
        4 => check_decode::<MutablePutRequest>(data, strict),
        5 => check_decode::<MutableGetResponse>(data, strict),
        6 => check_decode::<Handshake>(data, strict),
        7 => check_decode::<Holepunch>(data, strict),
        8 => check_decode::<NoisePayload>(data, strict),
        9 => check_decode::<HolepunchPayload>(data, strict),
        10 => check_decode::<PluginRequest>(data, strict),
        11 => check_decode::<HyperdhtAddress>(data, strict),
        _ => {}
    }
}

fn check_strings(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = parse_key(&text) {
        assert_eq!(parse_key(&z32_encode(&key)), Ok(key));
        assert_eq!(HyperdhtAddress::parse(&text).map(|a| a.key.0), Ok(key));
    }
    if let Ok(bytes) = z32_decode(&text) {
        assert_eq!(z32_decode(&z32_encode(&bytes)), Ok(bytes));
    }
}

// ---------------------------------------------------------------------------------------------
// structured messages

fn uint(inp: &mut Input<'_>) -> u64 {
    let v = u64::from_le_bytes(inp.array());
    // Spread over all varint sizes, within what a decoder accepts.
    (v >> (v & 63)) & MAX_SAFE_INTEGER
}

fn addr4(inp: &mut Input<'_>) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(inp.array::<4>()), inp.u16())
}

fn addr6(inp: &mut Input<'_>) -> SocketAddrV6 {
    SocketAddrV6::new(Ipv6Addr::from(inp.array::<16>()), inp.u16(), 0, 0)
}

fn list<T>(inp: &mut Input<'_>, max: u8, f: impl Fn(&mut Input<'_>) -> T) -> Vec<T> {
    let n = inp.byte() % (max + 1);
    (0..n).map(|_| f(inp)).collect()
}

fn peer(inp: &mut Input<'_>) -> PeerRecord {
    PeerRecord {
        public_key: PublicKey(inp.array()),
        relay_addresses: list(inp, 6, addr4),
    }
}

#[allow(clippy::too_many_lines)]
fn check_structured(data: &[u8]) {
    let mut inp = Input::new(data);
    let sel = u64::from_le_bytes(inp.array());
    let on = |bit: u32| sel & (1 << bit) != 0;
    let cut = usize::from(inp.u16());
    let none = |_: usize| false;

    let p = peer(&mut inp);
    let b = check_roundtrip(&p);
    check_prefixes::<PeerRecord>(&b, cut, none);

    let ann = Announce {
        peer: on(0).then(|| peer(&mut inp)),
        refresh: on(1).then(|| inp.array()),
        signature: on(2).then(|| inp.array()),
        bump: if on(3) { uint(&mut inp) } else { 0 },
    };
    assert_eq!(ann.flags(), sel & 15 & if ann.bump == 0 { 7 } else { 15 });
    let b = check_roundtrip(&ann);
    check_prefixes::<Announce>(&b, cut, none);

    let lookup = LookupRawReply {
        peers: list(&mut inp, 4, peer),
        bump: uint(&mut inp),
    };
    let b = check_roundtrip(&lookup);
    let raw: Vec<Vec<u8>> = lookup.peers.iter().map(to_vec).collect();
    assert_eq!(LookupRawReply::encode_raw(&raw, lookup.bump), b);
    let blen = b.len();
    let bump_len = uint_len(lookup.bump);
    check_prefixes::<LookupRawReply>(&b, cut, |n| n == blen - bump_len);

    let seq = uint(&mut inp);
    let value = inp.chunk8().to_vec();
    check_roundtrip(&MutableSignable {
        seq,
        value: value.clone(),
    });
    let put = MutablePutRequest {
        public_key: PublicKey(inp.array()),
        seq,
        value: value.clone(),
        signature: inp.array(),
    };
    let b = check_roundtrip(&put);
    check_prefixes::<MutablePutRequest>(&b, cut, none);
    let b = check_roundtrip(&MutableGetResponse {
        seq,
        value: value.clone(),
        signature: put.signature,
    });
    check_prefixes::<MutableGetResponse>(&b, cut, none);

    let hs = Handshake {
        mode: Mode(uint(&mut inp)),
        noise: inp.chunk8().to_vec(),
        peer_address: on(4).then(|| addr4(&mut inp)),
        relay_address: on(5).then(|| addr4(&mut inp)),
    };
    let b = check_roundtrip(&hs);
    check_prefixes::<Handshake>(&b, cut, none);

    let hp = Holepunch {
        mode: Mode(uint(&mut inp)),
        id: uint(&mut inp),
        payload: inp.chunk8().to_vec(),
        peer_address: on(6).then(|| addr4(&mut inp)),
    };
    let b = check_roundtrip(&hp);
    check_prefixes::<Holepunch>(&b, cut, none);

    let np = NoisePayload {
        version: 1,
        error: ErrorCode(uint(&mut inp)),
        firewall: Firewall(uint(&mut inp)),
        holepunch: on(7).then(|| HolepunchInfo {
            id: uint(&mut inp),
            relays: list(&mut inp, 3, |i| RelayInfo {
                relay_address: addr4(i),
                peer_address: addr4(i),
            }),
        }),
        addresses4: list(&mut inp, 3, addr4),
        addresses6: list(&mut inp, 3, addr6),
        udx: on(8).then(|| UdxInfo {
            version: uint(&mut inp),
            reusable_socket: on(9),
            id: uint(&mut inp),
            seq: uint(&mut inp),
        }),
        secret_stream: on(10).then(|| SecretStreamInfo {
            version: uint(&mut inp),
        }),
        relay_through: on(11).then(|| RelayThroughInfo {
            version: uint(&mut inp),
            flags: uint(&mut inp),
            public_key: PublicKey(inp.array()),
            token: inp.array(),
        }),
        relay_addresses: on(12).then(|| list(&mut inp, 3, addr4)),
    };
    let b = check_roundtrip(&np);
    check_prefixes::<NoisePayload>(&b, cut, none);
    // Another version: nothing after it is parsed.
    let v = uint(&mut inp);
    let mut other = b.clone();
    let mut enc = Encoder::default();
    enc.uint(v);
    other.splice(..1, enc.into_inner());
    let got: NoisePayload = from_slice(&other).expect("decodes");
    if v == 1 {
        assert_eq!(got, np);
    } else {
        assert_eq!(got, NoisePayload::with_version(v));
        check_roundtrip(&got);
    }

    let hpp = HolepunchPayload {
        connected: on(13),
        punching: on(14),
        error: ErrorCode(uint(&mut inp)),
        firewall: Firewall(uint(&mut inp)),
        round: uint(&mut inp),
        addresses: on(15).then(|| list(&mut inp, 3, addr4)),
        remote_address: on(16).then(|| addr4(&mut inp)),
        token: on(17).then(|| inp.array()),
        remote_token: on(18).then(|| inp.array()),
    };
    assert_eq!(hpp.flags(), (sel >> 13) & 63);
    let b = check_roundtrip(&hpp);
    check_prefixes::<HolepunchPayload>(&b, cut, none);

    let pr = PluginRequest {
        plugin: String::from_utf8_lossy(inp.chunk8()).into_owned(),
        version: uint(&mut inp),
        command: uint(&mut inp),
        value: on(19).then(|| inp.chunk8().to_vec()),
    };
    let b = check_roundtrip(&pr);
    check_prefixes::<PluginRequest>(&b, cut, none);

    let addr = HyperdhtAddress {
        key: PublicKey(inp.array()),
        nodes: on(20).then(|| list(&mut inp, 4, addr4)),
    };
    let b = check_roundtrip(&addr);
    check_prefixes::<HyperdhtAddress>(&b, cut, |n| n == 32);

    check_signatures(&mut inp, sel, seq, &value);
}

/// Announce / unannounce / mutable signatures over fuzzed records (key pairs are cached;
/// signing is the slow part, so only inputs with selector bit 21 sign).
fn check_signatures(inp: &mut Input<'_>, sel: u64, seq: u64, value: &[u8]) {
    let on = |bit: u32| sel & (1 << bit) != 0;
    if on(21) {
        let kp = key_pair(inp.byte());
        let target: [u8; 32] = inp.array();
        let id: [u8; 32] = inp.array();
        let token: [u8; 32] = inp.array();
        let mut pr = peer(inp);
        pr.public_key = *kp.public_key();
        let refresh: Option<[u8; 32]> = on(22).then(|| inp.array());
        let r = refresh.as_ref();
        let unann = on(23);
        let sig = if unann {
            sign_unannounce(&kp, &target, &id, &token, &pr, r)
        } else {
            sign_announce(&kp, &target, &id, &token, &pr, r)
        };
        assert_eq!(verify_announce(&sig, &target, &id, &token, &pr, r), !unann);
        assert_eq!(verify_unannounce(&sig, &target, &id, &token, &pr, r), unann);
        let signed = Announce {
            peer: Some(pr.clone()),
            refresh,
            signature: Some(sig),
            bump: uint(inp),
        };
        let decoded: Announce = from_slice(&to_vec(&signed)).expect("decodes");
        assert!(verify_announce_message(
            &decoded, unann, &target, &id, &token
        ));
        let mut other_id = id;
        other_id[usize::from(inp.byte()) % 32] ^= 1 << (inp.byte() % 8);
        assert!(!verify_announce_message(
            &decoded, unann, &target, &other_id, &token
        ));
        let mut other_token = token;
        other_token[usize::from(inp.byte()) % 32] ^= 1 << (inp.byte() % 8);
        assert!(!verify_announce_message(
            &decoded,
            unann,
            &target,
            &id,
            &other_token
        ));
        let mut flipped = sig;
        flipped[usize::from(inp.byte()) % 64] ^= 1 << (inp.byte() % 8);
        assert!(!verify_announce(&flipped, &target, &id, &token, &pr, r));

        let mutable_sig = sign_mutable(&kp, seq, value);
        assert!(verify_mutable(&mutable_sig, seq, value, kp.public_key()));
        let mut flipped = mutable_sig;
        flipped[usize::from(inp.byte()) % 64] ^= 1 << (inp.byte() % 8);
        assert!(!verify_mutable(&flipped, seq, value, kp.public_key()));
    }
    // Arbitrary signatures and keys never panic.
    let _ = verify_mutable(&inp.array(), seq, value, &PublicKey(inp.array()));
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let strict = sel & 0x80 != 0;
    match (sel & 0x7f) % 14 {
        k @ 0..=11 => decode_kind(k, rest, strict),
        12 => check_strings(rest),
        _ => check_structured(rest),
    }
});
