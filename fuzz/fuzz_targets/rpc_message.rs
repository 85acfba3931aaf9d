//! dht-rpc datagrams (`rpc::message`).
//!
//! The whole input is one datagram for `Message::decode`; the same bytes also drive a
//! structured message (`Input` fields) for an encode → decode round trip.
//!
//! Properties:
//! * decoding never panics; a short datagram is `Truncated`, an unknown first byte
//!   `InvalidValue`;
//! * a decoded message has the datagram's type, and its re-encoding is `encoded_len` bytes,
//!   no longer than the datagram (the canonical form is the shortest), decodes to the same
//!   message and re-encodes to itself;
//! * trailing bytes never change the result;
//! * any structured request or response (numbers ≤ 2^53 − 1) round-trips exactly, with the
//!   flags derived from its fields.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use p2pswarm::encoding::{to_vec, DecodeError, Encode, MAX_SAFE_INTEGER};
use p2pswarm::rpc::message::{flags, Message, Request, Response, REQUEST, RESPONSE};
use p2pswarm_fuzz::Input;

fn encoded_len(m: &Message) -> usize {
    match m {
        Message::Request(r) => r.encoded_len(),
        Message::Response(r) => r.encoded_len(),
    }
}

fn check_decode(data: &[u8]) {
    let got = Message::decode(data);
    match data.first() {
        None => assert!(matches!(got, Err(DecodeError::Truncated { .. }))),
        Some(&b) if b != REQUEST && b != RESPONSE => {
            assert!(matches!(got, Err(DecodeError::InvalidValue(_))));
        }
        Some(_) => {}
    }
    let Ok(msg) = got else {
        return;
    };
    match &msg {
        Message::Request(_) => assert_eq!(data[0], REQUEST),
        Message::Response(_) => assert_eq!(data[0], RESPONSE),
    }
    let bytes = msg.encode();
    assert_eq!(
        bytes.len(),
        encoded_len(&msg),
        "encoded_len disagrees with encode"
    );
    assert!(
        bytes.len() <= data.len(),
        "re-encoding longer than the datagram"
    );
    let again = Message::decode(&bytes).expect("a re-encoding decodes");
    assert_eq!(again, msg, "decode -> encode -> decode changed the message");
    assert_eq!(again.encode(), bytes, "re-encoding is not canonical");
    // Trailing bytes are ignored.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&data[..data.len().min(16)]);
    assert_eq!(Message::decode(&longer).as_ref(), Ok(&msg));
}

fn u64_of(inp: &mut Input<'_>) -> u64 {
    let v = u64::from_le_bytes(inp.array());
    // Spread over all varint sizes, within what a decoder accepts.
    (v >> (v & 63)) & MAX_SAFE_INTEGER
}

fn addr(inp: &mut Input<'_>) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(inp.array::<4>()), inp.u16())
}

fn opt32(inp: &mut Input<'_>, present: bool) -> Option<[u8; 32]> {
    present.then(|| inp.array())
}

fn check_structured(data: &[u8]) {
    let mut inp = Input::new(data);
    let sel = u64::from(inp.byte());
    let tid = inp.u16();
    let to = addr(&mut inp);
    let id = opt32(&mut inp, sel & flags::ID != 0);
    let token = opt32(&mut inp, sel & flags::TOKEN != 0);
    let msg = if sel & 0x80 == 0 {
        let command = u64_of(&mut inp);
        let target = opt32(&mut inp, sel & flags::TARGET != 0);
        let value = (sel & flags::VALUE != 0).then(|| inp.chunk16().to_vec());
        let r = Request {
            tid,
            to,
            id,
            token,
            internal: sel & flags::INTERNAL != 0,
            command,
            target,
            value,
        };
        assert_eq!(r.flags(), sel & 0x1f);
        let bytes = to_vec(&r);
        assert_eq!(u64::from(bytes[1]), sel & 0x1f);
        Message::Request(r)
    } else {
        let n = usize::from(inp.byte() % 32);
        let closer_nodes: Vec<SocketAddrV4> = (0..n).map(|_| addr(&mut inp)).collect();
        let error = if sel & 0x40 != 0 { u64_of(&mut inp) } else { 0 };
        let value = (sel & flags::VALUE != 0).then(|| inp.chunk16().to_vec());
        let r = Response {
            tid,
            to,
            id,
            token,
            closer_nodes,
            error,
            value,
        };
        let bytes = to_vec(&r);
        assert_eq!(u64::from(bytes[1]), r.flags());
        assert_eq!(r.flags() & flags::CLOSER_NODES != 0, n > 0);
        assert_eq!(r.flags() & flags::ERROR != 0, error != 0);
        Message::Response(r)
    };
    let bytes = msg.encode();
    assert_eq!(bytes.len(), encoded_len(&msg));
    assert_eq!(
        Message::decode(&bytes).as_ref(),
        Ok(&msg),
        "structured round trip"
    );
    // Every strict prefix is rejected as truncated.
    let cut = usize::from(inp.byte()) % bytes.len();
    assert!(matches!(
        Message::decode(&bytes[..cut]),
        Err(DecodeError::Truncated { .. })
    ));
}

fuzz_target!(|data: &[u8]| {
    check_decode(data);
    check_structured(data);
});
