//! dht-rpc datagrams: requests and responses (spec `dht-rpc.md` §3), node ids (§4), the
//! internal command numbers (§5) and error codes (§6).
//!
//! A datagram is one [`Request`] (first byte [`REQUEST`] = `0x03`) or one [`Response`] (first
//! byte [`RESPONSE`] = `0x13`). Optional fields are announced by bits of a `flags` varint that
//! follows the first byte; see [`flags`].
//!
//! Decoding is as tolerant as `dht-rpc` 6.27's: `flags` is read as a `uint` (non-minimal forms
//! and unknown bits are accepted and the unknown bits ignored), every varint may be non-minimal,
//! and trailing bytes after the last field are ignored. Encoding always produces exactly what the
//! JS encoder writes for the same values: the flags byte is derived from the fields (a response's
//! closer-nodes bit only for a non-empty list, its error bit only for a non-zero error), so a
//! decoded message re-encodes to the canonical form.
//!
//! An `id` is carried as received; checking it against the UDP source ([`node_id`] of the
//! sender's address, §4) is up to the caller.

use std::cmp::Ordering;
use std::net::SocketAddrV4;

use crate::crypto::blake2b256;
use crate::encoding::{
    array_len, buffer_len, to_vec, uint_len, Decode, DecodeError, Decoder, Encode, Encoder,
};

/// Protocol version, the low nibble of the first byte.
pub const VERSION: u8 = 3;
/// First byte of a request: type 0, version 3.
pub const REQUEST: u8 = VERSION;
/// First byte of a response: type 1, version 3.
pub const RESPONSE: u8 = (1 << 4) | VERSION;

/// Bits of the `flags` field.
pub mod flags {
    /// Request and response: an `id` (fixed32) follows `to`.
    pub const ID: u64 = 0x01;
    /// Request and response: a `token` (fixed32) follows.
    pub const TOKEN: u64 = 0x02;
    /// Request: the command is in dht-rpc's internal namespace.
    pub const INTERNAL: u64 = 0x04;
    /// Response: `closerNodes` (`array(ipv4Address)`) follows.
    pub const CLOSER_NODES: u64 = 0x04;
    /// Request: a `target` (fixed32) follows the command.
    pub const TARGET: u64 = 0x08;
    /// Response: an `error` (`uint`) follows.
    pub const ERROR: u64 = 0x08;
    /// Request and response: a `value` (`buffer`) ends the message.
    pub const VALUE: u64 = 0x10;
}

/// Command numbers of the internal namespace (requests with [`Request::internal`] set, §5).
pub mod commands {
    /// Liveness check; answered at once with an empty reply.
    pub const PING: u64 = 0;
    /// Reachability check: reply to the source IP at the port given in the value (uint16 LE).
    pub const PING_NAT: u64 = 1;
    /// Kademlia lookup step: reply with the nodes closest to the target.
    pub const FIND_NODE: u64 = 2;
    /// The value (an ipv4Address) names a node believed down.
    pub const DOWN_HINT: u64 = 3;
    /// Reply after the delay given in the value (uint32 LE milliseconds).
    pub const DELAYED_PING: u64 = 4;
}

/// Values of a response's `error` field (§6). Codes from 16 up belong to applications.
pub mod errors {
    /// Success; the field is then omitted from the wire.
    pub const OK: u64 = 0;
    /// The command is not known (or the application declined the request).
    pub const UNKNOWN_COMMAND: u64 = 1;
    /// The request carried a token that is valid under neither secret.
    pub const INVALID_TOKEN: u64 = 2;
}

/// Bytes every message starts with: type/version, flags (one byte when encoded), tid, `to`.
const FIXED_LEN: usize = 1 + 1 + 2 + 6;

/// A request datagram (§3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Transaction id, echoed by the response.
    pub tid: u16,
    /// The destination address as the sender sees it.
    pub to: SocketAddrV4,
    /// The sender's node id (only persistent nodes on their server socket send one).
    pub id: Option<[u8; 32]>,
    /// A round-trip token the receiver issued earlier (§7).
    pub token: Option<[u8; 32]>,
    /// Whether `command` is in dht-rpc's internal namespace ([`commands`]) rather than the
    /// application's.
    pub internal: bool,
    /// The command number. Like every `uint`, at most 2^53 − 1: larger values are encoded
    /// (the JS encoder throws instead) but no decoder accepts them.
    pub command: u64,
    /// The lookup target.
    pub target: Option<[u8; 32]>,
    /// The command's argument. `Some(empty)` is distinct from `None` on the wire.
    pub value: Option<Vec<u8>>,
}

