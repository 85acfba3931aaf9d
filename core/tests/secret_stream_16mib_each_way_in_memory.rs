//! Two Rust secret streams over an in-memory pipe (XX on the stream): 16 MiB each way at the
//! same time through the `AsyncRead`/`AsyncWrite` halves, and message boundaries through
//! `send`/`recv`.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use common::{Xorshift, INITIATOR_SEED, RESPONDER_SEED, WRITE_SIZES};
use p2pswarm::secret_stream::{Config, SecretStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BYTES: usize = 16 * 1024 * 1024;

async fn pump<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: S,
    send_seed: u32,
    recv_seed: u32,
) -> usize {
    let (mut rd, mut wr) = tokio::io::split(s);
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
    };
    let reader = async move {
        let mut gen = Xorshift::new(recv_seed);
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.expect("read");
        assert_eq!(got.len(), BYTES);
        assert!(got == gen.bytes(BYTES), "corrupted data");
        got.len()
    };
    tokio::join!(writer, reader).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_each_way_concurrently() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (a, b) = tokio::join!(
        SecretStream::handshake(a, Config::new(true)),
        SecretStream::handshake(b, Config::new(false))
    );
    let (a, b) = (a.expect("initiator"), b.expect("responder"));
    assert_eq!(a.handshake_hash(), b.handshake_hash());
    assert_eq!(a.remote_public_key(), b.public_key());
    let (x, y) = tokio::join!(
        tokio::spawn(pump(a, INITIATOR_SEED, RESPONDER_SEED)),
        tokio::spawn(pump(b, RESPONDER_SEED, INITIATOR_SEED))
    );
    assert_eq!((x.expect("a"), y.expect("b")), (BYTES, BYTES));
}

#[tokio::test]
async fn message_boundaries_are_kept() {
    let (a, b) = tokio::io::duplex(1024);
    let (a, b) = tokio::join!(
        SecretStream::handshake(a, Config::new(true)),
        SecretStream::handshake(b, Config::new(false))
    );
    let (mut a, mut b) = (a.expect("a"), b.expect("b"));
    let msgs: Vec<Vec<u8>> = vec![b"one".to_vec(), vec![], vec![7; 5000], b"last".to_vec()];
    let sender = async {
        for m in &msgs {
            a.send(m).await.expect("send");
        }
        a.end().await.expect("end");
    };
    let receiver = async {
        let mut got = Vec::new();
        while let Some(m) = b.recv().await.expect("recv") {
            got.push(m);
        }
        got
    };
    let ((), got) = tokio::join!(sender, receiver);
    assert_eq!(got, msgs);
}
