//! Rust swarm ↔ JS hyperswarm 4.17 on one topic, in fresh network namespaces, on a JS testnet
//! and on a Rust testnet: both peers join as server and client (so both sides dial), and each
//! side ends with exactly one connection to the other (duplicate resolution agrees), carrying
//! messages both ways; also Rust-only-client ↔ JS-only-server and the reverse.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Stdio;
use std::time::Duration;

use common::require_js;
use p2pswarm::crypto::{to_hex, KeyPair};
use p2pswarm::dht::Dht;
use p2pswarm::rpc::driver::DhtConfig;
use p2pswarm::swarm::{JoinOptions, Swarm, SwarmEvent, SwarmOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

struct Js {
    _child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Js {
    fn spawn(args: &[&str]) -> Js {
        let mut child = Command::new("node")
            .args(args)
            .current_dir(require_js())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Js {
            _child: child,
            stdin,
            lines,
        }
    }

    async fn until(&mut self, prefix: &str) -> (String, Vec<String>) {
        let mut seen = Vec::new();
        loop {
            let l = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
                .await
                .expect("js output in time")
                .expect("read")
                .expect("a line");
            if l.starts_with(prefix) {
                return (l, seen);
            }
            seen.push(l);
        }
    }

    async fn ask(&mut self, cmd: &str, prefix: &str) -> (String, Vec<String>) {
        self.stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .expect("stdin");
        self.stdin.flush().await.expect("flush");
        self.until(prefix).await
    }
}

/// Diagnosis: `RUST_LOG=p2pswarm=debug` logs the Rust side, `HS_PEER_DEBUG=1` the JS peer's
/// connection life cycle (both on stderr).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn js_testnet() -> (Js, SocketAddrV4) {
    let mut tn = Js::spawn(&["hyperdht-peer.js", "--testnet", "8"]);
    let (ready, _) = tn.until("ready ").await;
    let boot = ready
        .strip_prefix("ready ")
        .expect("ready")
        .parse()
        .expect("addr");
    (tn, boot)
}

/// Both peers server+client on one topic: exactly one connection each, messages both ways.
async fn duplicate_pair(boot: SocketAddrV4, rust_seed: u8, js_seed: u8) {
    logs();
    eprintln!("=== duplicate_pair rust_seed {rust_seed:#x} js_seed {js_seed:#x}");
    let topic = [0x5au8; 32];
    let js_pk = KeyPair::from_seed(&[js_seed; 32]).public_key().to_hex();
    let dht = Dht::bind_with_key_pair(
        DhtConfig {
            bootstrap: vec![boot],
            host: HOST,
            ..DhtConfig::default()
        },
        KeyPair::from_seed(&[rust_seed; 32]),
    )
    .await
    .expect("dht");
    tokio::time::timeout(Duration::from_secs(30), dht.ready())
        .await
        .expect("ready");
    let (swarm, mut events) =
        Swarm::with_dht(dht.clone(), dht.key_pair().clone(), SwarmOptions::default());
    let rust_pk = swarm.public_key().to_hex();
    swarm
        .join(
            topic,
            JoinOptions {
                server: true,
                client: true,
                limit: None,
            },
        )
        .expect("join");
    swarm.flush().await;
    let mut js = Js::spawn(&[
        "hyperswarm-peer.js",
        "--bootstrap",
        &boot.to_string(),
        "--topic",
        &to_hex(&topic),
        "--seed",
        &to_hex(&[js_seed; 32]),
        "--server",
        "--client",
    ]);
    let _ = js.until("joined").await;
    // The Rust side looks the topic up again too, so both sides dial each other.
    swarm
        .join(
            topic,
            JoinOptions {
                server: true,
                client: true,
                limit: None,
            },
        )
        .expect("join");
    swarm.flush().await;
    let _ = js.ask("flush", "flushed").await;
    // Both sides converge on exactly one connection. When the two dials cross at the wrong
    // moment one side may drop both and redial after its retry back-off (as JS↔JS does), so
    // poll for up to 15 s, then check that the state is stable.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (count, _) = js.ask("count", "connections ").await;
        let state = (swarm.connections(), count);
        seen.push(state.clone());
        if state.0 == 1 && state.1 == "connections 1" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no single connection on each side within 15 s: {seen:?}; rust peers (client, attempts): {:?}; stats {:?}",
            swarm.peers().iter().map(|p| (p.client, p.attempts)).collect::<Vec<_>>(),
            swarm.stats()
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(swarm.connections(), 1, "Rust side connections");
    let (count, _) = js.ask("count", "connections ").await;
    assert_eq!(count, "connections 1", "JS side connections");
    // The surviving connection carries messages both ways.
    let mut live = None;
    while let Some(ev) = events.try_next() {
        if let SwarmEvent::Connection(c, info) = ev {
            assert_eq!(info.public_key.to_hex(), js_pk);
            live = Some(c); // the last one is the survivor
        }
    }
    let mut conn = live.expect("a connection event");
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("hello in time")
        .expect("read");
    assert_eq!(&buf[..n], b"hello from js");
    conn.write_all(b"hello from rust").await.expect("write");
    let (line, _) = js.until("data ").await;
    assert_eq!(line, format!("data {rust_pk} hello from rust"));
    let _ = js.ask("exit", "bye").await;
    swarm.destroy().await;
}

#[test]
fn duplicate_pair_on_a_js_testnet() {
    if common::netns::run_inside("duplicate_pair_on_a_js_testnet", 0) {
        return;
    }
    runtime().block_on(async {
        let (_tn, boot) = js_testnet().await;
        // Two key orders, so that each side is once the expected initiator.
        duplicate_pair(boot, 0x01, 0xfe).await;
        duplicate_pair(boot, 0xfd, 0x02).await;
    });
}

#[test]
fn duplicate_pair_on_a_rust_testnet() {
    if common::netns::run_inside("duplicate_pair_on_a_rust_testnet", 0) {
        return;
    }
    runtime().block_on(async {
        let (_net, boot) = common::net::rust_testnet(8).await;
        duplicate_pair(boot, 0x03, 0xfc).await;
        duplicate_pair(boot, 0xfb, 0x04).await;
    });
}

/// One side server only, the other client only: one connection each way, messages both ways.
async fn one_role_each(boot: SocketAddrV4, rust_server: bool, rust_seed: u8, js_seed: u8) {
    logs();
    let topic = [0x5bu8 ^ rust_seed; 32];
    let js_pk = KeyPair::from_seed(&[js_seed; 32]).public_key().to_hex();
    let dht = Dht::bind_with_key_pair(
        DhtConfig {
            bootstrap: vec![boot],
            host: HOST,
            ..DhtConfig::default()
        },
        KeyPair::from_seed(&[rust_seed; 32]),
    )
    .await
    .expect("dht");
    tokio::time::timeout(Duration::from_secs(30), dht.ready())
        .await
        .expect("ready");
    let (swarm, mut events) =
        Swarm::with_dht(dht.clone(), dht.key_pair().clone(), SwarmOptions::default());
    let rust_pk = swarm.public_key().to_hex();
    let topic_hex = to_hex(&topic);
    let seed_hex = to_hex(&[js_seed; 32]);
    let boot_s = boot.to_string();
    let js_role = if rust_server { "--client" } else { "--server" };
    let args = [
        "hyperswarm-peer.js",
        "--bootstrap",
        &boot_s,
        "--topic",
        &topic_hex,
        "--seed",
        &seed_hex,
        js_role,
    ];
    let mut js = if rust_server {
        swarm.join(topic, JoinOptions::server()).expect("join");
        assert!(swarm.flush().await);
        let mut js = Js::spawn(&args);
        let _ = js.until("joined").await;
        js
    } else {
        let mut js = Js::spawn(&args);
        let _ = js.until("joined").await;
        swarm.join(topic, JoinOptions::client()).expect("join");
        assert!(swarm.flush().await);
        js
    };
    let mut conn = loop {
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
            Ok(Some(SwarmEvent::Connection(c, info))) => {
                assert_eq!(info.public_key.to_hex(), js_pk);
                assert_eq!(
                    info.client, !rust_server,
                    "Rust dialled iff it is the client"
                );
                break c;
            }
            Ok(Some(_)) => {}
            other => panic!("no connection (rust_server {rust_server}): {other:?}"),
        }
    };
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("hello in time")
        .expect("read");
    assert_eq!(&buf[..n], b"hello from js");
    conn.write_all(b"hello from rust").await.expect("write");
    let (line, _) = js.until("data ").await;
    assert_eq!(line, format!("data {rust_pk} hello from rust"));
    let (count, _) = js.ask("count", "connections ").await;
    assert_eq!(count, "connections 1");
    assert_eq!(swarm.connections(), 1);
    let _ = js.ask("exit", "bye").await;
    swarm.destroy().await;
}

#[test]
fn server_and_client_roles_on_a_js_testnet() {
    if common::netns::run_inside("server_and_client_roles_on_a_js_testnet", 0) {
        return;
    }
    runtime().block_on(async {
        let (_tn, boot) = js_testnet().await;
        one_role_each(boot, true, 0x11, 0x12).await;
        one_role_each(boot, false, 0x13, 0x14).await;
    });
}

#[test]
fn server_and_client_roles_on_a_rust_testnet() {
    if common::netns::run_inside("server_and_client_roles_on_a_rust_testnet", 0) {
        return;
    }
    runtime().block_on(async {
        let (_net, boot) = common::net::rust_testnet(8).await;
        one_role_each(boot, true, 0x15, 0x16).await;
        one_role_each(boot, false, 0x17, 0x18).await;
    });
}
