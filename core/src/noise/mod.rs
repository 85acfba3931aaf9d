//! Noise XX and IK with Diffie-Hellman over Ed25519 points, as `noise-handshake` 4 with
//! `noise-curve-ed` 2 runs them (`Noise_XX_Ed25519_ChaChaPoly_BLAKE2b`,
//! `Noise_IK_Ed25519_ChaChaPoly_BLAKE2b`; spec `secret-stream.md` §3–§4, `hyperdht.md` §8).
//!
//! Written by hand rather than with `snow`: the JS stack's DH is not X25519, and snow needs a
//! custom resolver, a 56-byte key-buffer workaround and a seed-for-secret substitution to
//! reproduce it. The handshake here is a small state machine over the two patterns Hyperswarm
//! uses, checked against the JS known-answer vectors.
//!
//! The state machine is sans-IO: it takes and returns whole messages, and the ephemeral key
//! pair is an input, so tests inject the JS vectors' ephemerals.

use std::fmt;

use blake2::digest::{Digest, Mac};
use blake2::Blake2b512;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::SimpleHmac;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{dh, DhError, KeyPair, PublicKey};

/// Largest Noise message (the JS code throws above it).
pub const MAX_MESSAGE_LEN: usize = 65535;
const HASHLEN: usize = 64;
const TAGLEN: usize = 16;
const DHLEN: usize = 32;

/// A handshake pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `-> e` / `<- e, ee, s, es` / `-> s, se`: the secret stream's default.
    XX,
    /// `<- s` … `-> e, es, s, ss` / `<- e, ee, se`: hyperdht's connect handshake.
    IK,
}

impl Pattern {
    fn protocol_name(self) -> &'static [u8] {
        match self {
            Pattern::XX => b"Noise_XX_Ed25519_ChaChaPoly_BLAKE2b",
            Pattern::IK => b"Noise_IK_Ed25519_ChaChaPoly_BLAKE2b",
        }
    }

    fn messages(self) -> &'static [&'static [Token]] {
        use Token::{Ee, Es, Se, Ss, E, S};
        match self {
            Pattern::XX => &[&[E], &[E, Ee, S, Es], &[S, Se]],
            Pattern::IK => &[&[E, Es, S, Ss], &[E, Ee, Se]],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    E,
    S,
    Ee,
    Es,
    Se,
    Ss,
}

/// Why a handshake step failed. Any of these ends the handshake: the state is poisoned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// The message is shorter than the pattern requires.
    #[error("handshake message too short")]
    MessageTooShort,
    /// A message (or the one to be written) exceeds 65535 bytes.
    #[error("handshake message longer than 65535 bytes")]
    MessageTooLong,
    /// Authentication failed: wrong keys, a corrupted message or a wrong prologue.
    #[error("handshake message failed to decrypt")]
    Decrypt,
    /// A public key the peer sent is not acceptable for Diffie-Hellman.
    #[error("invalid key in handshake: {0}")]
    Dh(#[from] DhError),
    /// `write_message` when a read was due, `read_message` when a write was due, or either
    /// after the end or after an error.
    #[error("handshake step out of turn")]
    OutOfTurn,
    /// An IK initiator needs the responder's static key.
    #[error("the IK initiator needs the remote static public key")]
    MissingRemoteStatic,
    /// The peer's static key is not the one expected.
    #[error("remote static key {got} is not the expected {expected}")]
    UnexpectedRemoteKey {
        /// The key the caller required.
        expected: PublicKey,
        /// The key the peer proved.
        got: PublicKey,
    },
}

/// What a finished handshake yields: the input of a secret stream (`{tx, rx, hash, publicKey,
/// remotePublicKey}` in the JS code). Keys are wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HandshakeResult {
    /// Whether this side initiated the handshake.
    #[zeroize(skip)]
    pub is_initiator: bool,
    /// This side's static public key.
    #[zeroize(skip)]
    pub public_key: PublicKey,
    /// The peer's static public key, proven by the handshake.
    #[zeroize(skip)]
    pub remote_public_key: PublicKey,
    /// The final handshake hash `h` (channel binding).
    pub hash: [u8; HASHLEN],
    /// Key for data this side sends.
    pub tx: [u8; 32],
    /// Key for data this side receives.
    pub rx: [u8; 32],
}

