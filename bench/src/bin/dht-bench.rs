//! One side of the DHT benchmark: starts a 100-node dht-rpc network on loopback in this process
//! (a bootstrapper plus persistent nodes), then times FIND_NODE lookups for random targets from
//! random nodes. Prints one JSON line: nodes, lookups, latency percentiles (ms) and resident
//! memory per node (KiB, growth of the process over the nodes).
//!
//! `dht-bench [--nodes 100] [--lookups 200]` (driven by bench/dht-bench.js).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use p2pswarm::rpc::driver::{DhtConfig, DhtNode};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(nodes: usize, lookups: usize) -> Result<String, String> {
    let host = Ipv4Addr::LOCALHOST;
    let before = rss_kib();
    let boot = DhtNode::bind(DhtConfig {
        bootstrap: Vec::new(),
        host,
        ephemeral: Some(false),
        firewalled: false,
        public_addr: Some(SocketAddrV4::new(host, 0)),
        ..DhtConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let boot_addr = match boot.local_addr() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => return Err("ipv6".into()),
    };
    let mut all = vec![boot];
    for _ in 1..nodes {
        let n = DhtNode::bind(DhtConfig {
            bootstrap: vec![boot_addr],
            host,
            ephemeral: Some(false),
            ..DhtConfig::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_secs(30), n.ready())
            .await
            .map_err(|_| "bootstrap timed out")?;
        all.push(n);
    }
    // Let tables settle, as the JS side does.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut lat = Vec::with_capacity(lookups);
    for _ in 0..lookups {
        let mut target = [0u8; 32];
        for c in target.chunks_mut(8) {
            c.copy_from_slice(&next().to_le_bytes());
        }
        let from = (next() % nodes as u64) as usize;
        let t0 = Instant::now();
        let r = all[from]
            .find_node(target)
            .await
            .map_err(|e| e.to_string())?;
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        if r.is_empty() {
            return Err("empty lookup".into());
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    let persistent = all.iter().filter(|n| !n.is_ephemeral()).count();
    for n in &all {
        n.destroy();
    }
    Ok(format!(
        "{{\"impl\":\"rust\",\"nodes\":{nodes},\"persistent\":{persistent},\"lookups\":{lookups},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"mean_ms\":{:.3},\"kib_per_node\":{:.1}}}",
        pct(0.5),
        pct(0.9),
        lat.iter().sum::<f64>() / lat.len() as f64,
        after.saturating_sub(before) as f64 / nodes as f64
    ))
}

fn main() {
    let nodes = arg("--nodes", 100);
    let lookups = arg("--lookups", 200);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(run(nodes, lookups)) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("dht-bench: {e}");
            std::process::exit(1);
        }
    }
}
