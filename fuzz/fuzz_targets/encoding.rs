//! compact-encoding decoders.
//!
//! Input: `[selector] [payload...]`. Selector bits 0-3 choose a decoder (0..=14), or 15 for a
//! "message" of several fields whose kinds come from the next bytes; bit 4 picks strict
//! (`Decoder::strict`) over lenient (`Decoder::new`) decoding.
//!
//! Properties:
//! * decoding never panics and never reads past the input;
//! * a decoded value re-encodes to exactly `encoded_len` bytes, and the strict decoder reads
//!   that encoding back to the same value, consuming all of it;
//! * in strict mode the bytes consumed are exactly the re-encoding (canonical form is unique);
//! * strict is a restriction of lenient: whatever strict accepts, lenient accepts with the same
//!   value and the same number of bytes consumed (compared as values, since lenient also
//!   accepts non-minimal varints, other bool bytes and invalid UTF-8).
#![no_main]

use std::net::{SocketAddrV4, SocketAddrV6};

use libfuzzer_sys::fuzz_target;
use p2pswarm::encoding::{
    array_len, buffer_len, to_vec, uint_len, DecodeError, Decoder, Encode, Encoder, Uint,
    MAX_ARRAY_LEN, MAX_SAFE_INTEGER,
};

const KINDS: u8 = 15;

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Uint(u64),
    U8(u8),
    U16(u16),
    U24(u32),
    U32(u32),
    U64(u64),
    Bool(bool),
    Buffer(Vec<u8>),
    Str(String),
    Fixed32([u8; 32]),
    Fixed64([u8; 64]),
    Ipv4(SocketAddrV4),
    Ipv6(SocketAddrV6),
    Uints(Vec<Uint>),
    Ipv4s(Vec<SocketAddrV4>),
    Buffers(Vec<Vec<u8>>),
}

fn decode(kind: u8, dec: &mut Decoder<'_>) -> Result<Value, DecodeError> {
    Ok(match kind {
        0 => Value::Uint(dec.uint()?),
        1 => Value::U8(dec.uint8()?),
        2 => Value::U16(dec.uint16()?),
        3 => Value::U24(dec.uint24()?),
        4 => Value::U32(dec.uint32()?),
        5 => Value::U64(dec.uint64()?),
        6 => Value::Bool(dec.bool()?),
        // Through the `Decode` impls, which the message codecs use.
        7 => Value::Buffer(dec.get::<Vec<u8>>()?),
        8 => Value::Str(dec.get::<String>()?),
        9 => Value::Fixed32(dec.get::<[u8; 32]>()?),
        10 => Value::Fixed64(dec.fixed::<64>()?),
        11 => Value::Ipv4(dec.get::<SocketAddrV4>()?),
        12 => Value::Ipv6(dec.ipv6_address()?),
        13 => Value::Uints(dec.array::<Uint>()?),
        // 14: two array kinds share a slot; the top selector bit picks which.
        14 => Value::Ipv4s(dec.array::<SocketAddrV4>()?),
        15 => Value::Buffers(dec.array::<Vec<u8>>()?),
        _ => unreachable!(),
    })
}

/// Encodes `v`, checking every `encoded_len` the library offers against the bytes written.
fn encode(v: &Value, enc: &mut Encoder) {
    let before = enc.len();
    let expected = match v {
        Value::Uint(x) => {
            enc.uint(*x);
            assert_eq!(Uint(*x).encoded_len(), uint_len(*x));
            uint_len(*x)
        }
        Value::U8(x) => {
            enc.uint8(*x);
            1
        }
        Value::U16(x) => {
            enc.uint16(*x);
            2
        }
        Value::U24(x) => {
            assert!(*x < 1 << 24, "uint24 decoded to {x}");
            enc.uint24(*x);
            3
        }
        Value::U32(x) => {
            enc.uint32(*x);
            4
        }
        Value::U64(x) => {
            enc.uint64(*x);
            8
        }
        Value::Bool(x) => {
            enc.put(x);
            x.encoded_len()
        }
        Value::Buffer(x) => {
            enc.put(x);
            assert_eq!(x.encoded_len(), buffer_len(x.len()));
            x.encoded_len()
        }
        Value::Str(x) => {
            enc.put(x);
            x.encoded_len()
        }
        Value::Fixed32(x) => {
            enc.put(x);
            x.encoded_len()
        }
        Value::Fixed64(x) => {
            enc.raw(x);
            64
        }
        Value::Ipv4(x) => {
            enc.put(x);
            x.encoded_len()
        }
        Value::Ipv6(x) => {
            enc.ipv6_address(x);
            x.encoded_len()
        }
        Value::Uints(x) => {
            enc.array(x);
            array_len(x)
        }
        Value::Ipv4s(x) => {
            enc.array(x);
            array_len(x)
        }
        Value::Buffers(x) => {
            enc.array(x);
            array_len(x)
        }
    };
    assert_eq!(
        enc.len() - before,
        expected,
        "encoded_len disagrees with encode for {v:?}"
    );
}

