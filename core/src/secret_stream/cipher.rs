//! libsodium's `crypto_secretstream_xchacha20poly1305`, reimplemented byte for byte
//! (spec `secret-stream.md` §8), including its MAC padding quirk and its rekey on FINAL.
//!
//! Written here instead of using the `crypto_secretstream` crate because that crate does not
//! rekey on a FINAL tag (libsodium does) and rejects tag values libsodium accepts.

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::ChaCha20;
use poly1305::universal_hash::{KeyInit, UniversalHash};
use poly1305::Poly1305;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes a pushed message grows by: one tag byte and a 16-byte MAC.
pub const ABYTES: usize = 17;
/// Bytes in the stream header.
pub const HEADERBYTES: usize = 24;
/// Tag of an ordinary message (the only tag the JS stack sends).
pub const TAG_MESSAGE: u8 = 0;
/// Tag that forces a rekey after this message.
pub const TAG_REKEY: u8 = 2;
/// Tag marking the last message (implies a rekey in libsodium).
pub const TAG_FINAL: u8 = 3;

/// The ciphertext failed to authenticate, or is shorter than [`ABYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("secretstream message failed to authenticate")]
pub struct AuthError;

#[derive(Zeroize, ZeroizeOnDrop)]
struct State {
    k: [u8; 32],
    nonce: [u8; 12], // u32le(counter) || inonce(8)
}

impl State {
    fn new(key: &[u8; 32], header: &[u8; HEADERBYTES]) -> Self {
        let mut input = [0u8; 16];
        input.copy_from_slice(&header[..16]);
        let k: [u8; 32] =
            chacha20::hchacha::<chacha20::cipher::consts::U10>(key.into(), &input.into()).into();
        let mut nonce = [0u8; 12];
        nonce[0] = 1;
        nonce[4..].copy_from_slice(&header[16..]);
        Self { k, nonce }
    }

    fn cipher(&self) -> ChaCha20 {
        ChaCha20::new(&self.k.into(), &self.nonce.into())
    }

    /// Poly1305 over `B(64) || c || pad(len(c) mod 16) || u64le(0) || u64le(64 + len(c))`,
    /// with an empty additional-data string, as libsodium computes it.
    fn mac(poly_key: &[u8; 32], block: &[u8; 64], c: &[u8]) -> [u8; 16] {
        let mut mac = Poly1305::new(poly_key.into());
        // Whole blocks in one call each: the SIMD backend then works on several blocks at a
        // time (one block per call ran it serially; poly1305 was half of the crypto time).
        mac.update_padded(block);
        let full = c.len() - c.len() % 16;
        mac.update_padded(&c[..full]);
        let rem = &c[full..];
        // tail: remainder of c, then (0x10 - 64 + mlen) & 0xf zero bytes, then the lengths
        let pad = (0x10usize.wrapping_sub(64).wrapping_add(c.len())) & 0xf;
        let mut tail = [0u8; 15 + 15 + 16];
        tail[..rem.len()].copy_from_slice(rem);
        let mut n = rem.len() + pad;
        tail[n..n + 8].copy_from_slice(&0u64.to_le_bytes());
        tail[n + 8..n + 16].copy_from_slice(&(64 + c.len() as u64).to_le_bytes());
        n += 16;
        mac.compute_unpadded(&tail[..n]).into()
    }

    /// Keystream block 0 gives the Poly1305 key; block 1 encrypts the tag block.
    fn begin(&self, tag_or_first: u8) -> (ChaCha20, [u8; 32], [u8; 64]) {
        let mut c = self.cipher();
        let mut poly_key = [0u8; 32];
        c.apply_keystream(&mut poly_key);
        c.seek(64u64);
        let mut block = [0u8; 64];
        block[0] = tag_or_first;
        c.apply_keystream(&mut block);
        (c, poly_key, block)
    }

    fn advance(&mut self, mac: &[u8; 16], tag: u8) {
        for (n, m) in self.nonce[4..].iter_mut().zip(mac) {
            *n ^= m;
        }
        let counter =
            u32::from_le_bytes([self.nonce[0], self.nonce[1], self.nonce[2], self.nonce[3]])
                .wrapping_add(1);
        self.nonce[..4].copy_from_slice(&counter.to_le_bytes());
        if tag & TAG_REKEY != 0 || counter == 0 {
            self.rekey();
        }
    }

    fn rekey(&mut self) {
        let mut buf = [0u8; 40];
        buf[..32].copy_from_slice(&self.k);
        buf[32..].copy_from_slice(&self.nonce[4..]);
        self.cipher().apply_keystream(&mut buf);
        self.k.copy_from_slice(&buf[..32]);
        self.nonce[4..].copy_from_slice(&buf[32..]);
        self.nonce[..4].copy_from_slice(&1u32.to_le_bytes());
        buf.zeroize();
    }
}

/// The sending half (`init_push` / `push`).
pub struct Push(State);

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Push")
    }
}

impl Push {
    /// `init_push(key)` with a caller-chosen header (random in production).
    pub fn new(key: &[u8; 32], header: &[u8; HEADERBYTES]) -> Self {
        Self(State::new(key, header))
    }

    /// Appends `tag || E(message) || mac` to `out` (`message.len() + ABYTES` bytes).
    pub fn push(&mut self, message: &[u8], tag: u8, out: &mut Vec<u8>) {
        let (mut c, poly_key, block) = self.0.begin(tag);
        out.push(block[0]);
        let start = out.len();
        out.extend_from_slice(message);
        c.apply_keystream(&mut out[start..]);
        let mac = State::mac(&poly_key, &block, &out[start..]);
        out.extend_from_slice(&mac);
        self.0.advance(&mac, tag);
    }
}

/// The receiving half (`init_pull` / `pull`).
pub struct Pull(State);

impl std::fmt::Debug for Pull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pull")
    }
}

impl Pull {
    /// `init_pull(header, key)`.
    pub fn new(key: &[u8; 32], header: &[u8; HEADERBYTES]) -> Self {
        Self(State::new(key, header))
    }

    /// Authenticates and decrypts `ciphertext` in place. On success returns the tag; the
    /// plaintext is `ciphertext[1 .. len - 16]`. On failure the state is unchanged.
    pub fn pull_in_place(&mut self, ciphertext: &mut [u8]) -> Result<u8, AuthError> {
        if ciphertext.len() < ABYTES {
            return Err(AuthError);
        }
        let (first, rest) = ciphertext.split_at_mut(1);
        self.pull_split(first[0], rest)
    }

    /// As [`Pull::pull_in_place`] for a ciphertext whose first byte (the encrypted tag) is
    /// held apart from the rest (`E(message) || mac`): the plaintext is
    /// `rest[.. rest.len() - 16]`, so a caller never has to move it to drop the tag byte.
    pub fn pull_split(&mut self, first: u8, rest: &mut [u8]) -> Result<u8, AuthError> {
        if rest.len() < ABYTES - 1 {
            return Err(AuthError);
        }
        // Recover B: its first byte is the decrypted tag, the rest is keystream.
        let (mut c, poly_key, mut block) = self.0.begin(0);
        let tag = block[0] ^ first;
        block[0] = first;
        let end = rest.len() - 16;
        let mut expected = [0u8; 16];
        expected.copy_from_slice(&rest[end..]);
        let mac = State::mac(&poly_key, &block, &rest[..end]);
        if !bool::from(mac.ct_eq(&expected)) {
            return Err(AuthError);
        }
        c.apply_keystream(&mut rest[..end]);
        self.0.advance(&mac, tag);
        Ok(tag)
    }
}
