//! Live interop with udx-native 1.21.3 (`tests/interop/js/udx-peer.js`), each case inside a fresh
//! network namespace: 64 MiB each way at once, half-close in both orders, destroy from either
//! side, stream messages, and a transfer under 5 % packet loss injected by nftables.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{require_js, Xorshift, INITIATOR_SEED, RESPONDER_SEED};
use p2pswarm::udx::{StreamConfig, UdxError, UdxSocket, UdxStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const RUST_ID: u32 = 7;
const JS_ID: u32 = 0xffff_fffe;

struct Js {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    port: u16,
}

async fn spawn_js(args: &[&str]) -> Js {
    let dir = require_js();
    let mut child = Command::new("node")
        .arg("udx-peer.js")
        .args([
            "--local-id",
            &JS_ID.to_string(),
            "--remote-id",
            &RUST_ID.to_string(),
            "--role",
            "b",
        ])
        .args(["--timeout-ms", "150000"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next_line().await.expect("read").expect("bound line");
    let port = first
        .strip_prefix("bound ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad line {first:?}"));
    Js { child, lines, port }
}

impl Js {
    async fn connect_to(&mut self, rust_port: u16) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin
            .write_all(format!("connect 127.0.0.1:{rust_port}\n").as_bytes())
            .await
            .expect("stdin");
        stdin.flush().await.expect("flush");
    }

    async fn finish(mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_secs(150), self.lines.next_line())
                .await
                .expect("js output")
        {
            out.push(line);
        }
        let status = self.child.wait().await.expect("wait");
        assert!(status.success(), "JS peer failed: {status} {out:?}");
        out
    }
}

async fn rust_side() -> (UdxSocket, UdxStream) {
    let sock = UdxSocket::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let stream = sock
        .create_stream(RUST_ID, StreamConfig::default())
        .expect("stream");
    (sock, stream)
}

async fn setup(js_args: &[&str]) -> (UdxSocket, UdxStream, Js) {
    let (sock, stream) = rust_side().await;
    let mut js = spawn_js(js_args).await;
    stream
        .connect(
            JS_ID,
            format!("127.0.0.1:{}", js.port).parse().expect("addr"),
        )
        .expect("connect");
    js.connect_to(sock.local_addr().port()).await;
    (sock, stream, js)
}

async fn send_all(wr: &mut (impl AsyncWriteExt + Unpin), n: usize) {
    let mut gen = Xorshift::new(INITIATOR_SEED);
    let mut sent = 0;
    while sent < n {
        let k = (100_000).min(n - sent);
        wr.write_all(&gen.bytes(k)).await.expect("write");
        sent += k;
    }
}

async fn recv_all(rd: &mut (impl AsyncReadExt + Unpin)) -> usize {
    let mut gen = Xorshift::new(RESPONDER_SEED);
    let mut buf = vec![0u8; 1 << 16];
    let mut want = vec![0u8; 1 << 16];
    let mut got = 0;
    loop {
        let n = rd.read(&mut buf).await.expect("read");
        if n == 0 {
            return got;
        }
        gen.fill(&mut want[..n]);
        assert!(buf[..n] == want[..n], "corrupted data near offset {got}");
        got += n;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Both directions at once; `rust_ends_first` orders the half-closes.
fn bulk(n: usize, rust_ends_first: bool) {
    runtime().block_on(async {
        let n_s = n.to_string();
        let mode = if rust_ends_first {
            "after-eof"
        } else {
            "immediate"
        };
        let (_sock, stream, js) = setup(&["--bytes", &n_s, "--end-mode", mode]).await;
        let t0 = Instant::now();
        let (mut rd, mut wr) = tokio::io::split(stream);
        let writer = async {
            send_all(&mut wr, n).await;
            if !rust_ends_first {
                // wait for the JS side's EOF first: it ends immediately after its writes
            }
            wr.shutdown().await.expect("end");
        };
        let ((), got) = tokio::time::timeout(Duration::from_secs(150), async {
            tokio::join!(writer, recv_all(&mut rd))
        })
        .await
        .expect("transfer timed out");
        assert_eq!(got, n);
        let stream = rd.unsplit(wr);
        let out = js.finish().await;
        assert!(
            out.contains(&format!("done sent={n} received={n} messages=0")),
            "{out:?}"
        );
        let secs = t0.elapsed().as_secs_f64();
        eprintln!("{} MiB each way with udx-native in {secs:.2}s", n >> 20);
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(30), stream.closed())
                .await
                .expect("close"),
            Ok(())
        );
    });
}

