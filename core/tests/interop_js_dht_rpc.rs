//! Live interop with JS dht-rpc 6.27 (`tests/interop/js/dht-peer.js`), each case in a fresh
//! network namespace: Rust nodes join a JS network and JS nodes join a Rust network; both
//! become persistent and appear in each other's routing tables; FIND_NODE from either side
//! returns the same closest set; round-trip tokens issued by one side are accepted by the other
//! and bogus ones rejected; a JS commit query succeeds against Rust storage nodes.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Stdio;
use std::time::Duration;

use common::require_js;
use p2pswarm::crypto::to_hex;
use p2pswarm::rpc::driver::{DhtConfig, DhtNode};
use p2pswarm::rpc::message::errors;
use p2pswarm::testing::Rng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

struct Js {
    _child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    bootstrap: SocketAddrV4,
    nodes: Vec<(SocketAddrV4, String)>,
}

impl Js {
    async fn spawn(nodes: usize, bootstrap: Option<SocketAddrV4>) -> Js {
        let mut cmd = Command::new("node");
        cmd.arg("dht-peer.js").args(["--nodes", &nodes.to_string()]);
        if let Some(b) = bootstrap {
            cmd.args(["--bootstrap", &b.to_string()]);
        }
        let mut child = cmd
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
        let boot = ready
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("unexpected {ready:?}"))
            .parse()
            .expect("addr");
        let mut list = Vec::new();
        for _ in 0..nodes {
            let l = lines.next_line().await.expect("read").expect("node line");
            let mut parts = l.split_whitespace().skip(1);
            let addr = parts.next().expect("addr").parse().expect("addr");
            list.push((addr, parts.next().expect("id").to_string()));
        }
        Js {
            _child: child,
            stdin,
            lines,
            bootstrap: boot,
            nodes: list,
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

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("ipv6"),
    }
}