/// A response datagram (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Transaction id of the request answered.
    pub tid: u16,
    /// The address the response is sent to (normally the requester as the responder sees it).
    pub to: SocketAddrV4,
    /// The responder's node id.
    pub id: Option<[u8; 32]>,
    /// A fresh token for the IP in `to`.
    pub token: Option<[u8; 32]>,
    /// Nodes closer to the request's target; an empty list is not put on the wire.
    pub closer_nodes: Vec<SocketAddrV4>,
    /// Error code ([`errors`]); 0 (success) is not put on the wire. At most 2^53 − 1, as
    /// [`Request::command`].
    pub error: u64,
    /// The reply's payload. `Some(empty)` is distinct from `None` on the wire.
    pub value: Option<Vec<u8>>,
}

/// Either kind of dht-rpc datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// First byte `0x03`.
    Request(Request),
    /// First byte `0x13`.
    Response(Response),
}

fn opt32_len(v: Option<&[u8; 32]>) -> usize {
    if v.is_some() {
        32
    } else {
        0
    }
}

fn bit(present: bool, flag: u64) -> u64 {
    if present {
        flag
    } else {
        0
    }
}

fn fixed32_if(
    dec: &mut Decoder<'_>,
    flags: u64,
    flag: u64,
) -> Result<Option<[u8; 32]>, DecodeError> {
    if flags & flag != 0 {
        dec.fixed().map(Some)
    } else {
        Ok(None)
    }
}

fn buffer_if(dec: &mut Decoder<'_>, flags: u64) -> Result<Option<Vec<u8>>, DecodeError> {
    if flags & flags::VALUE != 0 {
        dec.buffer().map(|b| Some(b.to_vec()))
    } else {
        Ok(None)
    }
}

/// Reads the first byte and checks it is `expected`.
fn type_byte(dec: &mut Decoder<'_>, expected: u8) -> Result<(), DecodeError> {
    if dec.uint8()? == expected {
        Ok(())
    } else if expected == REQUEST {
        Err(DecodeError::InvalidValue("not a dht-rpc request"))
    } else {
        Err(DecodeError::InvalidValue("not a dht-rpc response"))
    }
}

impl Request {
    /// The flags this request is encoded with.
    pub fn flags(&self) -> u64 {
        bit(self.id.is_some(), flags::ID)
            | bit(self.token.is_some(), flags::TOKEN)
            | bit(self.internal, flags::INTERNAL)
            | bit(self.target.is_some(), flags::TARGET)
            | bit(self.value.is_some(), flags::VALUE)
    }
}

impl Encode for Request {
    fn encoded_len(&self) -> usize {
        FIXED_LEN
            + opt32_len(self.id.as_ref())
            + opt32_len(self.token.as_ref())
            + uint_len(self.command)
            + opt32_len(self.target.as_ref())
            + self.value.as_ref().map_or(0, |v| buffer_len(v.len()))
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.uint8(REQUEST);
        enc.uint(self.flags());
        enc.uint16(self.tid);
        enc.ipv4_address(&self.to);
        if let Some(id) = &self.id {
            enc.raw(id);
        }
        if let Some(token) = &self.token {
            enc.raw(token);
        }
        enc.uint(self.command);
        if let Some(target) = &self.target {
            enc.raw(target);
        }
        if let Some(value) = &self.value {
            enc.buffer(value);
        }
    }
}

/// Decodes a whole request datagram, first byte included.
impl Decode<'_> for Request {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        type_byte(dec, REQUEST)?;
        let flags = dec.uint()?;
        let tid = dec.uint16()?;
        let to = dec.ipv4_address()?;
        let id = fixed32_if(dec, flags, flags::ID)?;
        let token = fixed32_if(dec, flags, flags::TOKEN)?;
        let command = dec.uint()?;
        let target = fixed32_if(dec, flags, flags::TARGET)?;
        let value = buffer_if(dec, flags)?;
        Ok(Self {
            tid,
            to,
            id,
            token,
            internal: flags & flags::INTERNAL != 0,
            command,
            target,
            value,
        })
    }
}