#[test]
fn bulk_64_mib_each_way_js_ends_first() {
    if common::netns::run_inside("bulk_64_mib_each_way_js_ends_first", 0) {
        return;
    }
    bulk(64 << 20, false);
}

#[test]
fn half_close_rust_ends_first() {
    if common::netns::run_inside("half_close_rust_ends_first", 0) {
        return;
    }
    bulk(4 << 20, true);
}

#[test]
fn transfer_under_five_percent_loss() {
    if common::netns::run_inside("transfer_under_five_percent_loss", 5) {
        return;
    }
    bulk(8 << 20, false);
}

#[test]
fn js_destroys_rust_sees_reset() {
    if common::netns::run_inside("js_destroys_rust_sees_reset", 0) {
        return;
    }
    runtime().block_on(async {
        let (_sock, stream, js) = setup(&[
            "--bytes",
            "0",
            "--recv-bytes",
            "100000000",
            "--end-mode",
            "after-eof",
            "--destroy-after-recv",
            "1000000",
        ])
        .await;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let writer = async {
            let mut gen = Xorshift::new(INITIATOR_SEED);
            for _ in 0..1000 {
                if wr.write_all(&gen.bytes(100_000)).await.is_err() {
                    return;
                }
            }
        };
        let reader = async {
            let mut buf = vec![0u8; 4096];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(e.kind()),
                }
            }
        };
        let ((), err) = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::join!(writer, reader)
        })
        .await
        .expect("reset");
        assert_eq!(err, Some(std::io::ErrorKind::ConnectionReset));
        let stream = rd.unsplit(wr);
        assert_eq!(stream.closed().await, Err(UdxError::Reset));
        let out = js.finish().await;
        assert!(out.iter().any(|l| l == "destroyed"), "{out:?}");
    });
}

#[test]
fn rust_destroys_js_sees_reset() {
    if common::netns::run_inside("rust_destroys_js_sees_reset", 0) {
        return;
    }
    runtime().block_on(async {
        let (_sock, stream, js) = setup(&["--bytes", "100000000", "--expect-reset"]).await;
        let mut stream = stream;
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        while got < 2_000_000 {
            got += stream.read(&mut buf).await.expect("read");
        }
        stream.destroy();
        let out = js.finish().await;
        assert!(
            out.iter().any(|l| l.starts_with("reset received=")),
            "{out:?}"
        );
        assert_eq!(stream.closed().await, Err(UdxError::Destroyed));
    });
}

#[test]
fn stream_messages_both_ways() {
    if common::netns::run_inside("stream_messages_both_ways", 0) {
        return;
    }
    runtime().block_on(async {
        let (_sock, stream, js) = setup(&[
            "--bytes",
            "1000000",
            "--recv-bytes",
            "0",
            "--messages",
            "20",
            "--echo-messages",
        ])
        .await;
        // Our messages are echoed back; JS also sends 20 of its own, interleaved with bulk data.
        for i in 0u32..20 {
            let mut m = i.to_le_bytes().to_vec();
            m.extend(std::iter::repeat_n(
                (i & 0xff) as u8,
                (i as usize * 37) % 2000,
            ));
            stream.send_message(&m).expect("send message");
        }
        let mut stream = stream;
        let mut received = 0;
        let messages = async {
            // 20 of JS's own plus our 20 echoed back, in any order
            while received < 40 {
                let Some(m) = stream.recv_message().await else {
                    break;
                };
                let i = u32::from_le_bytes(m[..4].try_into().expect("index"));
                assert!(i < 20, "message index {i}");
                assert_eq!(m.len(), 4 + (i as usize * 37) % 2000);
                assert!(m[4..].iter().all(|&b| b == (i & 0xff) as u8));
                received += 1;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), messages)
            .await
            .expect("messages (unreliable, but loopback loses none)");
        let got = recv_all(&mut stream).await;
        assert_eq!(got, 1_000_000);
        stream.shutdown().await.expect("end");
        let out = js.finish().await;
        assert!(out.iter().any(|l| l.starts_with("done ")), "{out:?}");
    });
}
