//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

/// The folder holding the pinned JS reference stack.
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/js")
}

/// Fails with a clear message when the JS packages are not installed.
pub fn require_js() -> PathBuf {
    let dir = js_dir();
    assert!(
        dir.join("node_modules/@hyperswarm/secret-stream").is_dir(),
        "the JS reference stack is not installed: run `npm ci` in {} (the README's test command, \
         .ci/run, does this)",
        dir.display()
    );
    dir
}

/// Runs a JS script of the interop folder and returns its stdout.
pub fn node_output(script: &str, args: &[&str]) -> String {
    let dir = require_js();
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "node {script} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 stdout")
}

/// The deterministic test-data generator shared with `ss-peer.js` (xorshift32, one byte per step).
#[derive(Debug, Clone)]
pub struct Xorshift(u32);

/// Seed of the initiator's outgoing bytes.
pub const INITIATOR_SEED: u32 = 0x9E37_79B9;
/// Seed of the responder's outgoing bytes.
pub const RESPONDER_SEED: u32 = 0x7F4A_7C15;
/// Write sizes `ss-peer.js` cycles through.
pub const WRITE_SIZES: [usize; 6] = [1, 1000, 65536, 7, 300_000, 16384];

impl Xorshift {
    pub fn new(seed: u32) -> Self {
        Self(seed)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            let mut s = self.0;
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            self.0 = s;
            *b = s as u8;
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

pub fn hex32(s: &str) -> [u8; 32] {
    hex(s).try_into().expect("32 bytes")
}

pub fn hex64(s: &str) -> [u8; 64] {
    hex(s).try_into().expect("64 bytes")
}
pub mod dht_sim;
pub mod nat;
pub mod net;
pub mod netns;
pub mod relay_interop;
pub mod swarm_sim;
pub mod udx_sim;
