//! NAT lab (tests/nat/lab.sh; needs root for network namespaces, prints SKIPPED otherwise): two
//! Rust *swarms*, each behind its own randomizing NAT, meet on a topic; the client swarm has
//! `SwarmOptions::relay_through` set to a Rust blind relay on the public segment (as hyperswarm's
//! `relayThrough`: used because our NAT randomizes, or after the hole-punch failure that a
//! random x random pair always gets). The swarm connection runs to the relay's address, the relay
//! matched a pairing, and 64 KiB flows each way intact (tests/nat/relay-cell.sh, with this
//! binary's `nat_peer` as a swarm peer).

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use common::nat::{assert_relayed_cell, run_lab_script, Impl, PEER_ENV, RELAY_ENV};
use p2pswarm::crypto::{KeyPair, PublicKey};
use p2pswarm::swarm::{JoinOptions, Swarm, SwarmEvent, SwarmOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOPIC: [u8; 32] = [0x7a; 32];

fn arg(args: &[&str], name: &str) -> Option<String> {
    args.iter()
        .position(|a| *a == name)
        .and_then(|i| args.get(i + 1).map(|s| (*s).to_owned()))
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + (i >> 11)) & 0xff) as u8).collect()
}

/// A swarm peer with the interface relay-cell.sh drives (`server|client --bootstrap B --seed S
/// --bytes N --timeout-ms T [--relay PK]`); the client ignores `--connect` and finds the server
/// on the topic.
#[test]
fn nat_peer() {
    let Ok(args) = std::env::var(PEER_ENV) else {
        return;
    };
    let args: Vec<&str> = args.split_whitespace().collect();
    let boot: SocketAddrV4 = arg(&args, "--bootstrap")
        .and_then(|b| b.parse().ok())
        .expect("--bootstrap");
    let seed: [u8; 32] = hex::decode(arg(&args, "--seed").unwrap_or_default())
        .ok()
        .and_then(|v| v.try_into().ok())
        .unwrap_or([0x11; 32]);
    let n: usize = arg(&args, "--bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(65536);
    let relay = arg(&args, "--relay")
        .and_then(|h| hex::decode(h).ok())
        .and_then(|v| v.try_into().ok())
        .map(PublicKey);
    let timeout = Duration::from_millis(
        arg(&args, "--timeout-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60_000),
    );
    let server = args.contains(&"server");
    let rt = common::nat::runtime();
    rt.block_on(async move {
        let run = async move {
            let (swarm, mut events) = Swarm::new(SwarmOptions {
                seed: Some(seed),
                bootstrap: Some(vec![boot]),
                relay_through: relay,
                ..SwarmOptions::default()
            })
            .await
            .expect("swarm");
            let t0 = Instant::now();
            let d = swarm
                .join(
                    TOPIC,
                    JoinOptions {
                        server,
                        client: !server,
                        limit: None,
                    },
                )
                .expect("join");
            if server {
                d.flushed().await;
                println!(
                    "listening {}",
                    KeyPair::from_seed(&seed).public_key().to_hex()
                );
            }
            let conn = loop {
                match events.next().await {
                    Some(SwarmEvent::Connection(c, _)) => break c,
                    Some(_) => {}
                    None => {
                        println!("error NONE swarm ended");
                        return;
                    }
                }
            };
            let remote = conn
                .remote_address()
                .map_or_else(|| "?".to_owned(), |a| a.to_string());
            if server {
                println!(
                    "connection {} remote={remote}",
                    conn.remote_public_key().to_hex()
                );
            } else {
                println!(
                    "open ms={} path=swarm remote={remote}",
                    t0.elapsed().as_millis()
                );
            }
            let want = pattern(n);
            let (mut r, mut w) = tokio::io::split(*conn);
            let data = want.clone();
            let (wr, got) = tokio::join!(
                async move {
                    w.write_all(&data).await?;
                    w.shutdown().await
                },
                async move {
                    let mut v = Vec::new();
                    r.read_to_end(&mut v).await.map(|_| v)
                }
            );
            match (wr, got) {
                (Ok(()), Ok(v)) if v == want => println!("done received={}", v.len()),
                (w, g) => println!(
                    "error ERR write {:?} read {:?}",
                    w.err(),
                    g.map(|v| v.len())
                ),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            swarm.destroy().await;
        };
        if tokio::time::timeout(timeout, run).await.is_err() {
            println!("error TIMEOUT overall timeout");
        }
    });
    rt.shutdown_timeout(Duration::from_millis(100));
}

/// The relay role of `tests/nat/relay-cell.sh`.
#[test]
fn nat_relay() {
    common::nat::run_relay();
}

#[test]
fn random_pair_of_swarms_connects_through_the_relay() {
    if std::env::var_os(PEER_ENV).is_some() || std::env::var_os(RELAY_ENV).is_some() {
        return;
    }
    common::require_js();
    let Some(out) = run_lab_script(
        Impl::Rust,
        Impl::Rust,
        "random",
        "random",
        "drop",
        "relay-cell.sh",
    ) else {
        return;
    };
    println!("{out}");
    assert_relayed_cell(&out, "the random pair of swarms");
}
