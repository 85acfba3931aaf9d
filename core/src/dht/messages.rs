//! hyperdht message encodings (spec `hyperdht.md` §2, §3, §11), byte-compatible with
//! `hyperdht` 6.34.0's `lib/messages.js` and `hyperdht-address` 1.1.1.
//!
//! Every type implements [`Encode`] (with an exact [`Encode::encoded_len`]) and [`Decode`].
//! As in the JS code:
//!
//! * a `flags` varint announcing optional fields is always **derived from the fields** when
//!   encoding (a decoded message therefore re-encodes canonically) and read as a `uint` when
//!   decoding, unknown bits ignored;
//! * trailing bytes after the last field are ignored (fields may be appended in future);
//! * any varint may be non-minimal unless a [`Decoder::strict`] is used;
//! * decoding never panics and reports a typed [`DecodeError`].
//!
//! Small enumerations carried as `uint` ([`Mode`], [`Firewall`], [`ErrorCode`]) are *open*:
//! the JS decoders accept any number, so these are newtypes over the wire value with the known
//! values as associated constants (usable in `match` patterns).
//!
//! The JS encoders size a few leading varints as one byte each (handshake/holepunch flags and
//! mode, noisePayload version/flags/error/firewall, holepunchPayload flags/error/firewall/round,
//! the udx version/features); JS output is only meaningful when those are below 253. The Rust
//! encoders write any value correctly.

use std::fmt;
use std::net::{SocketAddrV4, SocketAddrV6};

use crate::crypto::PublicKey;
use crate::encoding::{
    array_len, buffer_len, uint_len, Decode, DecodeError, Decoder, Encode, Encoder,
};

/// hyperdht command numbers (§2), sent in dht-rpc's application namespace (internal bit clear).
pub mod commands {
    /// Noise handshake routed towards a server; value [`super::Handshake`].
    pub const PEER_HANDSHAKE: u64 = 0;
    /// Hole-punch coordination routed towards a server; value [`super::Holepunch`].
    pub const PEER_HOLEPUNCH: u64 = 1;
    /// The router record of a server (target `H256(server public key)`); no value.
    pub const FIND_PEER: u64 = 2;
    /// Peer records stored under a topic; no value, reply [`super::LookupRawReply`].
    pub const LOOKUP: u64 = 3;
    /// Store a signed peer record; value [`super::Announce`]; needs a token.
    pub const ANNOUNCE: u64 = 4;
    /// Remove a peer record; value [`super::Announce`]; needs a token.
    pub const UNANNOUNCE: u64 = 5;
    /// Store a signed mutable record; value [`super::MutablePutRequest`]; needs a token.
    pub const MUTABLE_PUT: u64 = 6;
    /// Fetch a mutable record; value `uint` minimum seq, reply [`super::MutableGetResponse`].
    pub const MUTABLE_GET: u64 = 7;
    /// Store a value under `H256(value)`; value = the raw bytes; needs a token.
    pub const IMMUTABLE_PUT: u64 = 8;
    /// Fetch an immutable value; no value.
    pub const IMMUTABLE_GET: u64 = 9;
    /// Application plugin request; value [`super::PluginRequest`].
    pub const PLUGIN: u64 = 10;
}

/// hyperdht's dht-rpc response error codes (§11), in addition to dht-rpc's own 1 and 2.
pub mod errors {
    /// MUTABLE_PUT with the stored seq but a different value.
    pub const SEQ_REUSED: u64 = 16;
    /// MUTABLE_PUT with a seq lower than the stored one.
    pub const SEQ_TOO_LOW: u64 = 17;
}

/// Storage nodes keep at most this many relay addresses of an announced peer record (§3.1).
pub const MAX_STORED_RELAY_ADDRESSES: usize = 3;
/// A LOOKUP reply carries at most this many stored records (§4).
pub const MAX_LOOKUP_RECORDS: usize = 20;

/// Defines an open `uint` enumeration: a newtype over the wire value with named constants.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$cmeta:meta])* $konst:ident = $value:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// The constant's name for a known value, `None` for any other number.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    _ => None,
                }
            }

            /// Whether the value is one of the named constants.
            pub const fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}::{}", stringify!($name), n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }

        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0
            }
        }

        /// Encoded as a `uint`.
        impl Encode for $name {
            fn encoded_len(&self) -> usize {
                uint_len(self.0)
            }
            fn encode(&self, enc: &mut Encoder) {
                enc.uint(self.0);
            }
        }

        impl Decode<'_> for $name {
            fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
                dec.uint().map(Self)
            }
        }
    };
}

wire_enum! {
    /// Who sent a [`Handshake`] or [`Holepunch`] message (§3.6). Routers ignore other values.
    Mode {
        /// Client → (relaying) node.
        FROM_CLIENT = 0,
        /// Server → relay, answering a forwarded message.
        FROM_SERVER = 1,
        /// Relay → server, forwarding a client's message.
        FROM_RELAY = 2,
        /// Relay → second relay (the client named a `relayAddress`).
        FROM_SECOND_RELAY = 3,
        /// Reply sent back to the client.
        REPLY = 4,
    }
}

wire_enum! {
    /// NAT classification carried in [`NoisePayload`] and [`HolepunchPayload`] (§3.8).
    Firewall {
        /// Not (yet) known.
        UNKNOWN = 0,
        /// Reachable directly (no NAT or a full-cone one).
        OPEN = 1,
        /// Behind a NAT that keeps the same external port for every destination.
        CONSISTENT = 2,
        /// Behind a NAT that picks a new external port per destination.
        RANDOM = 3,
    }
}

wire_enum! {
    /// The `error` field of [`NoisePayload`] and [`HolepunchPayload`] (§3.8, §11).
    ErrorCode {
        /// No error.
        NONE = 0,
        /// The server aborted the connection (e.g. its firewall hook rejected the client).
        ABORTED = 1,
        /// The peer does not speak this payload version.
        VERSION_MISMATCH = 2,
        /// The server is busy (random-NAT punch limiter); try again later.
        TRY_LATER = 3,
    }
}

fn bit(present: bool, flag: u64) -> u64 {
    if present {
        flag
    } else {
        0
    }
}

fn opt_addr_len(addr: Option<&SocketAddrV4>) -> usize {
    if addr.is_some() {
        6
    } else {
        0
    }
}

fn addr_if(dec: &mut Decoder<'_>, present: bool) -> Result<Option<SocketAddrV4>, DecodeError> {
    if present {
        dec.ipv4_address().map(Some)
    } else {
        Ok(None)
    }
}

fn fixed_if<const N: usize>(
    dec: &mut Decoder<'_>,
    present: bool,
) -> Result<Option<[u8; N]>, DecodeError> {
    if present {
        dec.fixed().map(Some)
    } else {
        Ok(None)
    }
}

fn public_key(dec: &mut Decoder<'_>) -> Result<PublicKey, DecodeError> {
    dec.fixed().map(PublicKey)
}

