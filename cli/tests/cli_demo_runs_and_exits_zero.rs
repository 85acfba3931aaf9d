//! `p2pswarm demo` starts its own loopback testnet and swarms, prints a timeline and a summary
//! with one connection per pair, and exits 0 within seconds.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_exits_zero_with_a_summary() {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_p2pswarm"))
        .args(["demo", "--peers", "5"])
        .output()
        .expect("run demo");
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("summary: 5 peers, 10 connections (one per pair), 20 messages"),
        "{text}"
    );
    assert!(t0.elapsed() < Duration::from_secs(60));
}