/// A Rust node that joins `bootstrap` and becomes persistent through the firewall check, and
/// answers application command 42 with "rs-ok" (with a token).
async fn rust_node(bootstrap: Vec<SocketAddrV4>, bootstrapper: bool) -> DhtNode {
    let cfg = if bootstrapper {
        DhtConfig {
            bootstrap: Vec::new(),
            host: HOST,
            ephemeral: Some(false),
            firewalled: false,
            public_addr: Some(SocketAddrV4::new(HOST, 0)),
            ..DhtConfig::default()
        }
    } else {
        DhtConfig {
            bootstrap,
            host: HOST,
            ephemeral: Some(false),
            ..DhtConfig::default()
        }
    };
    let node = DhtNode::bind(cfg).await.expect("bind");
    let mut incoming = node.take_incoming().expect("incoming");
    let h = node.clone();
    tokio::spawn(async move {
        while let Some(req) = incoming.recv().await {
            if req.request.command == 42 {
                h.reply(req.handle, Some(b"rs-ok".to_vec()), true, true);
            } else {
                h.reply_error(req.handle, errors::UNKNOWN_COMMAND);
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), node.ready())
        .await
        .expect("rust node bootstraps");
    node
}

fn closest_set(line: &str) -> BTreeSet<SocketAddrV4> {
    line.strip_prefix("closest ")
        .unwrap_or_else(|| panic!("unexpected {line:?}"))
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("addr"))
        .collect()
}

async fn check_finds_agree(js: &mut Js, rust: &DhtNode, seed: u64) {
    let mut rng = Rng::new(seed);
    for _ in 0..10 {
        let mut target = [0u8; 32];
        rng.fill(&mut target);
        let ours: BTreeSet<SocketAddrV4> = rust
            .find_node(target)
            .await
            .expect("rust find")
            .iter()
            .map(|r| r.from)
            .collect();
        let theirs = closest_set(&js.ask(&format!("find {}", to_hex(&target))).await);
        // Each side excludes itself from its own result; compare the rest.
        let me = v4(rust.local_addr());
        let theirs: BTreeSet<SocketAddrV4> = theirs.into_iter().filter(|a| *a != me).collect();
        let js0 = js.nodes[0].0;
        let ours: BTreeSet<SocketAddrV4> = ours.into_iter().filter(|a| *a != js0).collect();
        assert_eq!(
            ours,
            theirs,
            "closest sets differ for target {}",
            to_hex(&target)
        );
    }
}

async fn check_tokens(js: &mut Js, rust: &DhtNode) {
    // JS asks a Rust node: plain request, with the returned token, with a bogus token.
    let ans = js.ask(&format!("token {}", rust.local_addr())).await;
    assert_eq!(
        ans,
        format!("token 0 0 {}", errors::INVALID_TOKEN),
        "JS request to Rust with tokens"
    );
    // Rust asks a JS node the same way.
    let to = js.nodes[1].0;
    let (_, first) = rust
        .request(to, 42, false, Some([7; 32]), None, None)
        .await
        .expect("first");
    assert_eq!(first.value.as_deref(), Some(&b"js-ok"[..]));
    let token = first.token.expect("JS application replies carry a token");
    let (_, second) = rust
        .request(to, 42, false, Some([7; 32]), None, Some(token))
        .await
        .expect("second");
    assert_eq!(second.error, 0, "JS accepts the token it issued to us");
    let (_, bogus) = rust
        .request(to, 42, false, Some([7; 32]), None, Some([1; 32]))
        .await
        .expect("bogus");
    assert_eq!(bogus.error, errors::INVALID_TOKEN);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn rust_nodes_join_a_js_network() {
    if common::netns::run_inside("rust_nodes_join_a_js_network", 0) {
        return;
    }
    runtime().block_on(async {
        let mut js = Js::spawn(12, None).await;
        let mut rust = Vec::new();
        for _ in 0..4 {
            rust.push(rust_node(vec![js.bootstrap], false).await);
        }
        for r in &rust {
            assert!(
                !r.is_ephemeral() && !r.is_firewalled(),
                "Rust node became persistent"
            );
        }
        // Persistent Rust nodes enter JS routing tables.
        for r in &rust {
            let id = to_hex(&r.id());
            let mut has = 0;
            for _ in 0..20 {
                let ans = js.ask(&format!("has {id}")).await;
                has = ans
                    .strip_prefix("has ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if has > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            assert!(has > 0, "no JS table holds Rust node {id}");
        }
        check_finds_agree(&mut js, &rust[0], 1).await;
        check_tokens(&mut js, &rust[0]).await;
        assert!(
            js.ask(&format!("commit {}", to_hex(&rust[1].id())))
                .await
                .starts_with("commit ok"),
            "JS commit over a mixed network"
        );
        assert_eq!(js.ask("exit").await, "bye");
    });
}

#[test]
fn js_nodes_join_a_rust_network() {
    if common::netns::run_inside("js_nodes_join_a_rust_network", 0) {
        return;
    }
    runtime().block_on(async {
        let boot = rust_node(Vec::new(), true).await;
        let boot_addr = v4(boot.local_addr());
        let mut rust = vec![boot];
        for _ in 0..9 {
            rust.push(rust_node(vec![boot_addr], false).await);
        }
        let mut js = Js::spawn(6, Some(boot_addr)).await;
        for (addr, id) in &js.nodes {
            assert_ne!(
                id, "ephemeral",
                "JS node {addr} became persistent on a Rust network"
            );
        }
        // JS nodes enter Rust routing tables.
        for (addr, id_hex) in &js.nodes {
            let id: [u8; 32] = hex::decode(id_hex).expect("hex").try_into().expect("32");
            let mut seen = false;
            for _ in 0..20 {
                if rust.iter().any(|r| r.table_has(&id)) {
                    seen = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            assert!(seen, "no Rust table holds JS node {addr}");
        }
        check_finds_agree(&mut js, &rust[3], 2).await;
        check_tokens(&mut js, &rust[3]).await;
        // A JS commit whose closest nodes include Rust nodes: their tokens must be accepted.
        assert!(js
            .ask(&format!("commit {}", to_hex(&rust[5].id())))
            .await
            .starts_with("commit ok"));
        assert_eq!(js.ask("exit").await, "bye");
    });
}