// ---------------------------------------------------------------------------------------------
// §3.1 peer record

/// A peer record (`peer`, §3.1): `fixed32 publicKey || array(ipv4Address) relayAddresses`.
///
/// This exact encoding is what storage nodes keep, return in LOOKUP / FIND_PEER replies and
/// what announce signatures cover.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerRecord {
    /// The peer's (server's) Ed25519 public key.
    pub public_key: PublicKey,
    /// DHT nodes through which the peer can be reached.
    pub relay_addresses: Vec<SocketAddrV4>,
}

impl Encode for PeerRecord {
    fn encoded_len(&self) -> usize {
        32 + array_len(&self.relay_addresses)
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.raw(&self.public_key.0);
        enc.array(&self.relay_addresses);
    }
}

impl Decode<'_> for PeerRecord {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            public_key: public_key(dec)?,
            relay_addresses: dec.array()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// §3.2 announce

/// Bits of the [`Announce`] flags.
pub mod announce_flags {
    /// A [`super::PeerRecord`] follows.
    pub const PEER: u64 = 1;
    /// A 32-byte refresh value follows.
    pub const REFRESH: u64 = 2;
    /// A 64-byte signature follows.
    pub const SIGNATURE: u64 = 4;
    /// A `uint` bump follows.
    pub const BUMP: u64 = 8;
}

/// The value of ANNOUNCE and UNANNOUNCE requests (§3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Announce {
    /// The record to store (UNANNOUNCE: the key with an empty relay list).
    pub peer: Option<PeerRecord>,
    /// Hash-chain refresh value (§4); the JS announcer never sends one.
    pub refresh: Option<[u8; 32]>,
    /// Signature over the announce signable (§5).
    pub signature: Option<[u8; 64]>,
    /// Application timestamp (ms); 0 = none and is not put on the wire. Not signed.
    pub bump: u64,
}

impl Announce {
    /// The flags this message is encoded with.
    pub fn flags(&self) -> u64 {
        bit(self.peer.is_some(), announce_flags::PEER)
            | bit(self.refresh.is_some(), announce_flags::REFRESH)
            | bit(self.signature.is_some(), announce_flags::SIGNATURE)
            | bit(self.bump != 0, announce_flags::BUMP)
    }
}

impl Encode for Announce {
    fn encoded_len(&self) -> usize {
        1 + self.peer.as_ref().map_or(0, Encode::encoded_len)
            + if self.refresh.is_some() { 32 } else { 0 }
            + if self.signature.is_some() { 64 } else { 0 }
            + if self.bump != 0 {
                uint_len(self.bump)
            } else {
                0
            }
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.flags());
        if let Some(peer) = &self.peer {
            peer.encode(enc);
        }
        if let Some(refresh) = &self.refresh {
            enc.raw(refresh);
        }
        if let Some(signature) = &self.signature {
            enc.raw(signature);
        }
        if self.bump != 0 {
            enc.uint(self.bump);
        }
    }
}

/// A bump bit with the value 0 decodes like an absent bump.
impl Decode<'_> for Announce {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let flags = dec.uint()?;
        let peer = if flags & announce_flags::PEER != 0 {
            Some(PeerRecord::decode(dec)?)
        } else {
            None
        };
        let refresh = fixed_if(dec, flags & announce_flags::REFRESH != 0)?;
        let signature = fixed_if(dec, flags & announce_flags::SIGNATURE != 0)?;
        let bump = if flags & announce_flags::BUMP != 0 {
            dec.uint()?
        } else {
            0
        };
        Ok(Self {
            peer,
            refresh,
            signature,
            bump,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// §3.3 lookupRawReply

/// The value of a LOOKUP reply (§3.3): `array(peer) || uint bump`.
///
/// On the wire the records are stored encodings written back to back (JS `array(raw)`), which
/// is exactly `array(peer)` for canonical records; [`LookupRawReply::encode_raw`] writes stored
/// encodings as they are. The decoder treats a missing bump as 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LookupRawReply {
    /// The peer records (at most [`MAX_LOOKUP_RECORDS`] from a JS node).
    pub peers: Vec<PeerRecord>,
    /// The topic's stored bump (0 = none); always written.
    pub bump: u64,
}

impl LookupRawReply {
    /// Encodes a reply from stored record encodings (each a complete [`PeerRecord`] encoding),
    /// as a storage node does.
    pub fn encode_raw<R: AsRef<[u8]>>(records: &[R], bump: u64) -> Vec<u8> {
        let len = uint_len(records.len() as u64)
            + records.iter().map(|r| r.as_ref().len()).sum::<usize>()
            + uint_len(bump);
        let mut enc = Encoder::with_capacity(len);
        enc.uint(records.len() as u64);
        for r in records {
            enc.raw(r.as_ref());
        }
        enc.uint(bump);
        enc.into_inner()
    }
}

impl Encode for LookupRawReply {
    fn encoded_len(&self) -> usize {
        array_len(&self.peers) + uint_len(self.bump)
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.array(&self.peers);
        enc.uint(self.bump);
    }
}

impl Decode<'_> for LookupRawReply {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let peers = dec.array()?;
        let bump = if dec.is_empty() { 0 } else { dec.uint()? };
        Ok(Self { peers, bump })
    }
}

// ---------------------------------------------------------------------------------------------
// §3.5 mutable records

/// What a mutable-record signature covers (hashed, §5): `uint seq || buffer value`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MutableSignable {
    /// Sequence number.
    pub seq: u64,
    /// The record's value.
    pub value: Vec<u8>,
}

impl Encode for MutableSignable {
    fn encoded_len(&self) -> usize {
        uint_len(self.seq) + buffer_len(self.value.len())
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.seq);
        enc.buffer(&self.value);
    }
}

impl Decode<'_> for MutableSignable {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            seq: dec.uint()?,
            value: dec.buffer()?.to_vec(),
        })
    }
}

/// The value of a MUTABLE_PUT request (§3.5):
/// `fixed32 publicKey || uint seq || buffer value || fixed64 signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutablePutRequest {
    /// The signer; the request target must be `H256(public_key)`.
    pub public_key: PublicKey,
    /// Sequence number.
    pub seq: u64,
    /// The record's value.
    pub value: Vec<u8>,
    /// Signature over the mutable signable (§5).
    pub signature: [u8; 64],
}

impl Encode for MutablePutRequest {
    fn encoded_len(&self) -> usize {
        32 + uint_len(self.seq) + buffer_len(self.value.len()) + 64
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.raw(&self.public_key.0);
        enc.uint(self.seq);
        enc.buffer(&self.value);
        enc.raw(&self.signature);
    }
}

impl Decode<'_> for MutablePutRequest {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            public_key: public_key(dec)?,
            seq: dec.uint()?,
            value: dec.buffer()?.to_vec(),
            signature: dec.fixed()?,
        })
    }
}