impl fmt::Debug for HandshakeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeResult")
            .field("is_initiator", &self.is_initiator)
            .field("public_key", &self.public_key)
            .field("remote_public_key", &self.remote_public_key)
            .finish_non_exhaustive()
    }
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct CipherState {
    key: Option<[u8; 32]>,
    nonce: u64,
}

impl CipherState {
    fn nonce12(&self) -> chacha20poly1305::Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&self.nonce.to_le_bytes());
        n.into()
    }

    fn encrypt(&mut self, ad: &[u8], buf: &mut Vec<u8>, start: usize) {
        let Some(key) = self.key else { return };
        let cipher = ChaCha20Poly1305::new(&key.into());
        let tag = cipher.encrypt_in_place_detached(&self.nonce12(), ad, &mut buf[start..]);
        // Encryption cannot fail for messages under 2^38 bytes.
        if let Ok(tag) = tag {
            buf.extend_from_slice(&tag);
        }
        self.nonce += 1;
    }

    fn decrypt(&mut self, ad: &[u8], ct: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let Some(key) = self.key else {
            return Ok(ct.to_vec());
        };
        if ct.len() < TAGLEN {
            return Err(NoiseError::MessageTooShort);
        }
        let (body, tag) = ct.split_at(ct.len() - TAGLEN);
        let mut out = body.to_vec();
        ChaCha20Poly1305::new(&key.into())
            .decrypt_in_place_detached(&self.nonce12(), ad, &mut out, tag.into())
            .map_err(|_| NoiseError::Decrypt)?;
        self.nonce += 1;
        Ok(out)
    }
}

type HmacBlake2b = SimpleHmac<Blake2b512>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; HASHLEN] {
    // HMAC accepts keys of any length.
    let mut mac = <HmacBlake2b as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Noise HKDF with two outputs (the JS `info` argument is always empty).
fn hkdf2(ck: &[u8; HASHLEN], ikm: &[u8]) -> ([u8; HASHLEN], [u8; HASHLEN]) {
    let mut prk = hmac(ck, &[ikm]);
    let o1 = hmac(&prk, &[&[1]]);
    let o2 = hmac(&prk, &[&o1, &[2]]);
    prk.zeroize();
    (o1, o2)
}

fn truncate32(x: &[u8; HASHLEN]) -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(&x[..32]);
    k
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct SymmetricState {
    ck: [u8; HASHLEN],
    h: [u8; HASHLEN],
    cipher: CipherState,
}

impl SymmetricState {
    fn new(name: &[u8]) -> Self {
        let mut h = [0u8; HASHLEN];
        h[..name.len()].copy_from_slice(name);
        Self {
            ck: h,
            h,
            cipher: CipherState {
                key: None,
                nonce: 0,
            },
        }
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.h = Blake2b512::new()
            .chain_update(self.h)
            .chain_update(data)
            .finalize()
            .into();
    }

    fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, mut k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.cipher = CipherState {
            key: Some(truncate32(&k)),
            nonce: 0,
        };
        k.zeroize();
    }

    /// Encrypts `buf[start..]` in place (appending the tag) and mixes the ciphertext.
    fn encrypt_and_hash(&mut self, buf: &mut Vec<u8>, start: usize) {
        let h = self.h;
        self.cipher.encrypt(&h, buf, start);
        self.mix_hash(&buf[start..]);
    }

    fn decrypt_and_hash(&mut self, ct: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let h = self.h;
        let pt = self.cipher.decrypt(&h, ct)?;
        self.mix_hash(ct);
        Ok(pt)
    }

    fn has_key(&self) -> bool {
        self.cipher.key.is_some()
    }

    fn split(&self) -> ([u8; 32], [u8; 32]) {
        let (mut a, mut b) = hkdf2(&self.ck, &[]);
        let out = (truncate32(&a), truncate32(&b));
        a.zeroize();
        b.zeroize();
        out
    }
}

