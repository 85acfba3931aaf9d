//! Keys, hashes, namespaces and signatures exactly as libsodium computes them for the JS stack
//! (spec: `hyperdht.md` §1, `secret-stream.md` §2–§3, §11).
//!
//! * Key pairs are Ed25519 in libsodium layout: 32-byte public key, 64-byte secret key
//!   `seed || public key`; [`KeyPair::from_seed`] equals `crypto_sign_seed_keypair`.
//! * [`blake2b256`] and [`blake2b512`] are libsodium's `crypto_generichash` with 32/64-byte
//!   outputs (a 32-byte BLAKE2b is *not* a truncated BLAKE2b-512); [`blake2b256_keyed`] uses
//!   BLAKE2b's own keyed mode, not HMAC.
//! * [`verify`] is as strict as `crypto_sign_verify_detached`: canonical `S`, `R` not of small
//!   order, public key canonical and not of small order, cofactorless equation, `R` compared
//!   byte for byte.
//! * [`dh`] is noise-curve-ed's Diffie-Hellman: Edwards scalar multiplication with the
//!   Ed25519 secret scalar, output as a compressed Edwards point, with libsodium's checks.

use std::fmt;

use blake2::digest::consts::{U32, U64};
use blake2::digest::{Digest, FixedOutput, Mac};
use blake2::{Blake2b, Blake2bMac};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes in a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Bytes in a libsodium secret key (`seed || public key`).
pub const SECRET_KEY_LEN: usize = 64;
/// Bytes in a detached signature.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 public key (a compressed Edwards point), as used for peer identity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// Lowercase hex, as the JS stack prints keys.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl From<[u8; 32]> for PublicKey {
    fn from(b: [u8; 32]) -> Self {
        Self(b)
    }
}

impl AsRef<[u8]> for PublicKey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// An Ed25519 key pair in libsodium layout. The secret half is wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyPair {
    #[zeroize(skip)]
    public_key: PublicKey,
    secret_key: [u8; SECRET_KEY_LEN],
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl PartialEq for KeyPair {
    fn eq(&self, other: &Self) -> bool {
        self.secret_key.ct_eq(&other.secret_key).into()
    }
}
impl Eq for KeyPair {}

/// A key pair whose secret key does not match its public key, or an invalid secret key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret key does not belong to the public key")]
pub struct InvalidKeyPair;

impl KeyPair {
    /// `crypto_sign_seed_keypair(seed)`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let public = ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .to_bytes();
        let mut secret_key = [0u8; SECRET_KEY_LEN];
        secret_key[..32].copy_from_slice(seed);
        secret_key[32..].copy_from_slice(&public);
        Self {
            public_key: PublicKey(public),
            secret_key,
        }
    }

    /// A fresh key pair from the operating system's random source (`crypto_sign_keypair`).
    pub fn generate() -> Self {
        let mut seed = random_array::<32>();
        let kp = Self::from_seed(&seed);
        seed.zeroize();
        kp
    }

    /// A key pair from a 64-byte libsodium secret key; checks that its two halves agree.
    pub fn from_secret_key(secret_key: &[u8; SECRET_KEY_LEN]) -> Result<Self, InvalidKeyPair> {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&secret_key[..32]);
        let kp = Self::from_seed(&seed);
        seed.zeroize();
        if kp.public_key.0[..] == secret_key[32..] {
            Ok(kp)
        } else {
            Err(InvalidKeyPair)
        }
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The 64-byte libsodium secret key (`seed || public key`).
    pub fn secret_key(&self) -> &[u8; SECRET_KEY_LEN] {
        &self.secret_key
    }

    /// The 32-byte seed (first half of the secret key).
    pub fn seed(&self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&self.secret_key[..32]);
        seed
    }

    /// `crypto_sign_detached(message, secret_key)`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        use ed25519_dalek::Signer;
        ed25519_dalek::SigningKey::from_bytes(&self.seed())
            .sign(message)
            .to_bytes()
    }

    /// The Ed25519 secret scalar: `clamp(SHA-512(seed)[0..32])`.
    fn scalar_bytes(&self) -> [u8; 32] {
        let h = Sha512::digest(&self.secret_key[..32]);
        let mut s = [0u8; 32];
        s.copy_from_slice(&h[..32]);
        s[0] &= 0xf8;
        s[31] &= 0x7f;
        s[31] |= 0x40;
        s
    }
}

/// Decompresses a point, requiring the canonical encoding.
fn decompress_canonical(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let p = CompressedEdwardsY(*bytes).decompress()?;
    (p.compress().as_bytes() == bytes).then_some(p)
}

/// `crypto_sign_verify_detached(signature, message, public_key)`, with libsodium's strictness.
pub fn verify(public_key: &PublicKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&signature[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);

    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    // A small-order R is refused even when it decodes; a non-canonical R cannot match below.
    if CompressedEdwardsY(r_bytes)
        .decompress()
        .is_some_and(|r| r.is_small_order())
    {
        return false;
    }
    let Some(a) = decompress_canonical(&public_key.0) else {
        return false;
    };
    if a.is_small_order() {
        return false;
    }
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(r_bytes)
            .chain_update(public_key.0)
            .chain_update(message),
    );
    let r_check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s).compress();
    r_check.as_bytes().ct_eq(&r_bytes).into()
}

/// Why a Diffie-Hellman over Ed25519 points failed (libsodium would throw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DhError {
    /// The remote key is not a canonical encoding of a curve point.
    #[error("remote public key is not a valid curve point")]
    InvalidPoint,
    /// The remote key has small order or lies outside the prime-order subgroup.
    #[error("remote public key has small order or a torsion component")]
    WeakPoint,
    /// The shared point is the identity.
    #[error("shared secret is the identity point")]
    Identity,
}

