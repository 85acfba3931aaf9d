//! A secret stream split with `tokio::io::split` and driven by two tasks (one reading, one
//! writing) never loses a wake-up. The stream's `poll_read` also flushes queued output, so a
//! reader task polling while the transport is full used to take the transport's write wake-up
//! away from the writer task: once the peer drained the transport, only the reader was woken,
//! and the writer, waiting for room, slept forever. Here the peer pauses reading while it
//! trickles small messages (so our reader keeps polling into the full transport), then reads
//! everything; the writer must finish. In-memory pipe (tokio duplex), several rounds.

#![allow(clippy::panic)]

use std::time::Duration;

use p2pswarm::secret_stream::{Config, SecretStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BYTES: usize = 2 * 1024 * 1024;

async fn round(seed: u8) {
    let (a, b) = tokio::io::duplex(8 * 1024);
    let (a, b) = tokio::join!(
        SecretStream::handshake(a, Config::new(true)),
        SecretStream::handshake(b, Config::new(false))
    );
    let (a, b) = (a.expect("initiator"), b.expect("responder"));
    let data: Vec<u8> = (0..BYTES).map(|i| (i as u8) ^ seed).collect();

    // A: a reader task and a writer task on the two halves.
    let (mut a_rd, mut a_wr) = tokio::io::split(a);
    let expected = data.clone();
    let writer = tokio::spawn(async move {
        a_wr.write_all(&expected).await.expect("write");
        a_wr.shutdown().await.expect("end");
    });
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        a_rd.read_to_end(&mut got).await.expect("read");
        got.len()
    });

    // B: trickles messages without reading (A's transport fills up), then reads it all.
    let (mut b_rd, mut b_wr) = tokio::io::split(b);
    for _ in 0..20 {
        b_wr.write_all(&[seed; 16]).await.expect("trickle");
        b_wr.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b_wr.shutdown().await.expect("end b");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), b_rd.read_to_end(&mut got))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "stalled: B received {} of {BYTES} bytes (the writer task was not woken)",
                got.len()
            )
        })
        .expect("read b");
    assert!(got == data, "data corrupted");
    tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .expect("writer finished")
        .expect("writer task");
    let n = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("reader finished")
        .expect("reader task");
    assert_eq!(n, 20 * 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_and_writer_tasks_on_one_stream_never_stall() {
    for seed in 0..5 {
        round(seed).await;
    }
}
