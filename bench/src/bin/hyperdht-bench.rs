//! Rust side of the HyperDHT benchmark (driven by bench/hyperdht-bench.js):
//!
//! * `hyperdht-bench server --bootstrap B --seed HEX`: listens; on a connection writes one byte,
//!   reads to EOF, prints `received N secs S` (first payload byte → EOF) and exits.
//! * `hyperdht-bench client --bootstrap B --connect PK --bytes N`: connects, prints
//!   `connect_ms X` (connect call → first byte from the server), sends N bytes, ends, waits for
//!   the close.
//! * `hyperdht-bench idle --bootstrap B`: one bootstrapped idle node; prints `rss_kib N`.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use p2pswarm::crypto::{KeyPair, PublicKey};
use p2pswarm::dht::Dht;
use p2pswarm::rpc::driver::DhtConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn hex32(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect();
    v.try_into().unwrap_or([0; 32])
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

async fn run() -> Result<(), String> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let boot: SocketAddrV4 = arg("--bootstrap")
        .ok_or("--bootstrap")?
        .parse()
        .map_err(|e| format!("bootstrap: {e}"))?;
    let cfg = DhtConfig {
        bootstrap: vec![boot],
        host: std::net::Ipv4Addr::LOCALHOST,
        ..DhtConfig::default()
    };
    let dht = Dht::bind(cfg).await.map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(30), dht.ready())
        .await
        .map_err(|_| "bootstrap timed out")?;
    match mode.as_str() {
        "idle" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            println!("rss_kib {}", rss_kib());
        }
        "server" => {
            let kp = KeyPair::from_seed(&hex32(&arg("--seed").ok_or("--seed")?));
            let mut server = dht
                .listen(kp.clone(), None)
                .await
                .map_err(|e| e.to_string())?;
            println!("listening {}", kp.public_key().to_hex());
            let mut conn = server.accept().await.ok_or("no connection")?;
            conn.write_all(b"!").await.map_err(|e| e.to_string())?;
            conn.flush().await.map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0usize;
            let mut t0 = None;
            loop {
                let n = conn.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                t0.get_or_insert_with(Instant::now);
                total += n;
            }
            let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
            conn.shutdown().await.map_err(|e| e.to_string())?;
            let _ = tokio::time::timeout(Duration::from_secs(10), conn.get_ref().closed()).await;
            println!("received {total} secs {secs:.6}");
        }
        "client" => {
            let pk = PublicKey(hex32(&arg("--connect").ok_or("--connect")?));
            let n: usize = arg("--bytes")
                .and_then(|b| b.parse().ok())
                .unwrap_or(64 << 20);
            let t0 = Instant::now();
            let mut conn = dht.connect(&pk).await.map_err(|e| e.to_string())?;
            let mut one = [0u8; 1];
            conn.read_exact(&mut one).await.map_err(|e| e.to_string())?;
            println!("connect_ms {:.3}", t0.elapsed().as_secs_f64() * 1000.0);
            let chunk = vec![0x5au8; 1 << 16];
            let mut sent = 0;
            while sent < n {
                let k = chunk.len().min(n - sent);
                conn.write_all(&chunk[..k])
                    .await
                    .map_err(|e| e.to_string())?;
                sent += k;
            }
            conn.shutdown().await.map_err(|e| e.to_string())?;
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest).await;
            let _ = tokio::time::timeout(Duration::from_secs(10), conn.get_ref().closed()).await;
        }
        other => return Err(format!("unknown mode {other:?}")),
    }
    dht.destroy();
    Ok(())
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(300), run())
            .await
            .unwrap_or(Err("timed out".into()))
    }) {
        println!("error {e}");
        std::process::exit(1);
    }
}
