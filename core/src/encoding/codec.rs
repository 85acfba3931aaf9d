//! The `Encode` / `Decode` traits and their implementations for the primitive types.

use std::net::{SocketAddrV4, SocketAddrV6};

use super::{buffer_len, uint_len, DecodeError, Decoder, Encoder};

/// A value with a compact encoding.
///
/// `encoded_len` must return exactly the number of bytes `encode` appends; message buffers are
/// allocated from it.
pub trait Encode {
    /// Exact number of bytes [`Encode::encode`] appends.
    fn encoded_len(&self) -> usize;
    /// Appends the encoding.
    fn encode(&self, enc: &mut Encoder);
}

/// A value that can be decoded from a borrowed buffer.
pub trait Decode<'a>: Sized {
    /// Reads one value at the decoder's position.
    fn decode(dec: &mut Decoder<'a>) -> Result<Self, DecodeError>;
}

/// A `uint` varint field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uint(pub u64);

impl Encode for Uint {
    fn encoded_len(&self) -> usize {
        uint_len(self.0)
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.0);
    }
}

impl Decode<'_> for Uint {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.uint().map(Uint)
    }
}

impl Encode for bool {
    fn encoded_len(&self) -> usize {
        1
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.bool(*self);
    }
}

impl Decode<'_> for bool {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.bool()
    }
}

/// `fixed32`, `fixed64` and other fixed-size byte strings.
impl<const N: usize> Encode for [u8; N] {
    fn encoded_len(&self) -> usize {
        N
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.raw(self);
    }
}

impl<const N: usize> Decode<'_> for [u8; N] {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.fixed()
    }
}

/// `buffer`: length-prefixed bytes.
impl Encode for [u8] {
    fn encoded_len(&self) -> usize {
        buffer_len(self.len())
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.buffer(self);
    }
}

impl Encode for Vec<u8> {
    fn encoded_len(&self) -> usize {
        self.as_slice().encoded_len()
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.buffer(self);
    }
}

impl<'a> Decode<'a> for &'a [u8] {
    fn decode(dec: &mut Decoder<'a>) -> Result<Self, DecodeError> {
        dec.buffer()
    }
}

impl Decode<'_> for Vec<u8> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.buffer().map(<[u8]>::to_vec)
    }
}

/// `string`: length-prefixed UTF-8.
impl Encode for str {
    fn encoded_len(&self) -> usize {
        buffer_len(self.len())
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.string(self);
    }
}

impl Encode for String {
    fn encoded_len(&self) -> usize {
        self.as_str().encoded_len()
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.string(self);
    }
}

impl Decode<'_> for String {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.string()
    }
}

impl Encode for SocketAddrV4 {
    fn encoded_len(&self) -> usize {
        6
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.ipv4_address(self);
    }
}

impl Decode<'_> for SocketAddrV4 {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.ipv4_address()
    }
}

impl Encode for SocketAddrV6 {
    fn encoded_len(&self) -> usize {
        18
    }
    fn encode(&self, enc: &mut Encoder) {
        enc.ipv6_address(self);
    }
}

impl Decode<'_> for SocketAddrV6 {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.ipv6_address()
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encoded_len(&self) -> usize {
        (**self).encoded_len()
    }
    fn encode(&self, enc: &mut Encoder) {
        (**self).encode(enc);
    }
}