/// noise-curve-ed `dh(local, remote)`: `crypto_scalarmult_ed25519_noclamp` with the clamped
/// Ed25519 secret scalar of `local`; the result is a compressed Edwards point.
pub fn dh(local: &KeyPair, remote: &PublicKey) -> Result<[u8; 32], DhError> {
    let p = decompress_canonical(&remote.0).ok_or(DhError::InvalidPoint)?;
    if p.is_small_order() || !p.is_torsion_free() {
        return Err(DhError::WeakPoint);
    }
    let mut scalar = local.scalar_bytes();
    let q = p.mul_clamped(scalar);
    scalar.zeroize();
    if q == EdwardsPoint::default() {
        return Err(DhError::Identity);
    }
    Ok(q.compress().to_bytes())
}

/// Unkeyed BLAKE2b with a 32-byte output over the concatenation of `parts`.
pub fn blake2b256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Blake2b::<U32>::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Unkeyed BLAKE2b-256 (`crypto_generichash`, 32-byte output).
pub fn blake2b256(data: &[u8]) -> [u8; 32] {
    blake2b256_parts(&[data])
}

/// Unkeyed BLAKE2b-512.
pub fn blake2b512(data: &[u8]) -> [u8; 64] {
    Blake2b::<U64>::digest(data).into()
}

/// Keyed BLAKE2b-256 over the concatenation of `parts` (BLAKE2b's keyed mode).
///
/// # Panics
/// Never for keys of 1 to 64 bytes; callers pass fixed 32- or 64-byte keys. An empty or
/// longer key is a programming error, caught by a debug assertion and hashed unkeyed-safe.
pub fn blake2b256_keyed_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    debug_assert!(
        (1..=64).contains(&key.len()),
        "BLAKE2b key must be 1..=64 bytes"
    );
    let key = if key.len() > 64 { &key[..64] } else { key };
    let Ok(mut mac) = Blake2bMac::<U32>::new_from_slice(key) else {
        // Only reachable for an empty key: libsodium then hashes unkeyed.
        return blake2b256_parts(parts);
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize_fixed().into()
}

/// Keyed BLAKE2b-256 (`crypto_generichash(out32, data, key)`).
pub fn blake2b256_keyed(key: &[u8], data: &[u8]) -> [u8; 32] {
    blake2b256_keyed_parts(key, &[data])
}

/// hypercore-crypto `namespace(name, count)`: `ns = H256(name)`, item i = `H256(ns || byte(i))`.
pub fn namespace(name: &str, count: u8) -> Vec<[u8; 32]> {
    let ns = blake2b256(name.as_bytes());
    (0..count).map(|i| blake2b256_parts(&[&ns, &[i]])).collect()
}

/// The hyperswarm namespaces, precomputed (checked against [`namespace`] in the tests).
pub mod ns {
    macro_rules! hex32 {
        ($s:literal) => {
            $crate::crypto::parse_hex32($s)
        };
    }
    /// `namespace("hyperswarm/dht")[0]`: the IK prologue.
    pub const PEER_HANDSHAKE: [u8; 32] =
        hex32!("14d6d4b49214ab1033ed204976caa258bae9e1e8543b9ad1fd996a910b0c4e3a");
    /// `namespace("hyperswarm/dht")[1]`.
    pub const PEER_HOLEPUNCH: [u8; 32] =
        hex32!("f1191cd5e67b10b54a507033280ed1ff0e12278268d5679c8f93d417210d168b");
    /// `namespace("hyperswarm/dht")[4]`.
    pub const ANNOUNCE: [u8; 32] =
        hex32!("36386adddf9f6fd60db83a6f42fc159d1146aa8644037664230aaa1f0179d497");
    /// `namespace("hyperswarm/dht")[5]`.
    pub const UNANNOUNCE: [u8; 32] =
        hex32!("ded293cd93fb395e756ecf5fff426529e72c36eacc22e5ed944d9099a2561e32");
    /// `namespace("hyperswarm/dht")[6]`.
    pub const MUTABLE_PUT: [u8; 32] =
        hex32!("668e823edd5ce7f5338d68bf1161f4a3c28ce437ee2ab49efd30d99366039b1e");
    /// `namespace("hyperswarm/dht")[10]`.
    pub const PLUGIN: [u8; 32] =
        hex32!("6b8a2a8623f28c6c02a1e22abe515ce31cafd9af61d4b69970639aa7eb96a8d5");
    /// `namespace("hyperswarm/secret-stream")[0]`.
    pub const SECRET_STREAM_INITIATOR: [u8; 32] =
        hex32!("a931a0155b5c09e6d28628236af83c4b8a6af9af60986edeede9dc5d63192bf7");
    /// `namespace("hyperswarm/secret-stream")[1]`.
    pub const SECRET_STREAM_RESPONDER: [u8; 32] =
        hex32!("742c9d833d430af4c48a8705e91631eecf295442bbca18996e597097723b1061");
    /// `namespace("hyperswarm/secret-stream")[2]`.
    pub const SECRET_STREAM_SEND: [u8; 32] =
        hex32!("aab97d097471f56651b0460ffc8aaa7d3342f7377597d60b925a1dac689adcbf");
}

/// Parses 64 hex digits at compile time (for constants).
#[doc(hidden)]
#[allow(clippy::panic)]
pub const fn parse_hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 64, "expected 64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `N` bytes from the operating system's random source.
///
/// # Panics
/// If the operating system has no random source, which leaves no safe way to make keys.
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut out).expect("the operating system random source failed");
    out
}

#[cfg(test)]
mod tests;