/// The value of a MUTABLE_GET reply and what storage nodes keep (§3.5):
/// `uint seq || buffer value || fixed64 signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutableGetResponse {
    /// Sequence number.
    pub seq: u64,
    /// The record's value.
    pub value: Vec<u8>,
    /// Signature over the mutable signable (§5).
    pub signature: [u8; 64],
}

impl Encode for MutableGetResponse {
    fn encoded_len(&self) -> usize {
        uint_len(self.seq) + buffer_len(self.value.len()) + 64
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.seq);
        enc.buffer(&self.value);
        enc.raw(&self.signature);
    }
}

impl Decode<'_> for MutableGetResponse {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            seq: dec.uint()?,
            value: dec.buffer()?.to_vec(),
            signature: dec.fixed()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// §3.6 handshake, §3.7 holepunch

/// The value of PEER_HANDSHAKE requests and replies (§3.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Handshake {
    /// Who sent it.
    pub mode: Mode,
    /// The Noise IK handshake message.
    pub noise: Vec<u8>,
    /// The client's address as seen by the relay (relay → server), or the server's (replies).
    pub peer_address: Option<SocketAddrV4>,
    /// A second relay the message should go through (client → first relay).
    pub relay_address: Option<SocketAddrV4>,
}

impl Handshake {
    /// The flags this message is encoded with: bit0 peer address, bit1 relay address.
    pub fn flags(&self) -> u64 {
        bit(self.peer_address.is_some(), 1) | bit(self.relay_address.is_some(), 2)
    }
}

impl Encode for Handshake {
    fn encoded_len(&self) -> usize {
        1 + self.mode.encoded_len()
            + buffer_len(self.noise.len())
            + opt_addr_len(self.peer_address.as_ref())
            + opt_addr_len(self.relay_address.as_ref())
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.flags());
        enc.put(&self.mode);
        enc.buffer(&self.noise);
        if let Some(a) = &self.peer_address {
            enc.ipv4_address(a);
        }
        if let Some(a) = &self.relay_address {
            enc.ipv4_address(a);
        }
    }
}

impl Decode<'_> for Handshake {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let flags = dec.uint()?;
        Ok(Self {
            mode: dec.get()?,
            noise: dec.buffer()?.to_vec(),
            peer_address: addr_if(dec, flags & 1 != 0)?,
            relay_address: addr_if(dec, flags & 2 != 0)?,
        })
    }
}

/// The value of PEER_HOLEPUNCH requests and replies (§3.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holepunch {
    /// Who sent it.
    pub mode: Mode,
    /// The server-side hole-punch slot id.
    pub id: u64,
    /// The encrypted [`HolepunchPayload`] (§9.1).
    pub payload: Vec<u8>,
    /// The client's (relay → server) or server's (replies) address as seen by the relay.
    pub peer_address: Option<SocketAddrV4>,
}

impl Holepunch {
    /// The flags this message is encoded with: bit0 peer address.
    pub fn flags(&self) -> u64 {
        bit(self.peer_address.is_some(), 1)
    }
}

impl Encode for Holepunch {
    fn encoded_len(&self) -> usize {
        1 + self.mode.encoded_len()
            + uint_len(self.id)
            + buffer_len(self.payload.len())
            + opt_addr_len(self.peer_address.as_ref())
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.flags());
        enc.put(&self.mode);
        enc.uint(self.id);
        enc.buffer(&self.payload);
        if let Some(a) = &self.peer_address {
            enc.ipv4_address(a);
        }
    }
}

impl Decode<'_> for Holepunch {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let flags = dec.uint()?;
        Ok(Self {
            mode: dec.get()?,
            id: dec.uint()?,
            payload: dec.buffer()?.to_vec(),
            peer_address: addr_if(dec, flags & 1 != 0)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// §3.8 noisePayload

/// Bits of the [`NoisePayload`] flags.
pub mod noise_payload_flags {
    /// `holepunch` info follows.
    pub const HOLEPUNCH: u64 = 1;
    /// A non-empty `addresses4` list follows.
    pub const ADDRESSES4: u64 = 2;
    /// A non-empty `addresses6` list follows.
    pub const ADDRESSES6: u64 = 4;
    /// `udx` info follows.
    pub const UDX: u64 = 8;
    /// `secretStream` info follows.
    pub const SECRET_STREAM: u64 = 16;
    /// `relayThrough` info follows.
    pub const RELAY_THROUGH: u64 = 32;
    /// A (possibly empty) `relayAddresses` list follows.
    pub const RELAY_ADDRESSES: u64 = 64;
}

/// One relay a server can be hole-punched through: `ipv4Address relayAddress ||
/// ipv4Address peerAddress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayInfo {
    /// The relaying DHT node.
    pub relay_address: SocketAddrV4,
    /// The server's address as that relay sees it.
    pub peer_address: SocketAddrV4,
}

impl Encode for RelayInfo {
    fn encoded_len(&self) -> usize {
        12
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.ipv4_address(&self.relay_address);
        enc.ipv4_address(&self.peer_address);
    }
}

impl Decode<'_> for RelayInfo {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            relay_address: dec.ipv4_address()?,
            peer_address: dec.ipv4_address()?,
        })
    }
}

/// The `holepunch` field of a [`NoisePayload`]: `uint id || array(relayInfo)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HolepunchInfo {
    /// The server's hole-punch slot id.
    pub id: u64,
    /// Relays the client can send PEER_HOLEPUNCH through.
    pub relays: Vec<RelayInfo>,
}

impl Encode for HolepunchInfo {
    fn encoded_len(&self) -> usize {
        uint_len(self.id) + array_len(&self.relays)
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.id);
        enc.array(&self.relays);
    }
}

impl Decode<'_> for HolepunchInfo {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: dec.uint()?,
            relays: dec.array()?,
        })
    }
}

/// The `udx` field of a [`NoisePayload`]:
/// `uint version || uint features || uint streamId || uint seq`.
///
/// The fields are written as given; the JS encoder always writes version 1, and features bit0
/// only (other feature bits are dropped when decoding, as in JS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdxInfo {
    /// Version, 1.
    pub version: u64,
    /// Features bit0: the sender can keep its socket for reconnects.
    pub reusable_socket: bool,
    /// The sender's UDX stream id.
    pub id: u64,
    /// Initial sequence number (0).
    pub seq: u64,
}

impl Default for UdxInfo {
    fn default() -> Self {
        Self {
            version: 1,
            reusable_socket: false,
            id: 0,
            seq: 0,
        }
    }
}

impl Encode for UdxInfo {
    fn encoded_len(&self) -> usize {
        uint_len(self.version) + 1 + uint_len(self.id) + uint_len(self.seq)
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.version);
        enc.uint(u64::from(self.reusable_socket));
        enc.uint(self.id);
        enc.uint(self.seq);
    }
}

impl Decode<'_> for UdxInfo {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let version = dec.uint()?;
        let features = dec.uint()?;
        Ok(Self {
            version,
            reusable_socket: features & 1 != 0,
            id: dec.uint()?,
            seq: dec.uint()?,
        })
    }
}

