//! Live interop over loopback TCP: the Rust secret stream against the real
//! `@hyperswarm/secret-stream` 6.9.2 (`tests/interop/js/ss-peer.js`), Rust as initiator and as
//! responder, each side listening in turn; 16 MiB each way concurrently, every byte checked.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{require_js, Xorshift, INITIATOR_SEED, RESPONDER_SEED, WRITE_SIZES};
use p2pswarm::crypto::to_hex;
use p2pswarm::secret_stream::{Config, SecretStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

const BYTES: usize = 16 * 1024 * 1024;

async fn run(rust_initiator: bool, rust_listens: bool) {
    let dir = require_js();
    let js_role = if rust_initiator {
        "responder"
    } else {
        "initiator"
    };
    let mut cmd = Command::new("node");
    cmd.arg("ss-peer.js").args([
        "--role",
        js_role,
        "--bytes",
        &BYTES.to_string(),
        "--timeout-ms",
        "100000",
    ]);
    cmd.current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);

    let listener = if rust_listens {
        Some(TcpListener::bind("127.0.0.1:0").await.expect("bind"))
    } else {
        None
    };
    if let Some(l) = &listener {
        cmd.args(["--connect", &l.local_addr().expect("addr").to_string()]);
    } else {
        cmd.args(["--listen", "0"]);
    }
    let mut child = cmd.spawn().expect("spawn node");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();

    let tcp = if let Some(l) = listener {
        l.accept().await.expect("accept").0
    } else {
        let line = lines
            .next_line()
            .await
            .expect("read")
            .expect("listening line");
        let port = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .expect("connect")
    };
    tcp.set_nodelay(true).expect("nodelay");

    let stream = SecretStream::handshake(tcp, Config::new(rust_initiator))
        .await
        .expect("handshake with JS");
    let our_pk = stream.public_key().expect("pk").to_hex();
    let our_hash = to_hex(stream.handshake_hash().expect("hash"));
    let (mut rd, mut wr) = tokio::io::split(stream);

    let (send_seed, recv_seed) = if rust_initiator {
        (INITIATOR_SEED, RESPONDER_SEED)
    } else {
        (RESPONDER_SEED, INITIATOR_SEED)
    };
    let writer = async move {
        let mut gen = Xorshift::new(send_seed);
        let mut sent = 0;
        for size in WRITE_SIZES.iter().cycle() {
            if sent == BYTES {
                break;
            }
            let n = (*size).min(BYTES - sent);
            wr.write_all(&gen.bytes(n)).await.expect("write");
            sent += n;
        }
        wr.shutdown().await.expect("end");
        sent
    };
    let reader = async move {
        let mut gen = Xorshift::new(recv_seed);
        let mut buf = vec![0u8; 100_000];
        let mut want = vec![0u8; 100_000];
        let mut got = 0usize;
        loop {
            let n = rd.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            gen.fill(&mut want[..n]);
            if let Some(i) = (0..n).find(|&i| buf[i] != want[i]) {
                panic!("mismatch at offset {}", got + i);
            }
            got += n;
        }
        got
    };
    let (sent, got) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(writer, reader)
    })
    .await
    .expect("transfer timed out");
    assert_eq!(sent, BYTES);
    assert_eq!(got, BYTES, "received byte count");

    let mut out = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("js output")
        .expect("read")
    {
        out.push(line);
    }
    let status = child.wait().await.expect("wait");
    assert!(status.success(), "JS peer failed: {status} {out:?}");
    let open = out
        .iter()
        .find(|l| l.starts_with("open "))
        .expect("open line");
    assert_eq!(
        open,
        &format!("open {our_pk} {our_hash}"),
        "JS saw another key or hash"
    );
    assert!(
        out.contains(&format!("done sent={BYTES} received={BYTES}")),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_initiator_connects_to_js_responder() {
    run(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_responder_connects_to_rust_initiator() {
    run(true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_initiator_connects_to_rust_responder() {
    run(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_responder_connects_to_js_initiator() {
    run(false, false).await;
}
