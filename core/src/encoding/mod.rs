//! compact-encoding, byte-compatible with the npm `compact-encoding` package used by
//! dht-rpc and hyperdht (spec: `dht-rpc.md` §2).
//!
//! Every message is encoded in two passes, as in the JS library: [`Encode::encoded_len`]
//! computes the exact size, then [`Encode::encode`] appends exactly that many bytes. Decoding
//! works on a borrowed buffer through a [`Decoder`] cursor; it never panics, returns a typed
//! [`DecodeError`], and ignores trailing bytes (as the JS decoders do).
//!
//! Leniency follows the running JS code: by default a non-minimal varint (`FD 05 00` for 5)
//! is accepted, a bool byte other than 0/1 reads as `false` unless it is 1, and invalid UTF-8 in
//! a string is replaced with U+FFFD. [`Decoder::strict`] rejects all three with
//! [`DecodeError::NonCanonical`]. Encoders always emit the canonical form.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

mod codec;
pub use codec::{Decode, Encode, Uint};

/// Largest integer a JS `uint` decoder accepts (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// Largest element count an array decoder accepts (compact-encoding's limit).
pub const MAX_ARRAY_LEN: u64 = 1_048_576;

/// Why a buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("truncated input: needed {needed} more byte(s), {remaining} left")]
    Truncated {
        /// Bytes the value needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A varint larger than 2^53 − 1 (JS numbers cannot hold it).
    #[error("integer {0} is larger than 2^53 - 1")]
    UintOverflow(u64),
    /// An array length prefix above [`MAX_ARRAY_LEN`].
    #[error("array of {0} elements exceeds the limit of 1048576")]
    ArrayTooLong(u64),
    /// A valid but non-canonical encoding, rejected in strict mode.
    #[error("non-canonical encoding: {0}")]
    NonCanonical(&'static str),
    /// A value outside the domain of the field (an unknown enum value, a bad flag).
    #[error("invalid value: {0}")]
    InvalidValue(&'static str),
}

/// Appends compact encodings to a byte vector.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

/// Encoded size of `v` as a `uint` varint.
pub const fn uint_len(v: u64) -> usize {
    if v <= 0xfc {
        1
    } else if v <= 0xffff {
        3
    } else if v <= 0xffff_ffff {
        5
    } else {
        9
    }
}

/// Encoded size of a length-prefixed buffer or string of `n` bytes.
pub const fn buffer_len(n: usize) -> usize {
    uint_len(n as u64) + n
}

impl Encoder {
    /// An encoder whose buffer holds exactly `capacity` bytes before it must grow.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// An encoder appending to an existing vector.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// The bytes written so far.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Encodes any [`Encode`] value.
    pub fn put<T: Encode + ?Sized>(&mut self, value: &T) -> &mut Self {
        value.encode(self);
        self
    }

    /// `uint` varint, minimal form.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        if v <= 0xfc {
            self.buf.push(v as u8);
        } else if v <= 0xffff {
            self.buf.push(0xfd);
            self.buf.extend_from_slice(&(v as u16).to_le_bytes());
        } else if v <= 0xffff_ffff {
            self.buf.push(0xfe);
            self.buf.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            self.buf.push(0xff);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    /// One byte.
    pub fn uint8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Two bytes, little-endian.
    pub fn uint16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Three bytes, little-endian; the top byte of `v` is ignored.
    pub fn uint24(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes()[..3]);
        self
    }

    /// Four bytes, little-endian.
    pub fn uint32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Eight bytes, little-endian.
    pub fn uint64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A bool as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(u8::from(v));
        self
    }

    /// Raw bytes without a length prefix (`fixed32`, `fixed64`, `raw`).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Length-prefixed bytes (`buffer`).
    pub fn buffer(&mut self, bytes: &[u8]) -> &mut Self {
        self.uint(bytes.len() as u64);
        self.raw(bytes)
    }

    /// `optionalBuffer`: `None` and an empty buffer both encode as `00`.
    pub fn optional_buffer(&mut self, bytes: Option<&[u8]>) -> &mut Self {
        self.buffer(bytes.unwrap_or_default())
    }

    /// Length-prefixed UTF-8 (`string`).
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.buffer(s.as_bytes())
    }

    /// `ipv4Address`: four octets in network order, then the port as uint16 LE.
    pub fn ipv4_address(&mut self, addr: &SocketAddrV4) -> &mut Self {
        self.raw(&addr.ip().octets());
        self.uint16(addr.port())
    }

    /// `ipv6Address`: sixteen octets in network order, then the port as uint16 LE.
    pub fn ipv6_address(&mut self, addr: &SocketAddrV6) -> &mut Self {
        self.raw(&addr.ip().octets());
        self.uint16(addr.port())
    }

    /// `array(T)`: a `uint` count, then each element.
    pub fn array<T: Encode>(&mut self, items: &[T]) -> &mut Self {
        self.uint(items.len() as u64);
        for item in items {
            item.encode(self);
        }
        self
    }
}

/// Encoded size of `array(T)` over `items`.
pub fn array_len<T: Encode>(items: &[T]) -> usize {
    uint_len(items.len() as u64) + items.iter().map(Encode::encoded_len).sum::<usize>()
}

