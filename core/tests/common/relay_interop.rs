//! Helpers of the blind-relay interop tests (JS hyperdht 6.34 + blind-relay 1.6.1 processes
//! driven from Rust inside a network namespace).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Stdio;
use std::time::Duration;

use p2pswarm::crypto::{KeyPair, PublicKey};
use p2pswarm::dht::{Connection, Dht};
use p2pswarm::rpc::driver::DhtConfig;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::require_js;

/// Bytes each way.
pub const N: usize = 4 << 20;

/// The byte pattern `hyperdht-connect.js` writes and checks.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + (i >> 11)) & 0xff) as u8).collect()
}

/// Output lines of a node process.
pub type Lines = tokio::io::Lines<BufReader<ChildStdout>>;

/// Starts a script of the interop folder (killed on drop).
pub fn node(args: &[&str]) -> (Child, Lines) {
    let mut child = Command::new("node")
        .args(args)
        .current_dir(require_js())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, lines)
}

/// The next output line (90 s bound).
pub async fn line(lines: &mut Lines) -> String {
    tokio::time::timeout(Duration::from_secs(90), lines.next_line())
        .await
        .expect("js output in time")
        .expect("read")
        .expect("a line")
}

/// A JS hyperdht testnet (6 persistent nodes) and its bootstrap address.
pub async fn js_testnet() -> (Child, SocketAddrV4) {
    let (child, mut lines) = node(&["hyperdht-peer.js", "--testnet", "6"]);
    let ready = line(&mut lines).await;
    let boot = ready
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("{ready}"))
        .parse()
        .expect("addr");
    (child, boot)
}

/// A JS blind-relay server: the process, its output, its key and the addresses of its two DHT
/// sockets (a relayed stream runs to one of them).
pub async fn js_relay(boot: SocketAddrV4, seed: u8) -> (Child, Lines, PublicKey, [SocketAddr; 2]) {
    let (child, mut out) = node(&[
        "blind-relay-server.js",
        "--bootstrap",
        &boot.to_string(),
        "--seed",
        &p2pswarm::crypto::to_hex(&[seed; 32]),
    ]);
    let ready = line(&mut out).await;
    let mut parts = ready.split(' ');
    assert_eq!(parts.next(), Some("relay"), "{ready}");
    let pk = PublicKey(p2pswarm::crypto::parse_hex32(parts.next().expect("key")));
    let mut addr = || -> SocketAddr { parts.next().expect("addr").parse().expect("relay addr") };
    let addrs = [addr(), addr()];
    (child, out, pk, addrs)
}

/// A default (ephemeral, firewalled) Rust peer.
pub async fn rust_peer(boot: SocketAddrV4, seed: u8) -> Dht {
    let d = Dht::bind_with_key_pair(
        DhtConfig {
            bootstrap: vec![boot],
            host: Ipv4Addr::LOCALHOST,
            ..DhtConfig::default()
        },
        KeyPair::from_seed(&[seed; 32]),
    )
    .await
    .expect("bind");
    tokio::time::timeout(Duration::from_secs(30), d.ready())
        .await
        .expect("ready");
    d
}

/// Writes N pattern bytes while reading the peer's bytes to the end, and ends only after the
/// peer's END. JS hyperdht destroys a *relayed* raw stream as soon as its secret stream closes
/// (`connect.js`: the close handler destroys `c.rawStream`, which the relay path never hands
/// off), and its secret stream closes once it has our END and queued its own: ending first
/// would cut off whatever the JS side still had queued (seen as a reset 200-600 KiB before the
/// end of its data). The JS side ends as soon as it has written everything.
pub async fn exchange(conn: Connection) -> Vec<u8> {
    let data = pattern(N);
    let (mut rd, mut wr) = tokio::io::split(conn);
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    let ((), got) = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::join!(
            async {
                wr.write_all(&data).await.expect("write");
                // a dropped sender (the reader failed) ends too; the reader's panic reports it
                let _ = eof_rx.await;
                wr.shutdown().await.expect("end");
            },
            async {
                let mut v = Vec::new();
                let mut chunk = vec![0u8; 65536];
                loop {
                    match rd.read(&mut chunk).await {
                        Ok(0) => break,
                        Ok(n) => v.extend_from_slice(&chunk[..n]),
                        Err(e) => panic!("read failed after {} of {N} bytes: {e}", v.len()),
                    }
                }
                let _ = eof_tx.send(());
                v
            }
        )
    })
    .await
    .expect("transfer in time");
    got
}

/// A two-thread runtime; `RUST_LOG=p2pswarm=debug` logs the Rust side on stderr.
pub fn runtime() -> tokio::runtime::Runtime {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
