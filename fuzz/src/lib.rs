//! Helpers shared by the p2pswarm fuzz targets: a byte cursor that never fails (it yields
//! zeros once the input runs out) and fixed key material, so every run is deterministic.

use std::sync::OnceLock;

use p2pswarm::crypto::KeyPair;
use p2pswarm::noise::{Handshake, HandshakeResult, Pattern};

/// Reads fuzz input front to back. Reads past the end return zeros / empty slices, so a
/// target can always finish its setup and libFuzzer's shrinking keeps working.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes (fewer if the input ends).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }

    /// Exactly `N` bytes, zero-padded if the input ends.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let got = self.bytes(N);
        out[..got.len()].copy_from_slice(got);
        out
    }

    /// A chunk whose length is given by one leading byte.
    pub fn chunk8(&mut self) -> &'a [u8] {
        let n = self.byte() as usize;
        self.bytes(n)
    }

    /// A chunk whose length is given by two leading bytes (little-endian).
    pub fn chunk16(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.bytes(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Splits `data` into consecutive chunks whose sizes cycle through `sizes` (a size of 0 means
/// "one byte"), so the same stream can be delivered byte by byte or in large reads.
pub fn split_by<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let want = if sizes.is_empty() {
            rest.len()
        } else {
            (sizes[i % sizes.len()] as usize).max(1)
        };
        let (a, b) = rest.split_at(want.min(rest.len()));
        out.push(a);
        rest = b;
        i += 1;
    }
    out
}

/// Deterministic key pair number `n` (seed = `[n; 32]`), computed once per process.
pub fn key_pair(n: u8) -> KeyPair {
    static CACHE: [OnceLock<KeyPair>; 256] = [const { OnceLock::new() }; 256];
    CACHE[n as usize]
        .get_or_init(|| KeyPair::from_seed(&[n; 32]))
        .clone()
}

/// Static keys of the fixed initiator and responder.
pub const INITIATOR_SEED: u8 = 0x11;
pub const RESPONDER_SEED: u8 = 0x22;
/// Ephemeral keys of the fixed initiator and responder.
pub const INITIATOR_EPHEMERAL_SEED: u8 = 0x33;
pub const RESPONDER_EPHEMERAL_SEED: u8 = 0x44;

/// [`premade_ik`] with an empty prologue, computed once per process.
pub fn premade_ik_cached() -> (HandshakeResult, HandshakeResult) {
    static CACHE: OnceLock<(HandshakeResult, HandshakeResult)> = OnceLock::new();
    CACHE.get_or_init(|| premade_ik(&[])).clone()
}

/// Runs a complete IK handshake (`prologue`, empty payloads) between the fixed key pairs and
/// returns `(initiator_result, responder_result)`. Panics only if the library is broken, which
/// is then a finding.
pub fn premade_ik(prologue: &[u8]) -> (HandshakeResult, HandshakeResult) {
    let responder_static = key_pair(RESPONDER_SEED);
    let mut i = Handshake::with_ephemeral(
        Pattern::IK,
        true,
        key_pair(INITIATOR_SEED),
        key_pair(INITIATOR_EPHEMERAL_SEED),
        prologue,
        Some(*responder_static.public_key()),
    )
    .expect("IK initiator setup");
    let mut r = Handshake::with_ephemeral(
        Pattern::IK,
        false,
        responder_static,
        key_pair(RESPONDER_EPHEMERAL_SEED),
        prologue,
        None,
    )
    .expect("IK responder setup");
    let m1 = i.write_message(&[]).expect("IK msg1 write");
    r.read_message(&m1).expect("IK msg1 read");
    let m2 = r.write_message(&[]).expect("IK msg2 write");
    i.read_message(&m2).expect("IK msg2 read");
    (
        i.finish().expect("IK initiator finish"),
        r.finish().expect("IK responder finish"),
    )
}
