//! HyperDHT storage interop with JS hyperdht 6.34 (`tests/interop/js/hyperdht-peer.js`), in
//! fresh network namespaces, on a JS storage network and on a Rust storage network: Rust
//! announce → JS lookup and JS announce → Rust lookup, unannounce seen by both, immutable and
//! mutable put/get in both directions, and a stale mutable put refused with SEQ_TOO_LOW.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Stdio;
use std::time::Duration;

use common::require_js;
use p2pswarm::crypto::{to_hex, KeyPair};
use p2pswarm::dht::{Dht, DhtError};
use p2pswarm::rpc::driver::DhtConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

struct Js {
    _child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    bootstrap: SocketAddrV4,
}

impl Js {
    async fn spawn(args: &[&str]) -> Js {
        let mut child = Command::new("node")
            .arg("hyperdht-peer.js")
            .args(args)
            .current_dir(require_js())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("js ready")
            .expect("read")
            .expect("line");
        let bootstrap = ready
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("unexpected {ready:?}"))
            .parse()
            .expect("addr");
        Js {
            _child: child,
            stdin,
            lines,
            bootstrap,
        }
    }

    async fn ask(&mut self, line: &str) -> String {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("stdin");
        self.stdin.flush().await.expect("flush");
        tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("js answer")
            .expect("read")
            .expect("line")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn rust_node(bootstrap: Option<SocketAddrV4>) -> Dht {
    let cfg = match bootstrap {
        Some(b) => DhtConfig {
            bootstrap: vec![b],
            host: HOST,
            ephemeral: Some(false),
            ..DhtConfig::default()
        },
        None => DhtConfig {
            bootstrap: Vec::new(),
            host: HOST,
            ephemeral: Some(false),
            firewalled: false,
            public_addr: Some(SocketAddrV4::new(HOST, 0)),
            ..DhtConfig::default()
        },
    };
    let d = Dht::bind(cfg).await.expect("bind");
    tokio::time::timeout(Duration::from_secs(30), d.ready())
        .await
        .expect("ready");
    d
}

async fn exercise(js: &mut Js, rust: &Dht) {
    let topic_r = [0x11u8; 32];
    let topic_j = [0x22u8; 32];
    let seed_r = [0x31u8; 32];
    let seed_j = [0x32u8; 32];
    let kp_r = KeyPair::from_seed(&seed_r);
    let pk_j = KeyPair::from_seed(&seed_j).public_key().to_hex();

    // announce / lookup both ways
    rust.announce(topic_r, &kp_r, &[])
        .await
        .expect("rust announce");
    let peers = js.ask(&format!("lookup {}", to_hex(&topic_r))).await;
    assert!(
        peers.contains(&kp_r.public_key().to_hex()),
        "JS lookup misses the Rust announce: {peers}"
    );
    assert_eq!(
        js.ask(&format!(
            "announce {} {}",
            to_hex(&topic_j),
            to_hex(&seed_j)
        ))
        .await,
        "announced"
    );
    let found = rust.lookup(topic_j).await.expect("rust lookup");
    assert!(
        found
            .iter()
            .any(|r| r.peers.iter().any(|p| p.public_key.to_hex() == pk_j)),
        "Rust lookup misses the JS announce"
    );

    // unannounce seen by both
    rust.unannounce(topic_r, &kp_r)
        .await
        .expect("rust unannounce");
    let peers = js.ask(&format!("lookup {}", to_hex(&topic_r))).await;
    assert!(
        !peers.contains(&kp_r.public_key().to_hex()),
        "JS still sees the Rust announce: {peers}"
    );
    assert_eq!(
        js.ask(&format!(
            "unannounce {} {}",
            to_hex(&topic_j),
            to_hex(&seed_j)
        ))
        .await,
        "unannounced"
    );
    let found = rust.lookup(topic_j).await.expect("rust lookup");
    assert!(
        found
            .iter()
            .all(|r| r.peers.iter().all(|p| p.public_key.to_hex() != pk_j)),
        "Rust still sees the JS announce"
    );

    // immutable both ways
    let target = rust.immutable_put(b"from rust").await.expect("rust iput");
    assert_eq!(
        js.ask(&format!("iget {}", to_hex(&target))).await,
        format!("value {}", to_hex(b"from rust"))
    );
    let ans = js.ask(&format!("iput {}", to_hex(b"from js"))).await;
    let hash: [u8; 32] = hex::decode(ans.strip_prefix("hash ").expect("hash"))
        .expect("hex")
        .try_into()
        .expect("32");
    assert_eq!(
        rust.immutable_get(hash).await.expect("rust iget"),
        b"from js"
    );

    // mutable both ways, one key, increasing seq; a stale put is refused
    let seed_m = [0x41u8; 32];
    let kp_m = KeyPair::from_seed(&seed_m);
    rust.mutable_put(&kp_m, b"rust v1", 1)
        .await
        .expect("rust mput");
    assert_eq!(
        js.ask(&format!("mget {} 0", kp_m.public_key().to_hex()))
            .await,
        format!("mvalue 1 {}", to_hex(b"rust v1"))
    );
    assert_eq!(
        js.ask(&format!("mput {} 2 {}", to_hex(&seed_m), to_hex(b"js v2")))
            .await,
        "mput ok"
    );
    let got = rust
        .mutable_get(kp_m.public_key(), 0)
        .await
        .expect("rust mget");
    assert_eq!((got.seq, got.value.as_slice()), (2, &b"js v2"[..]));
    // Nodes that got JS's seq 2 answer SEQ_TOO_LOW (17); a closest node that still holds our
    // seq 1 with another value answers SEQ_REUSED (16): both are a refusal of the stale put,
    // and which one is reported depends on which nodes form the closest set this time.
    let stale = rust.mutable_put(&kp_m, b"stale", 1).await;
    assert!(
        matches!(stale, Err(DhtError::MutableRefused(16 | 17))),
        "stale put must be refused with SEQ_REUSED or SEQ_TOO_LOW, got {stale:?}"
    );
}

#[test]
fn storage_ops_on_a_js_network() {
    if common::netns::run_inside("storage_ops_on_a_js_network", 0) {
        return;
    }
    runtime().block_on(async {
        let mut js = Js::spawn(&["--testnet", "8"]).await;
        let mut rust = Vec::new();
        for _ in 0..3 {
            rust.push(rust_node(Some(js.bootstrap)).await);
        }
        exercise(&mut js, &rust[1]).await;
        assert_eq!(js.ask("exit").await, "bye");
    });
}

#[test]
fn storage_ops_on_a_rust_network() {
    if common::netns::run_inside("storage_ops_on_a_rust_network", 0) {
        return;
    }
    runtime().block_on(async {
        let boot = rust_node(None).await;
        let addr = match boot.rpc().local_addr() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => panic!("ipv6"),
        };
        let mut rust = vec![boot];
        for _ in 0..7 {
            rust.push(rust_node(Some(addr)).await);
        }
        let mut js = Js::spawn(&["--bootstrap", &addr.to_string()]).await;
        exercise(&mut js, &rust[4]).await;
        assert_eq!(js.ask("exit").await, "bye");
    });
}