/// A cursor over a borrowed buffer.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    strict: bool,
}

impl<'a> Decoder<'a> {
    /// A decoder as lenient as the JS one.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            strict: false,
        }
    }

    /// A decoder that rejects non-minimal varints, bools other than 0/1 and invalid UTF-8.
    pub fn strict(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            strict: true,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether all input was consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Decodes any [`Decode`] value.
    pub fn get<T: Decode<'a>>(&mut self) -> Result<T, DecodeError> {
        T::decode(self)
    }

    /// Takes `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::Truncated {
                needed: n,
                remaining,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes exactly `N` raw bytes (`fixed32`, `fixed64`, …).
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// All remaining bytes (`raw`).
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// One byte.
    pub fn uint8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Two bytes, little-endian.
    pub fn uint16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.fixed()?))
    }

    /// Three bytes, little-endian.
    pub fn uint24(&mut self) -> Result<u32, DecodeError> {
        let b: [u8; 3] = self.fixed()?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    /// Four bytes, little-endian.
    pub fn uint32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    /// Eight bytes, little-endian.
    pub fn uint64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.fixed()?))
    }

    /// `uint` varint; values above 2^53 − 1 are rejected as the JS decoder does.
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let (v, min) = match self.uint8()? {
            0xfd => (u64::from(self.uint16()?), 0xfd),
            0xfe => (u64::from(self.uint32()?), 0x1_0000),
            0xff => (self.uint64()?, 0x1_0000_0000),
            b => (u64::from(b), 0),
        };
        if v > MAX_SAFE_INTEGER {
            self.pos = start;
            return Err(DecodeError::UintOverflow(v));
        }
        if self.strict && v < min {
            self.pos = start;
            return Err(DecodeError::NonCanonical("varint not in its shortest form"));
        }
        Ok(v)
    }

    /// A `uint` that must fit a `usize` length and the remaining input.
    fn length(&mut self) -> Result<usize, DecodeError> {
        let n = self.uint()?;
        let remaining = self.remaining();
        match usize::try_from(n) {
            Ok(n) if n <= remaining => Ok(n),
            _ => Err(DecodeError::Truncated {
                needed: usize::try_from(n).unwrap_or(usize::MAX),
                remaining,
            }),
        }
    }

    /// A bool byte. The JS decoder reads any byte other than 1 as `false`.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.uint8()? {
            1 => Ok(true),
            0 => Ok(false),
            _ if self.strict => Err(DecodeError::NonCanonical("bool byte other than 0 or 1")),
            _ => Ok(false),
        }
    }

    /// Length-prefixed bytes, borrowed.
    pub fn buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.length()?;
        self.take(n)
    }

    /// `optionalBuffer`: a zero length decodes as `None`.
    pub fn optional_buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let b = self.buffer()?;
        Ok((!b.is_empty()).then_some(b))
    }

    /// Length-prefixed UTF-8.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let start = self.pos;
        let bytes = self.buffer()?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) if self.strict => {
                self.pos = start;
                Err(DecodeError::NonCanonical("string is not valid UTF-8"))
            }
            Err(_) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        }
    }

    /// `ipv4Address`.
    pub fn ipv4_address(&mut self) -> Result<SocketAddrV4, DecodeError> {
        let octets: [u8; 4] = self.fixed()?;
        let port = self.uint16()?;
        Ok(SocketAddrV4::new(Ipv4Addr::from(octets), port))
    }

    /// `ipv6Address`.
    pub fn ipv6_address(&mut self) -> Result<SocketAddrV6, DecodeError> {
        let octets: [u8; 16] = self.fixed()?;
        let port = self.uint16()?;
        Ok(SocketAddrV6::new(Ipv6Addr::from(octets), port, 0, 0))
    }

    /// `array(T)`: at most [`MAX_ARRAY_LEN`] elements. Memory is reserved only as the
    /// elements actually decode, so a huge count cannot allocate up front.
    pub fn array<T: Decode<'a>>(&mut self) -> Result<Vec<T>, DecodeError> {
        let start = self.pos;
        let n = self.uint()?;
        if n > MAX_ARRAY_LEN {
            self.pos = start;
            return Err(DecodeError::ArrayTooLong(n));
        }
        // Every element takes at least one byte except zero-size ones, which we do not have.
        let cap = usize::try_from(n).unwrap_or(0).min(self.remaining());
        let mut out = Vec::with_capacity(cap);
        for _ in 0..n {
            out.push(T::decode(self)?);
        }
        Ok(out)
    }
}

/// Encodes `value` into a vector of exactly its encoded length.
pub fn to_vec<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    let len = value.encoded_len();
    let mut enc = Encoder::with_capacity(len);
    value.encode(&mut enc);
    debug_assert_eq!(enc.len(), len, "encoded_len disagrees with encode");
    enc.into_inner()
}

/// Decodes a `T` from the front of `bytes`, ignoring trailing bytes (as the JS code does).
pub fn from_slice<'a, T: Decode<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    T::decode(&mut Decoder::new(bytes))
}

#[cfg(test)]
mod tests;
