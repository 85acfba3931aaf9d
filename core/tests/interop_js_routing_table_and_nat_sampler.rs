//! Routing table and NAT sampler checked step by step against the pinned JS modules
//! (`kademlia-routing-table` 1.0.6, `nat-sampler` 1.0.1, as used by dht-rpc 6.27.0): the scenarios
//! of `tests/interop/js/gen-table-vectors.js` (adds with duplicates and full rows, removes,
//! lookups, `closest` in bucket order, `random`, id-change rebuilds; NAT observation sequences)
//! are replayed on the Rust structures. The seed is random and printed; set
//! `P2PSWARM_TABLE_SEED` to replay one.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::Ipv4Addr;

use common::{hex32, node_output};
use p2pswarm::rpc::nat::NatSampler;
use p2pswarm::rpc::table::{AddResult, RoutingTable};
use serde_json::Value;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} missing in {v}"))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("number {k} missing in {v}"))
}

fn b(v: &Value, k: &str) -> bool {
    v[k].as_bool()
        .unwrap_or_else(|| panic!("bool {k} missing in {v}"))
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("array {k} missing in {v}"))
}

fn ids(v: &Value, k: &str) -> Vec<[u8; 32]> {
    arr(v, k)
        .iter()
        .map(|x| hex32(x.as_str().expect("hex id")))
        .collect()
}

fn short(id: &[u8; 32]) -> String {
    p2pswarm::crypto::to_hex(&id[..6])
}

/// Payload: the id again, plus a counter to check updates replace the value in place.
type Payload = ([u8; 32], usize);

fn check_table(scenario: usize, t: &Value) -> usize {
    let k = u(t, "k") as usize;
    let mut table: RoutingTable<Payload> = RoutingTable::new(hex32(s(t, "localId")), k);
    let mut checked = 0;
    for (step, op) in arr(t, "ops").iter().enumerate() {
        let at = format!("table scenario {scenario} step {step} ({op})");
        match s(op, "op") {
            "add" => {
                let id = hex32(s(op, "id"));
                let got = table.add(id, (id, step));
                let want = match s(op, "result") {
                    "added" => AddResult::Added,
                    "updated" => AddResult::Updated,
                    "full" => AddResult::RowFull,
                    "own" => AddResult::OwnId,
                    other => panic!("unknown add result {other}"),
                };
                assert_eq!(got, want, "{at}");
                if want != AddResult::OwnId {
                    assert_eq!(got.is_stored(), b(op, "ok"), "{at}");
                }
                if got.is_stored() {
                    assert_eq!(table.get(&id), Some(&(id, step)), "{at}");
                }
            }
            "remove" => {
                let id = hex32(s(op, "id"));
                let got = table.remove(&id);
                assert_eq!(got.is_some(), b(op, "ok"), "{at}");
                if let Some((pid, _)) = got {
                    assert_eq!(pid, id, "{at}");
                }
            }
            "get" => {
                let id = hex32(s(op, "id"));
                assert_eq!(table.has(&id), b(op, "found"), "{at}");
                assert_eq!(table.get(&id).is_some(), b(op, "found"), "{at}");
                if let Some(p) = table.get_mut(&id) {
                    assert_eq!(p.0, id, "{at}");
                }
            }
            "closest" => {
                let target = hex32(s(op, "target"));
                let want = ids(op, "ids");
                let nodes = if let Some(n) = op["n"].as_u64() {
                    table.closest(&target, n as usize)
                } else {
                    // toArray(): the iterator, which must equal closest(local id, everything)
                    let all: Vec<_> = table.iter().collect();
                    assert_eq!(all, table.closest(&target, usize::MAX), "{at}");
                    all
                };
                let got: Vec<[u8; 32]> = nodes
                    .into_iter()
                    .map(|(id, p)| {
                        assert_eq!(*id, p.0, "{at}");
                        *id
                    })
                    .collect();
                assert_eq!(
                    got.iter().map(short).collect::<Vec<_>>(),
                    want.iter().map(short).collect::<Vec<_>>(),
                    "{at}"
                );
                assert_eq!(got, want, "{at}");
            }
            "random" => {
                let value: u64 = s(op, "value").parse().expect("u64");
                let got = table.random(value).map(|(id, _)| *id);
                let want = op["id"].as_str().map(hex32);
                assert_eq!(got, want, "{at}");
            }
            "rebuild" => {
                let id = hex32(s(op, "id"));
                let out = table.rebuild(id);
                assert_eq!(table.local_id(), &id, "{at}");
                let dropped: Vec<[u8; 32]> = out.row_full.iter().map(|(i, _)| *i).collect();
                assert_eq!(dropped, ids(op, "dropped"), "{at}");
                for (i, p) in &out.row_full {
                    assert_eq!(*i, p.0, "{at}");
                }
                assert_eq!(
                    out.own_id.map(|(i, _)| i),
                    op["skippedOwn"].as_str().map(hex32),
                    "{at}"
                );
            }
            other => panic!("unknown op {other}"),
        }
        assert_eq!(table.len() as u64, u(op, "size"), "{at}: size");
        checked += 1;
    }
    checked
}

