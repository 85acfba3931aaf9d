//! NAT lab matrix (tests/nat/lab.sh; needs root for network namespaces, prints SKIPPED
//! otherwise): every (client NAT x server NAT) cell for JS<->JS (the bar), Rust<->Rust, Rust
//! client -> JS server and JS client -> Rust server, one run per cell, printing a table of
//! direct / punched / failed:CODE and ms to open per pairing.
//!
//! * `matrix_with_dropping_routers` (default): routers drop unsolicited inbound traffic. Every
//!   Rust pairing must connect wherever JS<->JS connects, and random x random must fail for all.
//! * `matrix_with_accepting_routers` (`#[ignore]`, ~5-10 min: many cells wait out 10-35 s
//!   timeouts): routers accept unsolicited inbound (the conntrack pitfall of nat-lab.md);
//!   printed, and Rust pairings must connect wherever JS<->JS does.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use common::nat::{run_cell, run_peer, CellResult, Impl, PEER_ENV};

const TYPES: [&str; 5] = ["open", "consistent", "random", "double", "firewalled"];

#[test]
fn nat_peer() {
    if let Ok(args) = std::env::var(PEER_ENV) {
        run_peer(&args);
    }
}

fn ok(r: &CellResult) -> bool {
    r.outcome == "direct" || r.outcome == "punched"
}

fn matrix(router: &str) {
    if std::env::var_os(PEER_ENV).is_some() {
        return;
    }
    common::require_js();
    let pairs = [
        ("JS client -> JS server", Impl::Js, Impl::Js),
        ("Rust client -> Rust server", Impl::Rust, Impl::Rust),
        ("Rust client -> JS server", Impl::Rust, Impl::Js),
        ("JS client -> Rust server", Impl::Js, Impl::Rust),
    ];
    let mut tables = Vec::new();
    for (name, c, s) in pairs {
        let mut rows = Vec::new();
        for cn in TYPES {
            let mut row = Vec::new();
            for sn in TYPES {
                let Some(r) = run_cell(c, s, cn, sn, router, 65536) else {
                    return; // SKIPPED
                };
                eprintln!("[{router}] {name} {cn} -> {sn}: {}", r.line);
                row.push(r);
            }
            rows.push(row);
        }
        tables.push((name, rows));
    }
    for (name, rows) in &tables {
        println!("\n{name}, routers: {router}\n");
        println!("| client \\ server | {} |", TYPES.join(" | "));
        println!("|---|{}", "---|".repeat(TYPES.len()));
        for (cn, row) in TYPES.iter().zip(rows) {
            let cells: Vec<String> = row
                .iter()
                .map(|r| {
                    if ok(r) {
                        format!("{} {}ms", r.outcome, r.ms)
                    } else {
                        r.outcome.clone()
                    }
                })
                .collect();
            println!("| {cn} | {} |", cells.join(" | "));
        }
    }
    let bar = &tables[0].1;
    let mut failures = Vec::new();
    for (name, rows) in &tables[1..] {
        for (i, cn) in TYPES.iter().enumerate() {
            for (j, sn) in TYPES.iter().enumerate() {
                if ok(&bar[i][j]) && !ok(&rows[i][j]) {
                    failures.push(format!("{name} {cn} -> {sn}: {}", rows[i][j].line));
                }
                if router == "drop" && *cn == "random" && *sn == "random" && ok(&rows[i][j]) {
                    failures.push(format!("{name} random x random connected?"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "cells below the JS<->JS bar:\n{}",
        failures.join("\n")
    );
}

#[test]
fn matrix_with_dropping_routers() {
    matrix("drop");
}

#[test]
#[ignore = "slow (~5-10 min): many cells wait out hole-punch timeouts"]
fn matrix_with_accepting_routers() {
    matrix("accept");
}
