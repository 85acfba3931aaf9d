//! Unordered encrypted datagrams on a secret stream (`send` / `trySend` / `'message'`,
//! spec `secret-stream.md` §10): XSalsa20-Poly1305 secretbox with an 8-byte counter nonce.

use xsalsa20poly1305::aead::{AeadInPlace, KeyInit};
use xsalsa20poly1305::XSalsa20Poly1305;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{blake2b256_keyed_parts, ns};

/// Bytes a datagram grows by: the 8-byte counter and the 16-byte MAC.
pub const OVERHEAD: usize = 24;

/// The per-direction keys and the send counter.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Unordered {
    send_key: [u8; 32],
    recv_key: [u8; 32],
    counter: [u8; 8],
    initial: [u8; 8],
}

impl std::fmt::Debug for Unordered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unordered")
    }
}

/// The send counter came back to its initial value (JS: `udp send nonce exchausted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unordered send nonce exhausted")]
pub struct NonceExhausted;

/// `BLAKE2b-256(NS_role || NS_SEND; key = handshake hash)`.
pub fn send_key(hash: &[u8; 64], initiator: bool) -> [u8; 32] {
    let role = if initiator {
        &ns::SECRET_STREAM_INITIATOR
    } else {
        &ns::SECRET_STREAM_RESPONDER
    };
    blake2b256_keyed_parts(hash, &[role, &ns::SECRET_STREAM_SEND])
}

fn increment(counter: &mut [u8; 8]) {
    let v = u64::from_le_bytes(*counter).wrapping_add(1);
    *counter = v.to_le_bytes();
}

impl Unordered {
    /// Keys for one side of a stream; `counter` is the random initial counter.
    pub fn new(hash: &[u8; 64], is_initiator: bool, counter: [u8; 8]) -> Self {
        Self {
            send_key: send_key(hash, is_initiator),
            recv_key: send_key(hash, !is_initiator),
            counter,
            initial: counter,
        }
    }

    /// Keys given directly; `counter` is the value before the first increment.
    pub fn from_keys(send_key: [u8; 32], recv_key: [u8; 32], counter: [u8; 8]) -> Self {
        Self {
            send_key,
            recv_key,
            counter,
            initial: counter,
        }
    }

    /// Encrypts one datagram: `counter(8) || mac(16) || ciphertext`.
    pub fn seal(&mut self, message: &[u8]) -> Result<Vec<u8>, NonceExhausted> {
        increment(&mut self.counter);
        if self.counter == self.initial {
            return Err(NonceExhausted);
        }
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&self.counter);
        let mut out = Vec::with_capacity(OVERHEAD + message.len());
        out.extend_from_slice(&self.counter);
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(message);
        let cipher = XSalsa20Poly1305::new(&self.send_key.into());
        if let Ok(tag) = cipher.encrypt_in_place_detached(&nonce.into(), b"", &mut out[OVERHEAD..])
        {
            out[8..OVERHEAD].copy_from_slice(&tag);
        }
        Ok(out)
    }

    /// Decrypts one datagram; `None` if it is short or does not authenticate (ignored, as in JS).
    pub fn open(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        if datagram.len() < OVERHEAD {
            return None;
        }
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&datagram[..8]);
        let mut out = datagram[OVERHEAD..].to_vec();
        XSalsa20Poly1305::new(&self.recv_key.into())
            .decrypt_in_place_detached(&nonce.into(), b"", &mut out, datagram[8..OVERHEAD].into())
            .ok()?;
        Some(out)
    }
}