fn check_nat(scenario: usize, n: &Value) -> usize {
    let mut sampler = NatSampler::new();
    let steps = arr(n, "steps");
    for (step, st) in steps.iter().enumerate() {
        let at = format!(
            "nat scenario {scenario} ({}) step {step} ({st})",
            s(n, "name")
        );
        let host: Ipv4Addr = s(st, "host").parse().expect("ipv4");
        let hits = sampler.add(host, u(st, "port") as u16);
        assert_eq!(u64::from(hits), u(st, "hits"), "{at}: hits");
        let want_host = st["outHost"]
            .as_str()
            .map(|h| h.parse::<Ipv4Addr>().expect("ipv4"));
        assert_eq!(sampler.host(), want_host, "{at}: host");
        assert_eq!(u64::from(sampler.port()), u(st, "outPort"), "{at}: port");
        assert_eq!(sampler.size() as u64, u(st, "size"), "{at}: size");
        assert_eq!(
            sampler.threshold() as u64,
            u(st, "threshold"),
            "{at}: threshold"
        );
    }
    steps.len()
}

#[test]
fn routing_table_and_nat_sampler_match_js() {
    let seed = std::env::var("P2PSWARM_TABLE_SEED").unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock");
        (t.as_nanos() as u64 & 0xffff_ffff_ffff).to_string()
    });
    eprintln!("gen-table-vectors seed {seed} (set P2PSWARM_TABLE_SEED to replay)");
    let out = node_output("gen-table-vectors.js", &["--seed", &seed, "--count", "12"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(s(&v, "seed"), seed);

    let tables = arr(&v, "tables");
    let nats = arr(&v, "nat");
    assert!(!tables.is_empty() && !nats.is_empty());

    let table_ops: usize = tables
        .iter()
        .enumerate()
        .map(|(i, t)| check_table(i, t))
        .sum();
    let nat_steps: usize = nats.iter().enumerate().map(|(i, n)| check_nat(i, n)).sum();

    // the scenarios must actually exercise the interesting paths
    let all_ops = || tables.iter().flat_map(|t| arr(t, "ops"));
    let count = |f: &dyn Fn(&Value) -> bool| all_ops().filter(|o| f(o)).count();
    assert!(
        count(&|o| o["result"] == "full") > 0,
        "no full rows exercised"
    );
    assert!(
        count(&|o| o["result"] == "updated") > 0,
        "no updates exercised"
    );
    assert!(count(&|o| o["op"] == "rebuild") > 0, "no rebuild exercised");
    assert!(
        nats.iter().any(|n| arr(n, "steps").len() > 16),
        "no NAT wrap"
    );

    eprintln!("checked {table_ops} routing-table ops and {nat_steps} NAT sampler steps");
}
