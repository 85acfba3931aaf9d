//! Reproduces, without Node or napi, the stall seen by `test/manual/long-transfer.js`: two
//! swarms on one runtime (the handle layer the addon wraps) push 2 GiB one way, the receiver
//! pulls events as fast as it can on another thread. On the machines of 2026-11 about half the
//! runs stop for good (at 4 MiB, 1.2 GiB, 1.8 GiB…): the sender's write queue stays full and
//! nothing more arrives. So the stall is below the binding (runtime flow control or the
//! Rust <-> Rust UDX window handling after the receiver's reader pauses at 4 MiB queued).
//!
//!   cargo run --release -p p2pswarm-node --example stall [-- MIB]
//!
//! MIB (default 2048) is the amount to transfer; the last line gives the throughput (both
//! swarms share the runtime thread, so it measures the CPU cost of both ends together).
//!
//! Exit status 0 when all 2 GiB arrived, 1 when nothing arrived for 12 s.

use std::time::{Duration, Instant};

use swarm_core::runtime::{Event, JoinOptions, Next, Runtime, SwarmOptions};

const CHUNK: usize = 64 * 1024;

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(2048)
        << 20;
    let rt = Runtime::new().expect("runtime");
    let tn = rt.testnet(2).wait().expect("testnet").expect("testnet");
    let qa = rt.event_queue().expect("queue");
    let qb = rt.event_queue().expect("queue");
    let mut o = SwarmOptions::new();
    o.bootstrap = Some(vec![tn.bootstrap()]);
    let a = rt
        .swarm(o.clone(), &qa)
        .wait()
        .expect("swarm")
        .expect("swarm");
    let b = rt.swarm(o, &qb).wait().expect("swarm").expect("swarm");
    let topic = [3u8; 32];
    let server = JoinOptions {
        server: true,
        client: false,
    };
    let client = JoinOptions {
        server: false,
        client: true,
    };
    let da = a.join(topic, server).wait().expect("join").expect("join");
    da.flushed().wait().expect("flushed");
    let _db = b.join(topic, client).wait().expect("join").expect("join");

    let _sender = std::thread::spawn(move || {
        let conn = loop {
            if let Next::Event(Event::Connection { conn, .. }) = qb.next_blocking(None) {
                break conn;
            }
        };
        let mut sent = 0;
        while sent < total {
            if conn.write_nowait(vec![1u8; CHUNK]).is_ok() {
                sent += CHUNK;
                continue;
            }
            loop {
                match qb.next_blocking(Some(Duration::from_secs(10))) {
                    Next::Event(Event::Drain { .. }) => break,
                    Next::Timeout => eprintln!(
                        "sender: no drain for 10 s at {} MiB sent, {} bytes queued",
                        sent >> 20,
                        conn.queued_bytes()
                    ),
                    _ => {}
                }
            }
        }
        conn
    });

    let mut keep = Vec::new(); // dropping the last Conn clone would close the connection
    let (mut n, mut prev, mut idle) = (0usize, 0usize, 0);
    let t0 = Instant::now();
    let mut tick = Instant::now();
    while n < total {
        match qa.next_blocking(Some(Duration::from_secs(1))) {
            Next::Event(Event::Connection { conn, .. }) => keep.push(conn),
            Next::Event(Event::Data { data, .. }) => n += data.len(),
            _ => {}
        }
        if tick.elapsed() >= Duration::from_secs(1) {
            println!("{} MiB", n >> 20);
            tick = Instant::now();
            idle = if n == prev { idle + 1 } else { 0 };
            prev = n;
            if idle >= 12 {
                println!("STALLED at {} MiB", n >> 20);
                std::process::exit(1);
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "complete: {} MiB in {secs:.2} s, {:.1} MiB/s",
        n >> 20,
        (n >> 20) as f64 / secs
    );
}
