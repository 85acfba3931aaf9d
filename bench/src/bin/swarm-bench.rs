//! Rust side of the swarm benchmark (driven by bench/swarm-bench.js); bench/swarm-bench-js.js
//! has the same modes and output with JS hyperswarm 4.17.
//!
//! * `swarm-bench server --bootstrap B --topic HEX --seed HEX`: joins the topic as a server,
//!   flushes, prints `joined PK` and holds every connection.
//! * `swarm-bench client --bootstrap B --topic HEX --seed HEX`: once its DHT node is
//!   bootstrapped, joins the topic as a client and prints `connect_ms X` (join call →
//!   connection event) and `remote PK`, then leaves.
//! * `swarm-bench hub --bootstrap B --topic HEX --seed HEX --expect N`: joins as a server,
//!   flushes, prints `rss0_kib R` (no connections yet), then `connections K` as they arrive and,
//!   once N are open (and after a short settle), `rss_kib R connections K`; holds them.
//! * `swarm-bench clients --bootstrap B --topic HEX --seed-prefix HEX --count N --batch M`: N
//!   client-only swarms in this process (each with its own DHT node and key), started M at a
//!   time with a flush between batches; prints `batch I connections K` and `clients_flushed N`.
//!
//! Every process exits when its stdin closes (the orchestrator went away) or after
//! `--max-secs` (default 300).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use p2pswarm::crypto::KeyPair;
use p2pswarm::dht::Dht;
use p2pswarm::rpc::driver::DhtConfig;
use p2pswarm::swarm::{JoinOptions, Swarm, SwarmConnection, SwarmEvent, SwarmEvents, SwarmOptions};
use tokio::io::AsyncReadExt;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num(name: &str, default: u64) -> Result<u64, String> {
    arg(name).map_or(Ok(default), |v| {
        v.parse().map_err(|e| format!("{name} {v:?}: {e}"))
    })
}

fn hex32(name: &str) -> Result<[u8; 32], String> {
    let s = arg(name).ok_or_else(|| format!("missing {name}"))?;
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .filter_map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    v.try_into()
        .map_err(|_| format!("{name} must be 64 hex digits"))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A bootstrapped swarm on its own loopback DHT node.
async fn swarm(boot: SocketAddrV4, seed: [u8; 32]) -> Result<(Swarm, SwarmEvents), String> {
    let cfg = DhtConfig {
        bootstrap: vec![boot],
        host: Ipv4Addr::LOCALHOST,
        ..DhtConfig::default()
    };
    let dht = Dht::bind_with_key_pair(cfg, KeyPair::from_seed(&seed))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    tokio::time::timeout(READY_TIMEOUT, dht.ready())
        .await
        .map_err(|_| "bootstrap timed out")?;
    Swarm::new(SwarmOptions {
        dht: Some(dht),
        seed: Some(seed),
        ..SwarmOptions::default()
    })
    .await
    .map_err(|e| format!("swarm: {e}"))
}

/// Reads a connection until it ends (so keep-alives run) and keeps it open meanwhile.
fn hold(mut c: Box<SwarmConnection>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1024];
        while let Ok(n) = c.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
}

/// Holds every connection a swarm reports (for as long as the process runs).
fn hold_all(mut ev: SwarmEvents) {
    tokio::spawn(async move {
        while let Some(e) = ev.next().await {
            if let SwarmEvent::Connection(c, _) = e {
                hold(c);
            }
        }
    });
}

async fn flush(s: &Swarm) -> Result<(), String> {
    match tokio::time::timeout(FLUSH_TIMEOUT, s.flush()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("flush: swarm destroyed".into()),
        Err(_) => Err("flush timed out".into()),
    }
}

/// Until stdin closes (or the process is killed / times out in `main`).
async fn park() {
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
}

async fn server(boot: SocketAddrV4, topic: [u8; 32]) -> Result<(), String> {
    let (s, ev) = swarm(boot, hex32("--seed")?).await?;
    hold_all(ev);
    s.join(topic, JoinOptions::server())
        .map_err(|e| format!("join: {e:?}"))?;
    flush(&s).await?;
    println!("joined {}", s.public_key().to_hex());
    park().await;
    s.destroy().await;
    Ok(())
}

