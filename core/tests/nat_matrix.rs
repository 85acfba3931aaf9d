//! NAT lab matrix (tests/nat/lab.sh; needs root for network namespaces, prints SKIPPED
//! otherwise): (client NAT x server NAT) cells for JS<->JS (the bar), Rust<->Rust, Rust client ->
//! JS server and JS client -> Rust server, printing per pairing a table of the main outcome
//! (direct / punched / failed:CODE), successes/runs and the median ms to open over the
//! successful runs. The lab has `NAT_MATRIX_TRANSIT` (default 1) forwarding routers between each
//! site and the public segment, so the far NAT is 4 router hops from a host behind one NAT: a
//! TTL-limited probe can open its own NAT without reaching the far router, and hyperdht's TTL 5
//! still reaches it (see docs/nat-matrix.md).
//!
//! Runs per cell: `NAT_MATRIX_RUNS` (default 1), and for cells with a `random` side
//! `NAT_MATRIX_RANDOM_RUNS` (default: the same); the numbers in docs/nat-matrix.md used 3 and 10.
//!
//! * `matrix_with_dropping_routers` (default, ~5-8 min): routers drop unsolicited inbound.
//! * `accepting_routers_two_nat_cells` (default, ~2 min): routers accept unsolicited inbound
//!   (the conntrack pitfall), the cells where both sides are behind consistent NATs.
//! * `matrix_with_accepting_routers` (`#[ignore]`, ~15 min with 1 run per cell): all cells.
//!
//! Every check: each Rust pairing connects in every cell where JS<->JS connected; random x random
//! fails for all with dropping routers; with accepting routers Rust<->Rust and Rust client -> JS
//! server connect consistent x consistent (where the JS packet sequence fails).

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use common::nat::{run_cell_in, run_peer, CellResult, Impl, PEER_ENV};

const TYPES: [&str; 5] = ["open", "consistent", "random", "double", "firewalled"];

const PAIRS: [(&str, Impl, Impl); 4] = [
    ("JS client -> JS server", Impl::Js, Impl::Js),
    ("Rust client -> Rust server", Impl::Rust, Impl::Rust),
    ("Rust client -> JS server", Impl::Rust, Impl::Js),
    ("JS client -> Rust server", Impl::Js, Impl::Rust),
];

