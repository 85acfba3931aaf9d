//! NAT lab (tests/nat/lab.sh; needs root, prints SKIPPED otherwise): client and server are two
//! hosts on one LAN behind the same consistent NAT (no hairpinning). The handshake goes through
//! the public DHT; both sides see the same public IP, so the client uses the LAN shortcut: it
//! PINGs the server's shared local address and connects there directly. Checked for JS<->JS
//! (the reference), Rust<->Rust, Rust client -> JS server and JS client -> Rust server.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use common::nat::{run_cell, run_peer, Impl, PEER_ENV};

#[test]
fn nat_peer() {
    if let Ok(args) = std::env::var(PEER_ENV) {
        run_peer(&args);
    }
}

#[test]
fn peers_behind_one_nat_connect_over_the_lan() {
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
        let Some(r) = run_cell(c, s, "consistent", "same", "drop", 1 << 20) else {
            return;
        };
        println!("{c:?} -> {s:?}: {}", r.line);
        assert_eq!(r.outcome, "direct", "{c:?} -> {s:?}: {}", r.line);
        assert!(
            r.line.contains("remote=192.168.1.3:"),
            "{c:?} -> {s:?} uses the LAN address: {}",
            r.line
        );
        assert!(r.line.contains("done received=1048576"), "{}", r.line);
    }
}
