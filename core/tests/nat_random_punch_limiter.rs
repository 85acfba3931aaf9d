//! NAT lab (tests/nat/lab.sh + tests/nat/limiter.sh; needs root, prints SKIPPED otherwise): the
//! node-wide random-punch limiter (1 at a time, 20 s apart). A server behind a randomizing NAT
//! takes three clients (fresh processes behind one consistent NAT): A punches; B, right after,
//! is refused by the server's limiter (TRY_LATER; without a blind relay the client aborts
//! quickly); C, 21 s later, punches again. For JS<->JS (the reference), Rust<->Rust, Rust
//! clients -> JS server and JS clients -> Rust server.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use common::nat::{run_lab_script, run_peer, Impl, PEER_ENV};

#[test]
fn nat_peer() {
    if let Ok(args) = std::env::var(PEER_ENV) {
        run_peer(&args);
    }
}

#[test]
fn second_random_punch_within_20s_is_refused_third_after_succeeds() {
    if std::env::var_os(PEER_ENV).is_some() {
        return;
    }
    common::require_js();
    for (c, s) in [
        (Impl::Js, Impl::Js),
        (Impl::Rust, Impl::Rust),
        (Impl::Rust, Impl::Js),
        (Impl::Js, Impl::Rust),
    ] {
        let Some(out) = run_lab_script(c, s, "consistent", "random", "drop", "limiter.sh") else {
            return;
        };
        println!("{c:?} clients -> {s:?} server:\n{out}");
        let line = |name: &str| {
            out.lines()
                .find(|l| l.starts_with(&format!("RESULT {name} ")))
                .unwrap_or_else(|| panic!("no result for {name}: {out}"))
                .to_owned()
        };
        let (a, b, cc) = (line("A"), line("B"), line("C"));
        assert!(a.starts_with("RESULT A punched"), "{c:?}->{s:?} A: {a}");
        let b_ms: u64 = b
            .split_whitespace()
            .nth(3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX);
        assert!(
            b.starts_with("RESULT B failed:REMOTE_ABORTED")
                || b.starts_with("RESULT B failed:HOLEPUNCH_ABORTED"),
            "{c:?}->{s:?} B refused: {b}"
        );
        assert!(b_ms < 5_000, "{c:?}->{s:?} B refused quickly: {b}");
        assert!(cc.starts_with("RESULT C punched"), "{c:?}->{s:?} C: {cc}");
    }
}