/// The `secretStream` field of a [`NoisePayload`]: `uint version` (1; the JS encoder always
/// writes 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretStreamInfo {
    /// Version, 1.
    pub version: u64,
}

impl Default for SecretStreamInfo {
    fn default() -> Self {
        Self { version: 1 }
    }
}

impl Encode for SecretStreamInfo {
    fn encoded_len(&self) -> usize {
        uint_len(self.version)
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.version);
    }
}

impl Decode<'_> for SecretStreamInfo {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: dec.uint()?,
        })
    }
}

/// The `relayThrough` field of a [`NoisePayload`] (§10):
/// `uint version || uint flags || fixed32 publicKey || fixed32 token`.
///
/// The JS encoder always writes version 1 and flags 0, and its decoder drops `flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayThroughInfo {
    /// Version, 1.
    pub version: u64,
    /// Flags, 0.
    pub flags: u64,
    /// The blind relay's public key.
    pub public_key: PublicKey,
    /// The pairing token both sides present to the relay.
    pub token: [u8; 32],
}

impl RelayThroughInfo {
    /// Version 1, flags 0, as the JS encoder writes.
    pub fn new(public_key: PublicKey, token: [u8; 32]) -> Self {
        Self {
            version: 1,
            flags: 0,
            public_key,
            token,
        }
    }
}

impl Encode for RelayThroughInfo {
    fn encoded_len(&self) -> usize {
        uint_len(self.version) + uint_len(self.flags) + 64
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.version);
        enc.uint(self.flags);
        enc.raw(&self.public_key.0);
        enc.raw(&self.token);
    }
}

impl Decode<'_> for RelayThroughInfo {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: dec.uint()?,
            flags: dec.uint()?,
            public_key: public_key(dec)?,
            token: dec.fixed()?,
        })
    }
}

/// The plaintext carried inside both Noise handshake messages (§3.8).
///
/// A payload whose `version` is not [`NoisePayload::VERSION`] decodes to that version with
/// every other field empty (nothing after the version is parsed). Encoding always writes the
/// full layout after `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoisePayload {
    /// Payload version; 1.
    pub version: u64,
    /// Error the sender reports.
    pub error: ErrorCode,
    /// The sender's NAT classification.
    pub firewall: Firewall,
    /// Server: hole-punch slot and relays.
    pub holepunch: Option<HolepunchInfo>,
    /// The sender's IPv4 addresses (LAN / public); empty = absent on the wire.
    pub addresses4: Vec<SocketAddrV4>,
    /// The sender's IPv6 addresses; empty = absent on the wire.
    pub addresses6: Vec<SocketAddrV6>,
    /// The sender's UDX stream.
    pub udx: Option<UdxInfo>,
    /// The sender runs secret-stream over the connection.
    pub secret_stream: Option<SecretStreamInfo>,
    /// Blind-relay pairing request (§10).
    pub relay_through: Option<RelayThroughInfo>,
    /// Relay addresses the sender wants the peer to use; `Some(empty)` is put on the wire.
    pub relay_addresses: Option<Vec<SocketAddrV4>>,
}

impl Default for NoisePayload {
    fn default() -> Self {
        Self::with_version(Self::VERSION)
    }
}

impl NoisePayload {
    /// The payload version this implementation speaks.
    pub const VERSION: u64 = 1;

    /// A payload of `version` with every other field empty (what a payload of a version other
    /// than 1 decodes to).
    pub fn with_version(version: u64) -> Self {
        Self {
            version,
            error: ErrorCode::NONE,
            firewall: Firewall::UNKNOWN,
            holepunch: None,
            addresses4: Vec::new(),
            addresses6: Vec::new(),
            udx: None,
            secret_stream: None,
            relay_through: None,
            relay_addresses: None,
        }
    }

    /// The flags this payload is encoded with ([`noise_payload_flags`]).
    pub fn flags(&self) -> u64 {
        use noise_payload_flags as f;
        bit(self.holepunch.is_some(), f::HOLEPUNCH)
            | bit(!self.addresses4.is_empty(), f::ADDRESSES4)
            | bit(!self.addresses6.is_empty(), f::ADDRESSES6)
            | bit(self.udx.is_some(), f::UDX)
            | bit(self.secret_stream.is_some(), f::SECRET_STREAM)
            | bit(self.relay_through.is_some(), f::RELAY_THROUGH)
            | bit(self.relay_addresses.is_some(), f::RELAY_ADDRESSES)
    }
}

impl Encode for NoisePayload {
    fn encoded_len(&self) -> usize {
        let nonempty = |n: usize, len: usize| if n == 0 { 0 } else { len };
        uint_len(self.version)
            + 1
            + self.error.encoded_len()
            + self.firewall.encoded_len()
            + self.holepunch.as_ref().map_or(0, Encode::encoded_len)
            + nonempty(self.addresses4.len(), array_len(&self.addresses4))
            + nonempty(self.addresses6.len(), array_len(&self.addresses6))
            + self.udx.as_ref().map_or(0, Encode::encoded_len)
            + self.secret_stream.as_ref().map_or(0, Encode::encoded_len)
            + self.relay_through.as_ref().map_or(0, Encode::encoded_len)
            + self.relay_addresses.as_ref().map_or(0, |a| array_len(a))
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.version);
        enc.uint(self.flags());
        enc.put(&self.error);
        enc.put(&self.firewall);
        if let Some(h) = &self.holepunch {
            h.encode(enc);
        }
        if !self.addresses4.is_empty() {
            enc.array(&self.addresses4);
        }
        if !self.addresses6.is_empty() {
            enc.array(&self.addresses6);
        }
        if let Some(u) = &self.udx {
            u.encode(enc);
        }
        if let Some(s) = &self.secret_stream {
            s.encode(enc);
        }
        if let Some(r) = &self.relay_through {
            r.encode(enc);
        }
        if let Some(a) = &self.relay_addresses {
            enc.array(a);
        }
    }
}