#[test]
fn nat_peer() {
    if let Ok(args) = std::env::var(PEER_ENV) {
        run_peer(&args);
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ok(r: &CellResult) -> bool {
    r.outcome == "direct" || r.outcome == "punched"
}

/// The runs of one cell.
struct Cell {
    runs: Vec<CellResult>,
}

impl Cell {
    fn successes(&self) -> usize {
        self.runs.iter().filter(|r| ok(r)).count()
    }

    fn median_ms(&self) -> Option<u64> {
        let mut t: Vec<u64> = self.runs.iter().filter(|r| ok(r)).map(|r| r.ms).collect();
        t.sort_unstable();
        match t.len() {
            0 => None,
            n if n % 2 == 1 => Some(t[n / 2]),
            n => Some(u64::midpoint(t[n / 2 - 1], t[n / 2])),
        }
    }

    /// The most common outcome among the successful runs, else among all.
    fn outcome(&self) -> String {
        let pool: Vec<&CellResult> = if self.successes() > 0 {
            self.runs.iter().filter(|r| ok(r)).collect()
        } else {
            self.runs.iter().collect()
        };
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for r in pool {
            match counts.iter_mut().find(|(o, _)| *o == r.outcome) {
                Some((_, n)) => *n += 1,
                None => counts.push((&r.outcome, 1)),
            }
        }
        counts
            .iter()
            .max_by_key(|(_, n)| *n)
            .map_or_else(|| "-".to_owned(), |(o, _)| (*o).to_owned())
    }

    fn render(&self) -> String {
        let median = self
            .median_ms()
            .map_or_else(String::new, |m| format!(" {m}ms"));
        format!(
            "{} {}/{}{median}",
            self.outcome(),
            self.successes(),
            self.runs.len()
        )
    }
}

/// One pairing's cells, indexed like `cells`.
type Table = Vec<Cell>;

/// Runs `cells` for every pairing; `None` when the lab cannot run here.
fn run_matrix(router: &str, cells: &[(&str, &str)]) -> Option<Vec<Table>> {
    let transit = u8::try_from(env_num("NAT_MATRIX_TRANSIT", 1)).unwrap_or(1);
    let runs = env_num("NAT_MATRIX_RUNS", 1).max(1);
    let random_runs = env_num("NAT_MATRIX_RANDOM_RUNS", runs).max(1);
    eprintln!(
        "NAT matrix: routers {router}, transit {transit}, {runs} run(s) per cell, \
         {random_runs} for cells with a random NAT"
    );
    let mut tables = Vec::new();
    for (name, c, s) in PAIRS {
        let mut table = Vec::new();
        for (cn, sn) in cells {
            let n = if *cn == "random" || *sn == "random" {
                random_runs
            } else {
                runs
            };
            let mut cell = Cell { runs: Vec::new() };
            for i in 0..n {
                let r = run_cell_in(c, s, cn, sn, router, transit, 65536)?;
                eprintln!(
                    "[{router}/t{transit}] {name} {cn} -> {sn} run {i}: {}",
                    r.line
                );
                cell.runs.push(r);
            }
            table.push(cell);
        }
        tables.push(table);
    }
    Some(tables)
}

fn print_tables(router: &str, cells: &[(&str, &str)], tables: &[Table]) {
    let rows: Vec<&str> = TYPES
        .iter()
        .copied()
        .filter(|t| cells.iter().any(|(c, _)| c == t))
        .collect();
    let cols: Vec<&str> = TYPES
        .iter()
        .copied()
        .filter(|t| cells.iter().any(|(_, s)| s == t))
        .collect();
    for ((name, _, _), table) in PAIRS.iter().zip(tables) {
        println!("\n{name}, routers: {router} (outcome successes/runs median-ms)\n");
        println!("| client \\ server | {} |", cols.join(" | "));
        println!("|---|{}", "---|".repeat(cols.len()));
        for cn in &rows {
            let line: Vec<String> = cols
                .iter()
                .map(|sn| {
                    cells
                        .iter()
                        .position(|(c, s)| c == cn && s == sn)
                        .map_or_else(String::new, |i| table[i].render())
                })
                .collect();
            println!("| {cn} | {} |", line.join(" | "));
        }
    }
}

/// The failed checks (see the module docs); `must` = (pairing index, client, server) cells that
/// must connect whatever JS<->JS did.
fn check(
    router: &str,
    cells: &[(&str, &str)],
    tables: &[Table],
    must: &[(usize, &str, &str)],
) -> Vec<String> {
    let bar = &tables[0];
    let mut failures = Vec::new();
    for (p, table) in tables.iter().enumerate().skip(1) {
        let name = PAIRS[p].0;
        for (i, (cn, sn)) in cells.iter().enumerate() {
            let cell = &table[i];
            let last = cell.runs.last().map_or("", |r| r.line.as_str());
            if bar[i].successes() > 0 && cell.successes() == 0 {
                failures.push(format!("{name} {cn} -> {sn} below the JS bar: {last}"));
            }
            if must.contains(&(p, *cn, *sn)) && cell.successes() == 0 {
                failures.push(format!("{name} {cn} -> {sn} must connect: {last}"));
            }
            if router == "drop" && *cn == "random" && *sn == "random" && cell.successes() > 0 {
                failures.push(format!("{name} random x random connected?"));
            }
        }
    }
    failures
}

fn matrix(router: &str, cells: &[(&str, &str)], must: &[(usize, &str, &str)]) {
    if std::env::var_os(PEER_ENV).is_some() {
        return;
    }
    common::require_js();
    let Some(tables) = run_matrix(router, cells) else {
        return; // SKIPPED
    };
    print_tables(router, cells, &tables);
    let failures = check(router, cells, &tables, must);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn all_cells() -> Vec<(&'static str, &'static str)> {
    TYPES
        .iter()
        .flat_map(|c| TYPES.iter().map(move |s| (*c, *s)))
        .collect()
}

/// Rust<->Rust and Rust client -> JS server, consistent x consistent: the cell the JS packet
/// sequence loses behind accepting routers (its TTL-5 probe reaches the far router).
const ACCEPT_MUST: [(usize, &str, &str); 2] = [
    (1, "consistent", "consistent"),
    (2, "consistent", "consistent"),
];

#[test]
fn matrix_with_dropping_routers() {
    matrix("drop", &all_cells(), &[]);
}

#[test]
fn accepting_routers_two_nat_cells() {
    let cells = [
        ("consistent", "consistent"),
        ("consistent", "double"),
        ("double", "consistent"),
    ];
    matrix("accept", &cells, &ACCEPT_MUST);
}

#[test]
#[ignore = "slow (~15 min with 1 run per cell): many cells wait out hole-punch timeouts"]
fn matrix_with_accepting_routers() {
    matrix("accept", &all_cells(), &ACCEPT_MUST);
}