impl Response {
    /// The flags this response is encoded with.
    pub fn flags(&self) -> u64 {
        bit(self.id.is_some(), flags::ID)
            | bit(self.token.is_some(), flags::TOKEN)
            | bit(!self.closer_nodes.is_empty(), flags::CLOSER_NODES)
            | bit(self.error != errors::OK, flags::ERROR)
            | bit(self.value.is_some(), flags::VALUE)
    }
}

impl Encode for Response {
    fn encoded_len(&self) -> usize {
        let closer = if self.closer_nodes.is_empty() {
            0
        } else {
            array_len(&self.closer_nodes)
        };
        let error = if self.error == errors::OK {
            0
        } else {
            uint_len(self.error)
        };
        FIXED_LEN
            + opt32_len(self.id.as_ref())
            + opt32_len(self.token.as_ref())
            + closer
            + error
            + self.value.as_ref().map_or(0, |v| buffer_len(v.len()))
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.uint8(RESPONSE);
        enc.uint(self.flags());
        enc.uint16(self.tid);
        enc.ipv4_address(&self.to);
        if let Some(id) = &self.id {
            enc.raw(id);
        }
        if let Some(token) = &self.token {
            enc.raw(token);
        }
        if !self.closer_nodes.is_empty() {
            enc.array(&self.closer_nodes);
        }
        if self.error != errors::OK {
            enc.uint(self.error);
        }
        if let Some(value) = &self.value {
            enc.buffer(value);
        }
    }
}

/// Decodes a whole response datagram, first byte included. A closer-nodes bit with an empty
/// list, or an error bit with error 0, decodes like an absent field.
impl Decode<'_> for Response {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        type_byte(dec, RESPONSE)?;
        let flags = dec.uint()?;
        let tid = dec.uint16()?;
        let to = dec.ipv4_address()?;
        let id = fixed32_if(dec, flags, flags::ID)?;
        let token = fixed32_if(dec, flags, flags::TOKEN)?;
        let closer_nodes = if flags & flags::CLOSER_NODES != 0 {
            dec.array::<SocketAddrV4>()?
        } else {
            Vec::new()
        };
        let error = if flags & flags::ERROR != 0 {
            dec.uint()?
        } else {
            errors::OK
        };
        let value = buffer_if(dec, flags)?;
        Ok(Self {
            tid,
            to,
            id,
            token,
            closer_nodes,
            error,
            value,
        })
    }
}

/// Whether a datagram is meant for the dht-rpc parser: at least 2 bytes, starting with
/// [`REQUEST`] or [`RESPONSE`] (§1). Shorter datagrams are hole-punch probes; UDX packets start
/// with `0xFF`.
pub fn is_dht_message(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && matches!(datagram[0], REQUEST | RESPONSE)
}

impl Message {
    /// Decodes a datagram. Trailing bytes are ignored; an unknown first byte is
    /// [`DecodeError::InvalidValue`], a short one [`DecodeError::Truncated`].
    pub fn decode(datagram: &[u8]) -> Result<Self, DecodeError> {
        let mut dec = Decoder::new(datagram);
        match datagram.first() {
            Some(&REQUEST) => Request::decode(&mut dec).map(Self::Request),
            Some(&RESPONSE) => Response::decode(&mut dec).map(Self::Response),
            Some(_) => Err(DecodeError::InvalidValue("not a dht-rpc message")),
            None => Err(DecodeError::Truncated {
                needed: 1,
                remaining: 0,
            }),
        }
    }

    /// The datagram bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Request(r) => to_vec(r),
            Self::Response(r) => to_vec(r),
        }
    }

    /// The transaction id.
    pub fn tid(&self) -> u16 {
        match self {
            Self::Request(r) => r.tid,
            Self::Response(r) => r.tid,
        }
    }

    /// The `to` field: the receiver's address as the sender sees it.
    pub fn to(&self) -> SocketAddrV4 {
        match self {
            Self::Request(r) => r.to,
            Self::Response(r) => r.to,
        }
    }

    /// The advertised (unvalidated) sender id.
    pub fn id(&self) -> Option<&[u8; 32]> {
        match self {
            Self::Request(r) => r.id.as_ref(),
            Self::Response(r) => r.id.as_ref(),
        }
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Self::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Self::Response(r)
    }
}