impl Decode<'_> for NoisePayload {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        use noise_payload_flags as f;
        let version = dec.uint()?;
        if version != Self::VERSION {
            return Ok(Self::with_version(version));
        }
        let flags = dec.uint()?;
        let error = dec.get()?;
        let firewall = dec.get()?;
        let holepunch = if flags & f::HOLEPUNCH != 0 {
            Some(dec.get()?)
        } else {
            None
        };
        let addresses4 = if flags & f::ADDRESSES4 != 0 {
            dec.array()?
        } else {
            Vec::new()
        };
        let addresses6 = if flags & f::ADDRESSES6 != 0 {
            dec.array()?
        } else {
            Vec::new()
        };
        let udx = if flags & f::UDX != 0 {
            Some(dec.get()?)
        } else {
            None
        };
        let secret_stream = if flags & f::SECRET_STREAM != 0 {
            Some(dec.get()?)
        } else {
            None
        };
        let relay_through = if flags & f::RELAY_THROUGH != 0 {
            Some(dec.get()?)
        } else {
            None
        };
        let relay_addresses = if flags & f::RELAY_ADDRESSES != 0 {
            Some(dec.array()?)
        } else {
            None
        };
        Ok(Self {
            version,
            error,
            firewall,
            holepunch,
            addresses4,
            addresses6,
            udx,
            secret_stream,
            relay_through,
            relay_addresses,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// §3.9 holepunchPayload

/// Bits of the [`HolepunchPayload`] flags.
pub mod holepunch_payload_flags {
    /// The sender already has a connection.
    pub const CONNECTED: u64 = 1;
    /// The sender is punching.
    pub const PUNCHING: u64 = 2;
    /// An address list follows.
    pub const ADDRESSES: u64 = 4;
    /// The receiver's address as the sender sees it follows.
    pub const REMOTE_ADDRESS: u64 = 8;
    /// The sender's 32-byte probe token follows.
    pub const TOKEN: u64 = 16;
    /// The receiver's 32-byte probe token, echoed, follows.
    pub const REMOTE_TOKEN: u64 = 32;
}

/// The plaintext of a [`Holepunch`] payload before encryption (§3.9, §9.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HolepunchPayload {
    /// The sender already has a connection.
    pub connected: bool,
    /// The sender is punching.
    pub punching: bool,
    /// Error the sender reports.
    pub error: ErrorCode,
    /// The sender's NAT classification.
    pub firewall: Firewall,
    /// Hole-punch round.
    pub round: u64,
    /// The sender's candidate addresses; `Some(empty)` is put on the wire.
    pub addresses: Option<Vec<SocketAddrV4>>,
    /// The receiver's address as the sender sees it.
    pub remote_address: Option<SocketAddrV4>,
    /// The sender's probe token.
    pub token: Option<[u8; 32]>,
    /// The receiver's probe token, echoed.
    pub remote_token: Option<[u8; 32]>,
}

impl HolepunchPayload {
    /// The flags this payload is encoded with ([`holepunch_payload_flags`]).
    pub fn flags(&self) -> u64 {
        use holepunch_payload_flags as f;
        bit(self.connected, f::CONNECTED)
            | bit(self.punching, f::PUNCHING)
            | bit(self.addresses.is_some(), f::ADDRESSES)
            | bit(self.remote_address.is_some(), f::REMOTE_ADDRESS)
            | bit(self.token.is_some(), f::TOKEN)
            | bit(self.remote_token.is_some(), f::REMOTE_TOKEN)
    }
}

impl Encode for HolepunchPayload {
    fn encoded_len(&self) -> usize {
        1 + self.error.encoded_len()
            + self.firewall.encoded_len()
            + uint_len(self.round)
            + self.addresses.as_ref().map_or(0, |a| array_len(a))
            + opt_addr_len(self.remote_address.as_ref())
            + if self.token.is_some() { 32 } else { 0 }
            + if self.remote_token.is_some() { 32 } else { 0 }
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.flags());
        enc.put(&self.error);
        enc.put(&self.firewall);
        enc.uint(self.round);
        if let Some(a) = &self.addresses {
            enc.array(a);
        }
        if let Some(a) = &self.remote_address {
            enc.ipv4_address(a);
        }
        if let Some(t) = &self.token {
            enc.raw(t);
        }
        if let Some(t) = &self.remote_token {
            enc.raw(t);
        }
    }
}

impl Decode<'_> for HolepunchPayload {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        use holepunch_payload_flags as f;
        let flags = dec.uint()?;
        let error = dec.get()?;
        let firewall = dec.get()?;
        let round = dec.uint()?;
        let addresses = if flags & f::ADDRESSES != 0 {
            Some(dec.array()?)
        } else {
            None
        };
        Ok(Self {
            connected: flags & f::CONNECTED != 0,
            punching: flags & f::PUNCHING != 0,
            error,
            firewall,
            round,
            addresses,
            remote_address: addr_if(dec, flags & f::REMOTE_ADDRESS != 0)?,
            token: fixed_if(dec, flags & f::TOKEN != 0)?,
            remote_token: fixed_if(dec, flags & f::REMOTE_TOKEN != 0)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// §3.10 pluginRequest

/// The value of a PLUGIN request (§3.10):
/// `string plugin || uint version || uint command || uint flags || [buffer value]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginRequest {
    /// The plugin's name.
    pub plugin: String,
    /// The plugin's version; must equal the registered one.
    pub version: u64,
    /// Plugin-defined command.
    pub command: u64,
    /// Plugin-defined argument; `Some(empty)` is put on the wire (flag bit0).
    pub value: Option<Vec<u8>>,
}

impl Encode for PluginRequest {
    fn encoded_len(&self) -> usize {
        buffer_len(self.plugin.len())
            + uint_len(self.version)
            + uint_len(self.command)
            + 1
            + self.value.as_ref().map_or(0, |v| buffer_len(v.len()))
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.string(&self.plugin);
        enc.uint(self.version);
        enc.uint(self.command);
        enc.uint(u64::from(self.value.is_some()));
        if let Some(v) = &self.value {
            enc.buffer(v);
        }
    }
}

impl Decode<'_> for PluginRequest {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let plugin = dec.string()?;
        let version = dec.uint()?;
        let command = dec.uint()?;
        let flags = dec.uint()?;
        let value = if flags & 1 != 0 {
            Some(dec.buffer()?.to_vec())
        } else {
            None
        };
        Ok(Self {
            plugin,
            version,
            command,
            value,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// §3.11 hyperdht-address

/// A connect address (`hyperdht-address` 1.1.1, §3.11):
/// `fixed32 key || [uint flags || if bit0 array(ipv4Address) nodes]`.
///
/// The encoder always writes the flags; the decoder treats missing flags as 0, so a bare
/// 32-byte key decodes with `nodes: None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HyperdhtAddress {
    /// The server's public key.
    pub key: PublicKey,
    /// DHT nodes to use as initial relay addresses; `Some(empty)` is put on the wire.
    pub nodes: Option<Vec<SocketAddrV4>>,
}

impl HyperdhtAddress {
    /// What `connect()` makes of a string: a key in hex or z-base-32 (optionally `pear://…`),
    /// see [`parse_key`]; such an address never carries nodes.
    pub fn parse(s: &str) -> Result<Self, KeyParseError> {
        Ok(Self {
            key: PublicKey(parse_key(s)?),
            nodes: None,
        })
    }
}

impl Encode for HyperdhtAddress {
    fn encoded_len(&self) -> usize {
        32 + 1 + self.nodes.as_ref().map_or(0, |n| array_len(n))
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.raw(&self.key.0);
        enc.uint(u64::from(self.nodes.is_some()));
        if let Some(n) = &self.nodes {
            enc.array(n);
        }
    }
}

impl Decode<'_> for HyperdhtAddress {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let key = public_key(dec)?;
        let flags = if dec.is_empty() { 0 } else { dec.uint()? };
        let nodes = if flags & 1 != 0 {
            Some(dec.array()?)
        } else {
            None
        };
        Ok(Self { key, nodes })
    }
}

