//! Round-trip tokens (spec `dht-rpc.md` §7): proof that a writer owns its source IP.
//!
//! A node keeps two 32-byte secrets, `S0` (previous) and `S1` (current). The token for a host is
//! `BLAKE2b-256(key = S1, msg = ASCII dotted-quad host)`; the port is not part of it. A token is
//! accepted if it matches under `S1` or `S0`. Every [`ROTATE_INTERVAL`] the owner calls
//! [`Tokens::rotate`]: `S0 ← old S1`, `S1 ← H256(old S0)`, so a token stays valid for 7.5–15 s.
//!
//! Timing is the caller's business (dht-rpc rotates on every 10th run of its 750 ms drain timer,
//! and only once the secrets exist, i.e. after the first token was needed).

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{blake2b256, blake2b256_keyed, random_array};

/// Time between two rotations in dht-rpc (10 runs of its 750 ms drain timer).
pub const ROTATE_INTERVAL: Duration = Duration::from_millis(7500);

/// The two token secrets of a node. Wiped on drop; `Debug` does not print them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Tokens {
    /// `S0`, the previous secret.
    previous: [u8; 32],
    /// `S1`, the current secret.
    current: [u8; 32],
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

impl Tokens {
    /// Secrets derived from 32 bytes of injected randomness: `S0` and `S1` are BLAKE2b-256 of
    /// the one-byte messages `0` and `1` keyed with `initial`, so they are independent of each
    /// other and of the rotation chain.
    pub fn new(initial: [u8; 32]) -> Self {
        let mut initial = initial;
        let t = Self {
            previous: blake2b256_keyed(&initial, &[0]),
            current: blake2b256_keyed(&initial, &[1]),
        };
        initial.zeroize();
        t
    }

    /// Fresh secrets from the operating system's random source (what dht-rpc does lazily).
    pub fn random() -> Self {
        Self::from_secrets(random_array(), random_array())
    }

    /// Exactly these secrets: `previous` = `S0`, `current` = `S1` (dht-rpc's `_secrets[0]` and
    /// `_secrets[1]`).
    pub fn from_secrets(previous: [u8; 32], current: [u8; 32]) -> Self {
        Self { previous, current }
    }

    /// The token for `host` under the current secret, as put in replies.
    pub fn token(&self, host: Ipv4Addr) -> [u8; 32] {
        token_for(&self.current, host)
    }

    /// The token for `host` under the previous secret.
    pub fn previous_token(&self, host: Ipv4Addr) -> [u8; 32] {
        token_for(&self.previous, host)
    }

    /// Whether a request from `host` carrying `token` is authorised: it matches under `S1` or
    /// `S0`. Compared in constant time.
    pub fn verify(&self, host: Ipv4Addr, token: &[u8; 32]) -> bool {
        let current = self.token(host).ct_eq(token);
        let previous = self.previous_token(host).ct_eq(token);
        (current | previous).into()
    }

    /// Rotates: `S0 ← old S1`, `S1 ← H256(old S0)`. Tokens issued before the previous rotation
    /// stop verifying.
    pub fn rotate(&mut self) {
        let hashed = blake2b256(&self.previous);
        self.previous = self.current;
        self.current = hashed;
    }
}

/// `BLAKE2b-256(key = secret, msg = "a.b.c.d")`.
fn token_for(secret: &[u8; 32], host: Ipv4Addr) -> [u8; 32] {
    blake2b256_keyed(secret, host.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Ipv4Addr = Ipv4Addr::new(1, 2, 3, 4);

    #[test]
    fn spec_token_vector() {
        let t = Tokens::from_secrets([0; 32], [0x09; 32]);
        assert_eq!(
            hex::encode(t.token(HOST)),
            "0f60e741d9d100fb66950cabc241648838ee78adb600938eb8c4d1691d99a47a"
        );
        // Under S0 the same host gets a different token.
        let t = Tokens::from_secrets([0x09; 32], [0; 32]);
        assert_eq!(
            hex::encode(t.previous_token(HOST)),
            "0f60e741d9d100fb66950cabc241648838ee78adb600938eb8c4d1691d99a47a"
        );
        assert_ne!(t.token(HOST), t.previous_token(HOST));
    }

    #[test]
    fn spec_rotation_vector() {
        let mut t = Tokens::from_secrets([0x09; 32], [0x01; 32]);
        t.rotate();
        assert_eq!(t.previous, [0x01; 32]);
        assert_eq!(
            hex::encode(t.current),
            "25d80d45a11b372d5a2357f996ed048e2614ab8a40662b89912a83779d582c85"
        );
        assert_eq!(t.current, blake2b256(&[0x09; 32]));
    }

    #[test]
    fn tokens_survive_one_rotation_not_two() {
        let mut t = Tokens::new([7; 32]);
        let issued = t.token(HOST);
        assert!(t.verify(HOST, &issued));
        assert!(!t.verify(Ipv4Addr::new(1, 2, 3, 5), &issued));
        t.rotate();
        assert!(t.verify(HOST, &issued), "valid under S0 after one rotation");
        assert_ne!(t.token(HOST), issued);
        t.rotate();
        assert!(!t.verify(HOST, &issued), "expired after two rotations");
        assert!(!t.verify(HOST, &[0; 32]));
    }

    #[test]
    fn construction() {
        let a = Tokens::new([1; 32]);
        let b = Tokens::new([1; 32]);
        assert_eq!(a.token(HOST), b.token(HOST));
        assert_ne!(a.previous, a.current);
        assert_ne!(Tokens::new([2; 32]).token(HOST), a.token(HOST));
        let r = Tokens::random();
        assert_ne!(r.token(HOST), Tokens::random().token(HOST));
        assert_eq!(format!("{r:?}"), "Tokens { .. }");
        // Dotted-quad text, no leading zeros, port irrelevant by construction.
        let t = Tokens::from_secrets([0; 32], [3; 32]);
        assert_eq!(
            t.token(Ipv4Addr::new(10, 0, 0, 1)),
            blake2b256_keyed(&[3; 32], b"10.0.0.1")
        );
    }
}