async fn client(boot: SocketAddrV4, topic: [u8; 32]) -> Result<(), String> {
    let (s, mut ev) = swarm(boot, hex32("--seed")?).await?;
    let t0 = Instant::now();
    s.join(topic, JoinOptions::client())
        .map_err(|e| format!("join: {e:?}"))?;
    let (took, conn) = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ev.next().await {
                Some(SwarmEvent::Connection(c, _)) => return Some((t0.elapsed(), c)),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .map_err(|_| "no connection within 30 s")?
    .ok_or("swarm closed without a connection")?;
    println!(
        "connect_ms {:.3} remote {}",
        took.as_secs_f64() * 1000.0,
        conn.remote_public_key().to_hex()
    );
    drop(conn);
    let _ = tokio::time::timeout(Duration::from_secs(5), s.destroy()).await;
    Ok(())
}

async fn hub(boot: SocketAddrV4, topic: [u8; 32]) -> Result<(), String> {
    let expect = usize::try_from(num("--expect", 50)?).map_err(|e| e.to_string())?;
    let (s, ev) = swarm(boot, hex32("--seed")?).await?;
    hold_all(ev);
    s.join(topic, JoinOptions::server())
        .map_err(|e| format!("join: {e:?}"))?;
    flush(&s).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("rss0_kib {} connections {}", rss_kib(), s.connections());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = usize::MAX;
    loop {
        let n = s.connections();
        if n != last {
            println!("connections {n}");
            last = n;
        }
        if n >= expect {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {n} of {expect} connections after 120 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("rss_kib {} connections {}", rss_kib(), s.connections());
    park().await;
    s.destroy().await;
    Ok(())
}

async fn clients(boot: SocketAddrV4, topic: [u8; 32]) -> Result<(), String> {
    let prefix = hex32("--seed-prefix")?;
    let count = num("--count", 50)?;
    let batch = num("--batch", 10)?.max(1);
    let mut swarms = Vec::new();
    let mut i = 0u64;
    let mut b = 0;
    while i < count {
        let ids: Vec<u64> = (i..count.min(i + batch)).collect();
        i += ids.len() as u64;
        b += 1;
        let made = futures_all(ids.iter().map(|&k| {
            let mut seed = prefix;
            seed[24..].copy_from_slice(&k.to_be_bytes());
            swarm(boot, seed)
        }))
        .await;
        let mut fresh = Vec::new();
        for m in made {
            let (s, ev) = m?;
            hold_all(ev);
            s.join(topic, JoinOptions::client())
                .map_err(|e| format!("join: {e:?}"))?;
            fresh.push(s);
        }
        for r in futures_all(fresh.iter().map(flush)).await {
            r?;
        }
        swarms.extend(fresh);
        let open: usize = swarms.iter().map(Swarm::connections).sum();
        println!("batch {b} swarms {} connections {open}", swarms.len());
    }
    println!("clients_flushed {}", swarms.len());
    park().await;
    for s in &swarms {
        s.destroy().await;
    }
    Ok(())
}

async fn run() -> Result<(), String> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let boot: SocketAddrV4 = arg("--bootstrap")
        .ok_or("missing --bootstrap")?
        .parse()
        .map_err(|e| format!("bootstrap: {e}"))?;
    let topic = hex32("--topic")?;
    match mode.as_str() {
        "server" => server(boot, topic).await,
        "client" => client(boot, topic).await,
        "hub" => hub(boot, topic).await,
        "clients" => clients(boot, topic).await,
        other => Err(format!("unknown mode {other:?}")),
    }
}

/// Runs futures concurrently on this task and returns their outputs in order.
async fn futures_all<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = fs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in pinned.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

fn main() {
    let max = num("--max-secs", 300).unwrap_or(300);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(max), run())
            .await
            .unwrap_or(Err("timed out".into()))
    }) {
        println!("error {e}");
        std::process::exit(1);
    }
    // Background tasks (connection readers) must not keep the process alive.
    std::process::exit(0);
}