/// A Noise handshake in progress.
pub struct Handshake {
    pattern: Pattern,
    is_initiator: bool,
    sym: SymmetricState,
    s: KeyPair,
    e: KeyPair,
    rs: Option<PublicKey>,
    re: Option<PublicKey>,
    expected_rs: Option<PublicKey>,
    step: usize,
    failed: bool,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("pattern", &self.pattern)
            .field("is_initiator", &self.is_initiator)
            .field("step", &self.step)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts a handshake with a fresh random ephemeral key pair.
    ///
    /// `remote_static` is required for an IK initiator (the server's key). For XX it is
    /// optional: when given, the handshake fails with [`NoiseError::UnexpectedRemoteKey`] if
    /// the peer proves another key (the JS secret stream does not check; we do when asked).
    pub fn new(
        pattern: Pattern,
        is_initiator: bool,
        static_key: KeyPair,
        prologue: &[u8],
        remote_static: Option<PublicKey>,
    ) -> Result<Self, NoiseError> {
        Self::with_ephemeral(
            pattern,
            is_initiator,
            static_key,
            KeyPair::generate(),
            prologue,
            remote_static,
        )
    }

    /// As [`Handshake::new`] with a chosen ephemeral key pair (known-answer tests).
    pub fn with_ephemeral(
        pattern: Pattern,
        is_initiator: bool,
        static_key: KeyPair,
        ephemeral: KeyPair,
        prologue: &[u8],
        remote_static: Option<PublicKey>,
    ) -> Result<Self, NoiseError> {
        let mut sym = SymmetricState::new(pattern.protocol_name());
        sym.mix_hash(prologue);
        let mut rs = None;
        match pattern {
            Pattern::IK if is_initiator => {
                let key = remote_static.ok_or(NoiseError::MissingRemoteStatic)?;
                sym.mix_hash(key.as_bytes());
                rs = Some(key);
            }
            Pattern::IK => sym.mix_hash(static_key.public_key().as_bytes()),
            Pattern::XX => {}
        }
        Ok(Self {
            pattern,
            is_initiator,
            sym,
            s: static_key,
            e: ephemeral,
            rs,
            re: None,
            expected_rs: remote_static,
            step: 0,
            failed: false,
        })
    }

    /// Whether this side initiates.
    pub fn is_initiator(&self) -> bool {
        self.is_initiator
    }

    /// Whether the next step is a write (as opposed to a read).
    pub fn is_my_turn(&self) -> bool {
        (self.step % 2 == 0) == self.is_initiator
    }

    /// Whether every message has been written or read.
    pub fn is_finished(&self) -> bool {
        !self.failed && self.step == self.pattern.messages().len()
    }

    /// The peer's static key once it is known.
    pub fn remote_static(&self) -> Option<&PublicKey> {
        self.rs.as_ref()
    }

