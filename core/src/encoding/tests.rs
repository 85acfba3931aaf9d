use std::net::{Ipv6Addr, SocketAddrV4, SocketAddrV6};

use super::*;

fn hex(b: &[u8]) -> String {
    crate::crypto::to_hex(b)
}

fn enc(f: impl FnOnce(&mut Encoder)) -> String {
    let mut e = Encoder::default();
    f(&mut e);
    hex(&e.into_inner())
}

#[test]
fn uint_vectors_from_spec() {
    let cases: [(u64, &str); 7] = [
        (0, "00"),
        (252, "fc"),
        (253, "fdfd00"),
        (65535, "fdffff"),
        (65536, "fe00000100"),
        (0xffff_ffff, "feffffffff"),
        (1 << 32, "ff0000000001000000"),
    ];
    for (v, want) in cases {
        assert_eq!(
            enc(|e| {
                e.uint(v);
            }),
            want,
            "uint {v}"
        );
        assert_eq!(uint_len(v) * 2, want.len());
        let bytes = to_vec(&Uint(v));
        assert_eq!(from_slice::<Uint>(&bytes), Ok(Uint(v)));
    }
}

#[test]
fn buffer_and_address_vectors_from_spec() {
    assert_eq!(hex(&to_vec(&b"abc".to_vec())), "03616263");
    assert_eq!(hex(&to_vec(&Vec::<u8>::new())), "00");
    let a: SocketAddrV4 = "1.2.3.4:49737".parse().expect("addr");
    assert_eq!(hex(&to_vec(&a)), "0102030449c2");
    let b = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0, 0);
    assert_eq!(hex(&to_vec(&b)), format!("{}0100", "00".repeat(15) + "01"));
    assert_eq!(from_slice::<SocketAddrV6>(&to_vec(&b)), Ok(b));
}

#[test]
fn lenient_varint_like_js_but_strict_mode_rejects() {
    let bytes = [0xfd, 0x05, 0x00];
    assert_eq!(Decoder::new(&bytes).uint(), Ok(5));
    assert!(matches!(
        Decoder::strict(&bytes).uint(),
        Err(DecodeError::NonCanonical(_))
    ));
    let big = [0xff, 0, 0, 0, 0, 0, 0, 0x20, 0];
    assert_eq!(
        Decoder::new(&big).uint(),
        Err(DecodeError::UintOverflow(1 << 53))
    );
    let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0];
    assert_eq!(Decoder::new(&max).uint(), Ok(MAX_SAFE_INTEGER));
}

#[test]
fn truncated_inputs_are_typed_errors() {
    for bytes in [
        &[][..],
        &[0xfd, 1][..],
        &[0xfe, 1, 2, 3][..],
        &[0xff, 1][..],
    ] {
        assert!(matches!(
            Decoder::new(bytes).uint(),
            Err(DecodeError::Truncated { .. })
        ));
    }
    assert!(matches!(
        from_slice::<&[u8]>(&[5, 1, 2]),
        Err(DecodeError::Truncated {
            needed: 5,
            remaining: 2
        })
    ));
    assert!(matches!(
        from_slice::<[u8; 32]>(&[0; 31]),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        from_slice::<SocketAddrV4>(&[1, 2, 3, 4, 5]),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn oversized_array_count_is_rejected_without_allocating() {
    let mut e = Encoder::default();
    e.uint(MAX_ARRAY_LEN + 1);
    let bytes = e.into_inner();
    assert_eq!(
        Decoder::new(&bytes).array::<Uint>(),
        Err(DecodeError::ArrayTooLong(MAX_ARRAY_LEN + 1))
    );
    let mut e = Encoder::default();
    e.uint(MAX_ARRAY_LEN);
    let bytes = e.into_inner();
    assert!(matches!(
        Decoder::new(&bytes).array::<Uint>(),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn arrays_round_trip_and_presize_exactly() {
    let items: Vec<SocketAddrV4> = vec![
        "10.0.0.1:1".parse().expect("a"),
        "255.255.255.255:65535".parse().expect("b"),
    ];
    let mut e = Encoder::with_capacity(array_len(&items));
    e.array(&items);
    let bytes = e.into_inner();
    assert_eq!(bytes.len(), array_len(&items));
    assert_eq!(Decoder::new(&bytes).array::<SocketAddrV4>(), Ok(items));
}

#[test]
fn strings_bools_and_fixed_sizes() {
    let s = "héllo 🌍".to_string();
    let bytes = to_vec(&s);
    assert_eq!(bytes.len(), s.encoded_len());
    assert_eq!(from_slice::<String>(&bytes), Ok(s));
    let bad = [2, 0xc3, 0x28];
    assert_eq!(from_slice::<String>(&bad), Ok("\u{fffd}(".to_string()));
    assert!(matches!(
        Decoder::strict(&bad).string(),
        Err(DecodeError::NonCanonical(_))
    ));
    assert_eq!(Decoder::new(&[2]).bool(), Ok(false));
    assert!(Decoder::strict(&[2]).bool().is_err());
    let k = [7u8; 64];
    assert_eq!(from_slice::<[u8; 64]>(&to_vec(&k)), Ok(k));
    assert_eq!(
        enc(|e| {
            e.uint24(0x0012_3456).uint16(0xabcd).uint32(1).uint64(2);
        }),
        "563412cdab010000000200000000000000"
    );
}

#[test]
fn trailing_bytes_are_ignored() {
    assert_eq!(from_slice::<Uint>(&[5, 9, 9]), Ok(Uint(5)));
}