/// Why a key string was rejected by [`parse_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyParseError {
    /// Neither 52 (z-base-32) nor 64 (hex) characters (the count of characters is given).
    #[error("a key string has 52 (z-base-32) or 64 (hex) characters, not {0}")]
    Length(usize),
    /// A character outside the encoding's alphabet.
    #[error("invalid character at position {0}")]
    InvalidCharacter(usize),
}

/// The z-base-32 alphabet.
pub const Z32_ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// Parses a 32-byte key as hypercore-id-encoding 1.3.0 does for `connect()`: an optional
/// `pear://` prefix (anything from the next `/` on is dropped), then 52 z-base-32 characters
/// (lowercase alphabet only; the 4 bits past the key are ignored) or 64 hex digits (either
/// case).
pub fn parse_key(s: &str) -> Result<[u8; 32], KeyParseError> {
    let s = match s.strip_prefix("pear://") {
        Some(rest) => rest.split('/').next().unwrap_or_default(),
        None => s,
    };
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    match b.len() {
        52 => {
            let bytes = z32_decode(s)?;
            out.copy_from_slice(&bytes[..32]);
            Ok(out)
        }
        64 => {
            for (i, pair) in b.chunks_exact(2).enumerate() {
                let hi = hex_nibble(pair[0]).ok_or(KeyParseError::InvalidCharacter(2 * i))?;
                let lo = hex_nibble(pair[1]).ok_or(KeyParseError::InvalidCharacter(2 * i + 1))?;
                out[i] = (hi << 4) | lo;
            }
            Ok(out)
        }
        _ => Err(KeyParseError::Length(s.chars().count())),
    }
}

fn hex_nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn z32_value(c: u8) -> Option<u8> {
    Z32_ALPHABET.iter().position(|&a| a == c).map(|p| p as u8)
}

/// Bytes `z32.decode` produces from the `n mod 8` characters after the last full group.
const Z32_TAIL_BYTES: [usize; 8] = [0, 1, 1, 2, 2, 3, 4, 4];

/// z-base-32 decoding as the `z32` package does: `5·⌊n/8⌋ + [0,1,1,2,2,3,4,4][n mod 8]` bytes
/// for `n` characters, leftover bits ignored.
pub fn z32_decode(s: &str) -> Result<Vec<u8>, KeyParseError> {
    let b = s.as_bytes();
    let mut quintets = Vec::with_capacity(b.len().div_ceil(8) * 8);
    for (i, &c) in b.iter().enumerate() {
        quintets.push(z32_value(c).ok_or(KeyParseError::InvalidCharacter(i))?);
    }
    quintets.resize(b.len().div_ceil(8) * 8, 0);
    let mut out = Vec::with_capacity(quintets.len() / 8 * 5);
    for q in quintets.chunks_exact(8) {
        let v = q.iter().fold(0u64, |acc, &x| (acc << 5) | u64::from(x));
        out.extend_from_slice(&v.to_be_bytes()[3..]);
    }
    out.truncate(b.len() / 8 * 5 + Z32_TAIL_BYTES[b.len() % 8]);
    Ok(out)
}