/// The node id of a DHT node reachable at `addr` (§4): BLAKE2b-256 of the 6-byte
/// `ipv4Address` encoding (4 address octets, port as uint16 LE).
pub fn node_id(addr: &SocketAddrV4) -> [u8; 32] {
    let mut buf = [0u8; 6];
    buf[..4].copy_from_slice(&addr.ip().octets());
    buf[4..].copy_from_slice(&addr.port().to_le_bytes());
    blake2b256(&buf)
}

/// Whether an advertised id is the one the observed UDP source must have (§3.5, §4): only then
/// does the sender count as having an id.
pub fn validate_id(id: &[u8; 32], from: &SocketAddrV4) -> bool {
    node_id(from) == *id
}

/// Kademlia XOR distance between two ids.
pub fn xor_distance(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// Compares the XOR distances of `a` and `b` to `target`, as big-endian 256-bit numbers:
/// [`Ordering::Less`] means `a` is closer than `b`.
pub fn closer(target: &[u8; 32], a: &[u8; 32], b: &[u8; 32]) -> Ordering {
    for ((t, x), y) in target.iter().zip(a).zip(b) {
        match (x ^ t).cmp(&(y ^ t)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::encoding::from_slice;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        hex::decode(s).expect("hex")
    }

    fn local(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
    }

    /// Decodes `bytes`, checks the result, re-encodes byte for byte and checks every strict
    /// prefix is a typed truncation error.
    fn roundtrip(bytes: &[u8], want: &Message) {
        let got = Message::decode(bytes).expect("decodes");
        assert_eq!(&got, want);
        assert_eq!(got.encode(), bytes);
        match want {
            Message::Request(r) => assert_eq!(r.encoded_len(), bytes.len()),
            Message::Response(r) => assert_eq!(r.encoded_len(), bytes.len()),
        }
        for n in 0..bytes.len() {
            assert!(
                matches!(
                    Message::decode(&bytes[..n]),
                    Err(DecodeError::Truncated { .. })
                ),
                "prefix of {n} bytes"
            );
        }
    }

    const ID: [u8; 32] = [0xa5; 32];

    #[test]
    fn spec_captures_ping() {
        let req = unhex("03 04 c4 39 7f000001 49c2 00");
        roundtrip(
            &req,
            &Message::Request(Request {
                tid: 0x39c4,
                to: local(49737),
                id: None,
                token: None,
                internal: true,
                command: commands::PING,
                target: None,
                value: None,
            }),
        );
        let res = unhex("13 00 c4 39 7f000001 90db");
        roundtrip(
            &res,
            &Message::Response(Response {
                tid: 0x39c4,
                to: local(56208),
                id: None,
                token: None,
                closer_nodes: vec![],
                error: errors::OK,
                value: None,
            }),
        );
    }

    #[test]
    fn spec_captures_find_node() {
        let req = unhex(&format!(
            "03 0d 51 81 7f000001 4475 {} 02 {}",
            hex::encode(ID),
            "11".repeat(32)
        ));
        assert_eq!(req.len(), 75);
        roundtrip(
            &req,
            &Message::Request(Request {
                tid: 0x8151,
                to: local(30020),
                id: Some(ID),
                token: None,
                internal: true,
                command: commands::FIND_NODE,
                target: Some([0x11; 32]),
                value: None,
            }),
        );
        let res = unhex(&format!(
            "13 05 52 81 7f000001 3a75 {} 03 7f0000013a75 7f0000014475 7f0000013175",
            hex::encode(ID)
        ));
        roundtrip(
            &res,
            &Message::Response(Response {
                tid: 0x8152,
                to: local(30010),
                id: Some(ID),
                token: None,
                closer_nodes: vec![local(30010), local(30020), local(30001)],
                error: errors::OK,
                value: None,
            }),
        );
    }

    #[test]
    fn spec_captures_ping_nat() {
        let req = unhex("03 14 24 78 7f000001 3175 01 02 e4a2");
        roundtrip(
            &req,
            &Message::Request(Request {
                tid: 0x7824,
                to: local(30001),
                id: None,
                token: None,
                internal: true,
                command: commands::PING_NAT,
                target: None,
                value: Some(41700u16.to_le_bytes().to_vec()),
            }),
        );
        let res = unhex(&format!("13 01 24 78 7f000001 e4a2 {}", hex::encode(ID)));
        roundtrip(
            &res,
            &Message::Response(Response {
                tid: 0x7824,
                to: local(41700),
                id: Some(ID),
                token: None,
                closer_nodes: vec![],
                error: errors::OK,
                value: None,
            }),
        );
    }

    #[test]
    fn spec_captures_unknown_command_and_full_reply() {
        let res = unhex("13 0c 05 85 7f000001 729b 02 7f0000014bc2 7f0000014ac2 01");
        roundtrip(
            &res,
            &Message::Response(Response {
                tid: 0x8505,
                to: local(39794),
                id: None,
                token: None,
                closer_nodes: vec![local(49739), local(49738)],
                error: errors::UNKNOWN_COMMAND,
                value: None,
            }),
        );
        // id + token + closerNodes + value: flags 0x17.
        let full = Response {
            tid: 7,
            to: local(1),
            id: Some(ID),
            token: Some([0x5a; 32]),
            closer_nodes: vec![local(2)],
            error: errors::OK,
            value: Some(b"peer".to_vec()),
        };
        let bytes = Message::Response(full.clone()).encode();
        assert_eq!(&bytes[..2], &[0x13, 0x17]);
        roundtrip(&bytes, &Message::Response(full));
    }

    #[test]
    fn every_flag_combination_round_trips() {
        for f in 0u8..32 {
            let req = Request {
                tid: u16::from(f) * 2000,
                to: SocketAddrV4::new(Ipv4Addr::new(10, f, 0, 1), 65535),
                id: (f & 1 != 0).then_some([1; 32]),
                token: (f & 2 != 0).then_some([2; 32]),
                internal: f & 4 != 0,
                command: [0, 252, 253, 65536, 1 << 40][usize::from(f) % 5],
                target: (f & 8 != 0).then_some([3; 32]),
                value: (f & 16 != 0).then(|| vec![f; usize::from(f) * 9]),
            };
            let bytes = to_vec(&req);
            assert_eq!(bytes[1], f, "request flags");
            roundtrip(&bytes, &Message::Request(req));

            let res = Response {
                tid: u16::from(f),
                to: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, f), 0),
                id: (f & 1 != 0).then_some([4; 32]),
                token: (f & 2 != 0).then_some([5; 32]),
                closer_nodes: if f & 4 != 0 {
                    (0..u16::from(f)).map(|p| local(p + 1)).collect()
                } else {
                    vec![]
                },
                error: if f & 8 != 0 { u64::from(f) * 1000 } else { 0 },
                value: (f & 16 != 0).then(|| vec![f; 300 - usize::from(f)]),
            };
            let bytes = to_vec(&res);
            assert_eq!(bytes[1], f, "response flags");
            roundtrip(&bytes, &Message::Response(res));
        }
    }

    #[test]
    fn empty_value_is_not_absent() {
        let req = Request {
            tid: 1,
            to: local(1),
            id: None,
            token: None,
            internal: false,
            command: 9,
            target: None,
            value: Some(vec![]),
        };
        let bytes = to_vec(&req);
        assert_eq!(bytes, unhex("03 10 0100 7f000001 0100 09 00"));
        roundtrip(&bytes, &Message::Request(req));
    }

    #[test]
    fn decoding_is_as_tolerant_as_js() {
        // Non-minimal flags varint, unknown flag bits and trailing bytes.
        let bytes = unhex("03 fd 14 01 2478 7f000001 3175 fd 0100 fe 02000000 e4a2 ffff");
        let Ok(Message::Request(r)) = Message::decode(&bytes) else {
            panic!("tolerant request decode failed");
        };
        assert!(r.internal);
        assert_eq!(r.command, 1);
        assert_eq!(r.value.as_deref(), Some(&[0xe4, 0xa2][..]));
        assert_eq!(
            Message::Request(r).encode(),
            unhex("03 14 2478 7f000001 3175 01 02 e4a2")
        );

        // A closer-nodes bit with an empty list and an error bit with error 0 are dropped.
        let bytes = unhex("13 0c 0500 7f000001 0100 00 00 99");
        let Ok(Message::Response(r)) = Message::decode(&bytes) else {
            panic!("tolerant response decode failed");
        };
        assert!(r.closer_nodes.is_empty());
        assert_eq!(r.error, 0);
        assert_eq!(
            Message::Response(r).encode(),
            unhex("13 00 0500 7f000001 0100")
        );
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert!(matches!(
            Message::decode(&[]),
            Err(DecodeError::Truncated { .. })
        ));
        for first in [0x00, 0x01, 0x02, 0x04, 0x12, 0x23, 0xff] {
            assert!(matches!(
                Message::decode(&[first, 0, 0, 0, 127, 0, 0, 1, 1, 0, 0]),
                Err(DecodeError::InvalidValue(_))
            ));
        }
        // The typed decoders check the type byte too.
        assert!(from_slice::<Request>(&unhex("13 00 0000 7f000001 0100")).is_err());
        assert!(from_slice::<Response>(&unhex("03 00 0000 7f000001 0100 00")).is_err());
        // Command above 2^53 - 1.
        assert_eq!(
            Message::decode(&unhex("03 00 0000 7f000001 0100 ff 0000000000002000")),
            Err(DecodeError::UintOverflow(1 << 53))
        );
        // More closer nodes than the array limit.
        assert_eq!(
            Message::decode(&unhex("13 04 0000 7f000001 0100 fe 01001000")),
            Err(DecodeError::ArrayTooLong(0x0010_0001))
        );
        // A count the input cannot hold.
        assert!(matches!(
            Message::decode(&unhex("13 04 0000 7f000001 0100 fe 00001000 7f0000010100")),
            Err(DecodeError::Truncated { .. })
        ));
        // Value length beyond the end.
        assert!(matches!(
            Message::decode(&unhex("13 10 0000 7f000001 0100 05 0102")),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for _ in 0..20_000 {
            let n = rng.gen_range(0..120);
            let mut b: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            if let Some(first) = b.first_mut() {
                *first = if rng.gen() { REQUEST } else { RESPONSE };
            }
            if let Ok(m) = Message::decode(&b) {
                let again = m.encode();
                assert_eq!(Message::decode(&again), Ok(m));
            }
        }
    }

    #[test]
    fn is_dht_message_demultiplexes() {
        assert!(!is_dht_message(&[]));
        assert!(!is_dht_message(&[0x03]));
        assert!(!is_dht_message(&[0x00]));
        assert!(is_dht_message(&[0x03, 0x00]));
        assert!(is_dht_message(&[0x13, 0x00]));
        assert!(!is_dht_message(&[0xff, 0x01, 0, 0]));
    }

    #[test]
    fn node_id_vectors() {
        for (addr, want) in [
            (
                "127.0.0.1:49737",
                "d1dcf835b0d62b9230c41393cb96a34f5f8b9f814f421ca3382dfc1678022e0e",
            ),
            (
                "88.99.3.86:49737",
                "54d4b9c6441048061f80cf69564cee46a5730adfcd59fbe6c056bb49af771546",
            ),
            (
                "1.2.3.4:49737",
                "0d9535fc6d01006576c9e1923a4375cb3f12899e2d12d2d78ebd32197acbfb24",
            ),
        ] {
            let a: SocketAddrV4 = addr.parse().expect("addr");
            assert_eq!(hex::encode(node_id(&a)), want, "{addr}");
            assert!(validate_id(&node_id(&a), &a));
            let other = SocketAddrV4::new(*a.ip(), a.port() + 1);
            assert!(!validate_id(&node_id(&a), &other));
        }
    }

    #[test]
    fn xor_distance_and_closer() {
        let t = [0u8; 32];
        let mut a = [0u8; 32];
        a[31] = 1;
        let mut b = [0u8; 32];
        b[0] = 0x80;
        assert_eq!(xor_distance(&a, &b)[0], 0x80);
        assert_eq!(xor_distance(&a, &b)[31], 1);
        assert_eq!(xor_distance(&a, &a), [0; 32]);
        assert_eq!(closer(&t, &a, &b), Ordering::Less);
        assert_eq!(closer(&t, &b, &a), Ordering::Greater);
        assert_eq!(closer(&t, &a, &a), Ordering::Equal);
        // Relative to a target of all ones the order flips.
        let t = [0xff; 32];
        assert_eq!(closer(&t, &a, &b), Ordering::Greater);
        assert_eq!(closer(&b, &b, &a), Ordering::Less);
    }
}