    fn tokens(&self, writing: bool) -> Result<&'static [Token], NoiseError> {
        let msgs = self.pattern.messages();
        if self.failed || self.step >= msgs.len() || self.is_my_turn() != writing {
            return Err(NoiseError::OutOfTurn);
        }
        Ok(msgs[self.step])
    }

    fn dh_token(&self, t: Token) -> Result<[u8; 32], NoiseError> {
        let missing = NoiseError::OutOfTurn;
        let re = self.re.as_ref().ok_or(missing.clone());
        let rs = self.rs.as_ref().ok_or(missing);
        // es: initiator's e with responder's s; se: initiator's s with responder's e.
        let out = match (t, self.is_initiator) {
            (Token::Ee, _) => dh(&self.e, re?),
            (Token::Ss, _) => dh(&self.s, rs?),
            (Token::Es, true) | (Token::Se, false) => dh(&self.e, rs?),
            (Token::Es, false) | (Token::Se, true) => dh(&self.s, re?),
            (Token::E | Token::S, _) => unreachable!("not a DH token"),
        };
        Ok(out?)
    }

    /// Writes the next handshake message carrying `payload`.
    pub fn write_message(&mut self, payload: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let tokens = self.tokens(true)?;
        let result = self.write_inner(tokens, payload);
        self.failed = result.is_err();
        result
    }

    fn write_inner(&mut self, tokens: &[Token], payload: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let mut out = Vec::with_capacity(DHLEN * 2 + TAGLEN * 2 + payload.len());
        for &t in tokens {
            match t {
                Token::E => {
                    let e = *self.e.public_key().as_bytes();
                    out.extend_from_slice(&e);
                    self.sym.mix_hash(&e);
                }
                Token::S => {
                    let start = out.len();
                    out.extend_from_slice(self.s.public_key().as_bytes());
                    self.sym.encrypt_and_hash(&mut out, start);
                }
                _ => {
                    let mut shared = self.dh_token(t)?;
                    self.sym.mix_key(&shared);
                    shared.zeroize();
                }
            }
        }
        let start = out.len();
        out.extend_from_slice(payload);
        self.sym.encrypt_and_hash(&mut out, start);
        if out.len() > MAX_MESSAGE_LEN {
            return Err(NoiseError::MessageTooLong);
        }
        self.step += 1;
        Ok(out)
    }

    /// Reads the peer's next handshake message and returns its payload.
    pub fn read_message(&mut self, message: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let tokens = self.tokens(false)?;
        let result = self.read_inner(tokens, message);
        self.failed = result.is_err();
        result
    }

    fn read_inner(&mut self, tokens: &[Token], message: &[u8]) -> Result<Vec<u8>, NoiseError> {
        if message.len() > MAX_MESSAGE_LEN {
            return Err(NoiseError::MessageTooLong);
        }
        let mut rest = message;
        let mut take = |n: usize| -> Result<&[u8], NoiseError> {
            if rest.len() < n {
                return Err(NoiseError::MessageTooShort);
            }
            let (a, b) = rest.split_at(n);
            rest = b;
            Ok(a)
        };
        for &t in tokens {
            match t {
                Token::E => {
                    let e: [u8; 32] = take(DHLEN)?.try_into().unwrap_or_else(|_| unreachable!());
                    self.sym.mix_hash(&e);
                    self.re = Some(PublicKey(e));
                }
                Token::S => {
                    let n = DHLEN + if self.sym.has_key() { TAGLEN } else { 0 };
                    let ct = take(n)?;
                    let pt = self.sym.decrypt_and_hash(ct)?;
                    let key = PublicKey(pt.try_into().unwrap_or_else(|_| unreachable!()));
                    if let Some(expected) = self.expected_rs {
                        if expected != key {
                            return Err(NoiseError::UnexpectedRemoteKey { expected, got: key });
                        }
                    }
                    self.rs = Some(key);
                }
                _ => {
                    let mut shared = self.dh_token(t)?;
                    self.sym.mix_key(&shared);
                    shared.zeroize();
                }
            }
        }
        let payload = self.sym.decrypt_and_hash(rest)?;
        self.step += 1;
        Ok(payload)
    }

    /// The handshake hash so far (final once the handshake is finished).
    pub fn hash(&self) -> &[u8; HASHLEN] {
        &self.sym.h
    }

    /// Splits a finished handshake into the transport keys.
    pub fn finish(&self) -> Result<HandshakeResult, NoiseError> {
        if !self.is_finished() {
            return Err(NoiseError::OutOfTurn);
        }
        let remote_public_key = self.rs.ok_or(NoiseError::OutOfTurn)?;
        let (k1, k2) = self.sym.split();
        let (tx, rx) = if self.is_initiator {
            (k1, k2)
        } else {
            (k2, k1)
        };
        Ok(HandshakeResult {
            is_initiator: self.is_initiator,
            public_key: *self.s.public_key(),
            remote_public_key,
            hash: self.sym.h,
            tx,
            rx,
        })
    }
}

#[cfg(test)]
mod tests;
