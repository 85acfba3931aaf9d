//! Rust side of the Python binding throughput benchmark (bench/run-python.sh); the Python side
//! is bench/transfer_bench.py with the same modes and output.
//!
//! * `transfer-bench recv --bootstrap B --topic HEX --seed HEX --bytes N`: joins the topic as a
//!   server, prints `joined`, reads N bytes from the first connection and prints
//!   `received N secs S mib_per_s X cpu C` (clock from the connection event to the last byte;
//!   C: CPU seconds of all threads of the process over the same span).
//! * `transfer-bench send --bootstrap B --topic HEX --seed HEX --bytes N`: joins as a client and
//!   writes N bytes (1 MiB writes) to the first connection, ends it, waits for the close, and
//!   prints `sent N cpu C` (CPU seconds from the connection event to the close).
//!
//! `recv --pause-ms X` stops reading for X ms after the first MiB (a slow consumer: the
//! receive window closes). Both exit after `--max-secs` (default 300).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use p2pswarm::crypto::KeyPair;
use p2pswarm::dht::Dht;
use p2pswarm::rpc::driver::DhtConfig;
use p2pswarm::swarm::{JoinOptions, Swarm, SwarmConnection, SwarmEvent, SwarmEvents, SwarmOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
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

async fn swarm(boot: SocketAddrV4, seed: [u8; 32]) -> Result<(Swarm, SwarmEvents), String> {
    let cfg = DhtConfig {
        bootstrap: vec![boot],
        host: Ipv4Addr::LOCALHOST,
        ..DhtConfig::default()
    };
    let dht = Dht::bind_with_key_pair(cfg, KeyPair::from_seed(&seed))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    tokio::time::timeout(Duration::from_secs(30), dht.ready())
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

/// CPU time of all threads of this process so far (Linux: `/proc/self/task/*/schedstat`;
/// 0 elsewhere).
fn cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let ns: u64 = dir
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

async fn first_connection(ev: &mut SwarmEvents) -> Result<Box<SwarmConnection>, String> {
    loop {
        match ev.next().await {
            Some(SwarmEvent::Connection(c, _)) => return Ok(c),
            Some(_) => {}
            None => return Err("swarm closed without a connection".into()),
        }
    }
}

async fn run() -> Result<(), String> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let boot: SocketAddrV4 = arg("--bootstrap")
        .ok_or("missing --bootstrap")?
        .parse()
        .map_err(|e| format!("--bootstrap: {e}"))?;
    let topic = hex32("--topic")?;
    let bytes: u64 = arg("--bytes")
        .ok_or("missing --bytes")?
        .parse()
        .map_err(|e| format!("--bytes: {e}"))?;
    let (s, mut ev) = swarm(boot, hex32("--seed")?).await?;
    match mode.as_str() {
        "recv" => {
            s.join(topic, JoinOptions::server())
                .map_err(|e| format!("join: {e:?}"))?;
            s.flush().await;
            println!("joined");
            let mut c = first_connection(&mut ev).await?;
            let t0 = Instant::now();
            let cpu0 = cpu_secs();
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0u64;
            // `--pause-ms X`: stop reading for X ms after the first MiB (a slow consumer).
            let pause: u64 = arg("--pause-ms").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut paused = pause == 0;
            while got < bytes {
                if !paused && got >= 1 << 20 {
                    paused = true;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                let n = c.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "received {got} secs {secs:.3} mib_per_s {:.1} cpu {:.3}",
                got as f64 / secs / 1_048_576.0,
                cpu_secs() - cpu0
            );
            drop(c);
        }
        "send" => {
            s.join(topic, JoinOptions::client())
                .map_err(|e| format!("join: {e:?}"))?;
            let mut c = first_connection(&mut ev).await?;
            let cpu0 = cpu_secs();
            let block = vec![0x5au8; 1024 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                c.write_all(&block[..n])
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                left -= n as u64;
            }
            c.shutdown().await.map_err(|e| format!("end: {e}"))?;
            let mut sink = vec![0u8; 64 * 1024];
            while matches!(c.read(&mut sink).await, Ok(n) if n > 0) {}
            println!("sent {bytes} cpu {:.3}", cpu_secs() - cpu0);
        }
        other => return Err(format!("unknown mode {other:?} (recv | send)")),
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), s.destroy()).await;
    Ok(())
}

fn main() {
    let max: u64 = arg("--max-secs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
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
    std::process::exit(0);
}