/// z-base-32 encoding as the `z32` package does (`⌈8n/5⌉` characters, zero-padded bits).
pub fn z32_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity((bytes.len() * 8).div_ceil(5));
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 8];
        block[3..3 + chunk.len()].copy_from_slice(chunk);
        let v = u64::from_be_bytes(block);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            let q = (v >> (35 - 5 * i)) & 31;
            s.push(char::from(Z32_ALPHABET[q as usize]));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::crypto::KeyPair;
    use crate::encoding::{from_slice, to_vec};

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        hex::decode(s).expect("hex")
    }

    fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)
    }

    /// Encodes `value` to exactly `bytes`, decodes `bytes` back to `value`, and checks that
    /// every strict prefix fails with a typed truncation error unless `prefix_ok` says the
    /// decoder may stop there.
    fn check<T>(value: &T, bytes: &[u8], prefix_ok: impl Fn(usize) -> bool)
    where
        T: Encode + for<'a> Decode<'a> + PartialEq + fmt::Debug,
    {
        assert_eq!(value.encoded_len(), bytes.len(), "encoded_len of {value:?}");
        assert_eq!(hex::encode(to_vec(value)), hex::encode(bytes), "{value:?}");
        assert_eq!(&from_slice::<T>(bytes).expect("decodes"), value);
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&[0xff, 0x00, 0x13]);
        assert_eq!(&from_slice::<T>(&longer).expect("trailing bytes"), value);
        for n in 0..bytes.len() {
            if prefix_ok(n) {
                continue;
            }
            assert!(
                matches!(
                    from_slice::<T>(&bytes[..n]),
                    Err(DecodeError::Truncated { .. })
                ),
                "prefix {n} of {value:?}"
            );
        }
    }

    fn strict_prefixes_fail(_: usize) -> bool {
        false
    }

    fn pk1() -> PublicKey {
        *KeyPair::from_seed(&[1; 32]).public_key()
    }

    const PK1: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
    const ANNOUNCE_SIG: &str = "dbdb3bb3d950551512019ff98589284cd3e5559a865a10c31847ea8b0f8f6531\
                                b78624c5c89062e52fa3b731b7483919c0df42663840037d3d8bfde13fe80803";

    #[test]
    fn command_and_error_numbers() {
        assert_eq!(
            [
                commands::PEER_HANDSHAKE,
                commands::PEER_HOLEPUNCH,
                commands::FIND_PEER,
                commands::LOOKUP,
                commands::ANNOUNCE,
                commands::UNANNOUNCE,
                commands::MUTABLE_PUT,
                commands::MUTABLE_GET,
                commands::IMMUTABLE_PUT,
                commands::IMMUTABLE_GET,
                commands::PLUGIN,
            ],
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        );
        assert_eq!((errors::SEQ_REUSED, errors::SEQ_TOO_LOW), (16, 17));
        assert_eq!(
            [
                Mode::FROM_CLIENT,
                Mode::FROM_SERVER,
                Mode::FROM_RELAY,
                Mode::FROM_SECOND_RELAY
            ]
            .map(u64::from),
            [0, 1, 2, 3]
        );
        assert_eq!(Mode::REPLY.0, 4);
        assert_eq!(
            [
                Firewall::UNKNOWN,
                Firewall::OPEN,
                Firewall::CONSISTENT,
                Firewall::RANDOM
            ]
            .map(|f| f.0),
            [0, 1, 2, 3]
        );
        assert_eq!(
            [
                ErrorCode::NONE,
                ErrorCode::ABORTED,
                ErrorCode::VERSION_MISMATCH,
                ErrorCode::TRY_LATER
            ]
            .map(|e| e.0),
            [0, 1, 2, 3]
        );
        assert_eq!(
            format!("{:?}", Mode::FROM_SECOND_RELAY),
            "Mode::FROM_SECOND_RELAY"
        );
        assert_eq!(format!("{:?}", Firewall(9)), "Firewall(9)");
        assert!(!ErrorCode(16).is_known());
        assert!(matches!(Mode(4), Mode::REPLY));
    }

    #[test]
    fn peer_record_vector() {
        let peer = PeerRecord {
            public_key: pk1(),
            relay_addresses: vec![v4(1, 2, 3, 4, 5)],
        };
        check(
            &peer,
            &unhex(&format!("{PK1} 01 010203040500")),
            strict_prefixes_fail,
        );
        let empty = PeerRecord {
            public_key: pk1(),
            relay_addresses: vec![],
        };
        check(&empty, &unhex(&format!("{PK1} 00")), strict_prefixes_fail);
    }

    #[test]
    fn announce_vector() {
        let ann = Announce {
            peer: Some(PeerRecord {
                public_key: pk1(),
                relay_addresses: vec![v4(1, 2, 3, 4, 5)],
            }),
            refresh: None,
            signature: Some(unhex(ANNOUNCE_SIG).try_into().expect("64")),
            bump: 0,
        };
        assert_eq!(ann.flags(), 0x05);
        check(
            &ann,
            &unhex(&format!("05 {PK1} 01 010203040500 {ANNOUNCE_SIG}")),
            strict_prefixes_fail,
        );
    }

    #[test]
    fn announce_every_flag_combination() {
        for mask in 0..16u8 {
            let ann = Announce {
                peer: (mask & 1 != 0).then(|| PeerRecord {
                    public_key: PublicKey([7; 32]),
                    relay_addresses: vec![v4(9, 8, 7, 6, 1000); usize::from(mask)],
                }),
                refresh: (mask & 2 != 0).then_some([0x22; 32]),
                signature: (mask & 4 != 0).then_some([0x33; 64]),
                bump: if mask & 8 != 0 { 1_700_000_000_000 } else { 0 },
            };
            assert_eq!(ann.flags(), u64::from(mask));
            let bytes = to_vec(&ann);
            // A decoder stops early only after the flags when nothing follows.
            check(&ann, &bytes, |_| false);
        }
        // A bump bit carrying 0 decodes as "no bump" and re-encodes without the bit.
        let got: Announce = from_slice(&[0x08, 0x00]).expect("decodes");
        assert_eq!(got, Announce::default());
        assert_eq!(to_vec(&got), [0x00]);
        // Unknown flag bits are ignored; a non-minimal flags varint is accepted.
        assert_eq!(from_slice::<Announce>(&[0xf0]), Ok(Announce::default()));
        assert_eq!(
            from_slice::<Announce>(&[0xfd, 0, 0]),
            Ok(Announce::default())
        );
    }

    #[test]
    fn lookup_raw_reply_vector() {
        let peer = PeerRecord {
            public_key: pk1(),
            relay_addresses: vec![v4(1, 2, 3, 4, 5)],
        };
        let bytes = unhex(&format!("01 {PK1} 01 010203040500 00"));
        let reply = LookupRawReply {
            peers: vec![peer.clone()],
            bump: 0,
        };
        // The bump is optional when decoding: the prefix without it decodes too.
        check(&reply, &bytes, |n| n == bytes.len() - 1);
        assert_eq!(from_slice(&bytes[..bytes.len() - 1]), Ok(reply.clone()));
        assert_eq!(LookupRawReply::encode_raw(&[to_vec(&peer)], 0), bytes);
        let bumped = LookupRawReply {
            peers: vec![peer.clone(), peer],
            bump: 1_700_000_000_000,
        };
        let b = to_vec(&bumped);
        assert_eq!(from_slice(&b), Ok(bumped));
    }

    #[test]
    fn mutable_encodings() {
        let signable = MutableSignable {
            seq: 5,
            value: b"hello".to_vec(),
        };
        check(&signable, &unhex("05 05 68656c6c6f"), strict_prefixes_fail);
        let put = MutablePutRequest {
            public_key: pk1(),
            seq: 300,
            value: b"hi".to_vec(),
            signature: [0xab; 64],
        };
        check(
            &put,
            &unhex(&format!("{PK1} fd2c01 02 6869 {}", "ab".repeat(64))),
            strict_prefixes_fail,
        );
        let get = MutableGetResponse {
            seq: 0,
            value: vec![],
            signature: [0xcd; 64],
        };
        check(
            &get,
            &unhex(&format!("00 00 {}", "cd".repeat(64))),
            strict_prefixes_fail,
        );
    }

    #[test]
    fn handshake_vector() {
        let hs = Handshake {
            mode: Mode::FROM_RELAY,
            noise: b"abcd".to_vec(),
            peer_address: Some(v4(9, 8, 7, 6, 1000)),
            relay_address: None,
        };
        check(
            &hs,
            &unhex("01 02 04 61626364 09080706e803"),
            strict_prefixes_fail,
        );
        let both = Handshake {
            relay_address: Some(v4(1, 1, 1, 1, 1)),
            mode: Mode(1000),
            ..hs
        };
        check(
            &both,
            &unhex("03 fde803 04 61626364 09080706e803 010101010100"),
            strict_prefixes_fail,
        );
    }

    #[test]
    fn holepunch_vector() {
        let hp = Holepunch {
            mode: Mode::FROM_CLIENT,
            id: 3,
            payload: b"abcd".to_vec(),
            peer_address: Some(v4(9, 8, 7, 6, 1000)),
        };
        check(
            &hp,
            &unhex("01 00 03 04 61626364 09080706e803"),
            strict_prefixes_fail,
        );
    }

    #[test]
    fn noise_payload_client_vector() {
        let p = NoisePayload {
            addresses4: vec![v4(192, 168, 1, 10, 49737)],
            udx: Some(UdxInfo {
                id: 1234,
                ..UdxInfo::default()
            }),
            secret_stream: Some(SecretStreamInfo::default()),
            ..NoisePayload::default()
        };
        assert_eq!(p.flags(), 0x1a);
        check(
            &p,
            &unhex("01 1a 00 00 01 c0a8010a49c2 01 00 fdd204 00 01"),
            strict_prefixes_fail,
        );
    }

    #[test]
    fn noise_payload_server_vector() {
        let p = NoisePayload {
            firewall: Firewall::CONSISTENT,
            holepunch: Some(HolepunchInfo {
                id: 0,
                relays: vec![RelayInfo {
                    relay_address: v4(1, 1, 1, 1, 49737),
                    peer_address: v4(2, 2, 2, 2, 40000),
                }],
            }),
            udx: Some(UdxInfo {
                id: 5678,
                ..UdxInfo::default()
            }),
            secret_stream: Some(SecretStreamInfo::default()),
            relay_addresses: Some(vec![v4(1, 1, 1, 1, 49737)]),
            ..NoisePayload::default()
        };
        assert_eq!(p.flags(), 0x59);
        check(
            &p,
            &unhex(
                "01 59 00 02 00 01 0101010149c2 02020202409c 01 00 fd2e16 00 01 01 0101010149c2",
            ),
            strict_prefixes_fail,
        );
    }

    #[test]
    fn noise_payload_all_fields_and_versions() {
        let full = NoisePayload {
            version: 1,
            error: ErrorCode::TRY_LATER,
            firewall: Firewall::RANDOM,
            holepunch: Some(HolepunchInfo {
                id: 70_000,
                relays: vec![],
            }),
            addresses4: vec![v4(10, 0, 0, 1, 1)],
            addresses6: vec![SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 0, 0)],
            udx: Some(UdxInfo {
                version: 1,
                reusable_socket: true,
                id: 1,
                seq: 0,
            }),
            secret_stream: Some(SecretStreamInfo::default()),
            relay_through: Some(RelayThroughInfo::new(PublicKey([5; 32]), [6; 32])),
            relay_addresses: Some(vec![]),
        };
        assert_eq!(full.flags(), 0x7f);
        let bytes = to_vec(&full);
        check(&full, &bytes, strict_prefixes_fail);
        // Another version: nothing after the version is parsed, whatever follows.
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(from_slice(&v2), Ok(NoisePayload::with_version(2)));
        assert_eq!(
            from_slice(&[0xfd, 0x00, 0x01]),
            Ok(NoisePayload::with_version(256))
        );
        assert_eq!(to_vec(&NoisePayload::with_version(2)), [2, 0, 0, 0]);
        // Empty address lists are not put on the wire; an empty relay list is.
        let sparse = NoisePayload {
            relay_addresses: Some(vec![]),
            ..NoisePayload::default()
        };
        check(&sparse, &unhex("01 40 00 00 00"), strict_prefixes_fail);
        // udx feature bits other than bit0 are dropped, as in JS.
        let got: NoisePayload = from_slice(&unhex("01 08 00 00 01 03 05 00")).expect("decodes");
        assert_eq!(
            got.udx,
            Some(UdxInfo {
                version: 1,
                reusable_socket: true,
                id: 5,
                seq: 0
            })
        );
    }

    #[test]
    fn holepunch_payload_vector() {
        let p = HolepunchPayload {
            firewall: Firewall::CONSISTENT,
            addresses: Some(vec![v4(2, 2, 2, 2, 40000)]),
            ..HolepunchPayload::default()
        };
        check(
            &p,
            &unhex("04 00 02 00 01 02020202409c"),
            strict_prefixes_fail,
        );
        let full = HolepunchPayload {
            connected: true,
            punching: true,
            error: ErrorCode::ABORTED,
            firewall: Firewall::OPEN,
            round: 9,
            addresses: Some(vec![]),
            remote_address: Some(v4(3, 3, 3, 3, 3)),
            token: Some([1; 32]),
            remote_token: Some([2; 32]),
        };
        assert_eq!(full.flags(), 0x3f);
        let bytes = to_vec(&full);
        check(&full, &bytes, strict_prefixes_fail);
    }

    #[test]
    fn plugin_request_vector() {
        let p = PluginRequest {
            plugin: "ab".into(),
            version: 1,
            command: 2,
            value: Some(b"x".to_vec()),
        };
        check(&p, &unhex("02 6162 01 02 01 01 78"), strict_prefixes_fail);
        let none = PluginRequest {
            value: None,
            ..p.clone()
        };
        check(&none, &unhex("02 6162 01 02 00"), strict_prefixes_fail);
        let empty = PluginRequest {
            value: Some(vec![]),
            ..p
        };
        check(&empty, &unhex("02 6162 01 02 01 00"), strict_prefixes_fail);
    }

    #[test]
    fn hyperdht_address_vector() {
        let key = "01".repeat(32);
        let a = HyperdhtAddress {
            key: PublicKey([1; 32]),
            nodes: Some(vec![v4(1, 2, 3, 4, 5)]),
        };
        let bytes = unhex(&format!("{key} 01 01 010203040500"));
        // The flags are optional when decoding.
        check(&a, &bytes, |n| n == 32);
        let bare = HyperdhtAddress {
            key: PublicKey([1; 32]),
            nodes: None,
        };
        assert_eq!(from_slice(&bytes[..32]), Ok(bare.clone()));
        check(&bare, &unhex(&format!("{key} 00")), |n| n == 32);
    }

    #[test]
    fn key_strings() {
        let pk = pk1();
        let z = z32_encode(&pk.0);
        assert_eq!(z.len(), 52);
        assert_eq!(parse_key(&z), Ok(pk.0));
        assert_eq!(parse_key(PK1), Ok(pk.0));
        assert_eq!(parse_key(&PK1.to_uppercase()), Ok(pk.0));
        assert_eq!(parse_key(&format!("pear://{z}")), Ok(pk.0));
        assert_eq!(parse_key(&format!("pear://{PK1}/some/path")), Ok(pk.0));
        assert_eq!(
            HyperdhtAddress::parse(&z),
            Ok(HyperdhtAddress {
                key: pk,
                nodes: None
            })
        );
        assert_eq!(parse_key(&PK1[..62]), Err(KeyParseError::Length(62)));
        assert_eq!(parse_key(""), Err(KeyParseError::Length(0)));
        let mut bad = PK1.to_string();
        bad.replace_range(10..11, "g");
        assert_eq!(parse_key(&bad), Err(KeyParseError::InvalidCharacter(10)));
        assert_eq!(
            parse_key(&z.to_uppercase()),
            Err(KeyParseError::InvalidCharacter(0))
        );
        // 'l', 'v', '2' and '0' are not in the z-base-32 alphabet.
        let mut badz = z.clone();
        badz.replace_range(5..6, "l");
        assert_eq!(parse_key(&badz), Err(KeyParseError::InvalidCharacter(5)));
        // z32 round trips and the JS length rule.
        for n in 0..20usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let s = z32_encode(&data);
            assert_eq!(s.len(), (n * 8).div_ceil(5));
            assert_eq!(z32_decode(&s).expect("decodes"), data);
        }
        assert_eq!(z32_encode(&[0xf0]), "6y");
        assert_eq!(z32_decode("6y"), Ok(vec![0xf0]));
    }

    #[test]
    fn decode_errors_are_typed() {
        // An array count above the limit, a uint above 2^53 - 1.
        assert_eq!(
            from_slice::<PeerRecord>(&unhex(&format!("{PK1} fe01001000"))),
            Err(DecodeError::ArrayTooLong(0x0010_0001))
        );
        assert!(matches!(
            from_slice::<MutableSignable>(&unhex("ffffffffffffffffff")),
            Err(DecodeError::UintOverflow(_))
        ));
        assert!(matches!(
            from_slice::<Handshake>(&[]),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