/// Value-level checks that do not depend on the input bytes.
fn check_domain(v: &Value) {
    match v {
        Value::Uint(x) => assert!(*x <= MAX_SAFE_INTEGER),
        Value::Uints(x) => {
            assert!(x.len() as u64 <= MAX_ARRAY_LEN);
            assert!(x.iter().all(|u| u.0 <= MAX_SAFE_INTEGER));
        }
        Value::Ipv4s(x) => assert!(x.len() as u64 <= MAX_ARRAY_LEN),
        Value::Buffers(x) => assert!(x.len() as u64 <= MAX_ARRAY_LEN),
        Value::Ipv6(a) => assert!(a.flowinfo() == 0 && a.scope_id() == 0),
        _ => {}
    }
}

/// Decodes the fields `kinds` in order from one decoder; stops at the first error.
/// Returns the values decoded and the position after each.
fn decode_all(kinds: &[u8], dec: &mut Decoder<'_>) -> (Vec<Value>, Vec<usize>, bool) {
    let mut values = Vec::new();
    let mut positions = Vec::new();
    let total = dec.position() + dec.remaining();
    for &k in kinds {
        let before = dec.position();
        let r = decode(k, dec);
        // Never reads past the input, never moves backwards on success.
        assert_eq!(dec.position() + dec.remaining(), total);
        match r {
            Ok(v) => {
                assert!(dec.position() >= before);
                check_domain(&v);
                values.push(v);
                positions.push(dec.position());
            }
            Err(_) => return (values, positions, false),
        }
    }
    (values, positions, true)
}

fn run(kinds: &[u8], strict: bool, payload: &[u8]) {
    let mut dec = if strict {
        Decoder::strict(payload)
    } else {
        Decoder::new(payload)
    };
    let (values, positions, _complete) = decode_all(kinds, &mut dec);

    // Differential: strict accepts a subset of what lenient accepts, with equal results.
    if strict {
        let mut lenient = Decoder::new(payload);
        let (lv, lp, _) = decode_all(&kinds[..values.len()], &mut lenient);
        assert_eq!(lv, values, "lenient disagrees with strict");
        assert_eq!(lp, positions);
    }

    // Round trip: re-encode what was decoded and read it back strictly.
    let mut enc = Encoder::default();
    let mut ends = Vec::new();
    for v in &values {
        encode(v, &mut enc);
        ends.push(enc.len());
    }
    let bytes = enc.into_inner();
    let mut back = Decoder::strict(&bytes);
    let (bv, bp, complete) = decode_all(&kinds[..values.len()], &mut back);
    assert!(complete, "strict decoder rejected a canonical encoding");
    assert_eq!(bv, values, "round trip changed the value");
    assert_eq!(bp, ends);
    assert!(back.is_empty());

    if strict {
        // Canonical encodings are unique: what strict consumed is exactly the re-encoding.
        let consumed = positions.last().copied().unwrap_or(0);
        assert_eq!(
            &payload[..consumed],
            &bytes[..],
            "strict accepted a non-canonical form"
        );
    }

    // `to_vec` for single trait-encoded values (it debug-asserts encoded_len itself).
    if let [v] = &values[..] {
        let single = match v {
            Value::Uint(x) => Some(to_vec(&Uint(*x))),
            Value::Buffer(x) => Some(to_vec(x)),
            Value::Str(x) => Some(to_vec(x)),
            Value::Ipv4(x) => Some(to_vec(x)),
            Value::Uints(x) => {
                let mut e = Encoder::default();
                e.array(x);
                Some(e.into_inner())
            }
            _ => None,
        };
        if let Some(s) = single {
            assert_eq!(s, bytes);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let strict = sel & 0x10 != 0;
    let kind = sel & 0x0f;
    if kind < KINDS {
        // 14 is either array(ipv4Address) or array(buffer).
        let kind = if kind == 14 && sel & 0x80 != 0 {
            15
        } else {
            kind
        };
        run(&[kind], strict, rest);
    } else {
        // A message: up to 8 fields whose kinds are given by the next bytes.
        let Some((&n, rest)) = rest.split_first() else {
            return;
        };
        let n = (n % 8) as usize + 1;
        if rest.len() < n {
            return;
        }
        let (ks, payload) = rest.split_at(n);
        let kinds: Vec<u8> = ks.iter().map(|k| k % 16).collect();
        run(&kinds, strict, payload);
    }
});
