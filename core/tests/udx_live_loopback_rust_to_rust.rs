//! The tokio driver on real UDP sockets over loopback: 64 MiB each way at once between two Rust
//! UDX sockets, verified byte for byte; messages and raw datagrams share the port.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::time::{Duration, Instant};

use common::{Xorshift, INITIATOR_SEED, RESPONDER_SEED};
use p2pswarm::udx::{StreamConfig, UdxSocket, UdxStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BYTES: usize = 64 * 1024 * 1024;

async fn pump(stream: UdxStream, send_seed: u32, recv_seed: u32) -> (usize, UdxStream) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = async move {
        let mut gen = Xorshift::new(send_seed);
        let mut sent = 0;
        while sent < BYTES {
            let n = (256 * 1024).min(BYTES - sent);
            wr.write_all(&gen.bytes(n)).await.expect("write");
            sent += n;
        }
        wr.shutdown().await.expect("end");
        wr
    };
    let reader = async move {
        let mut gen = Xorshift::new(recv_seed);
        let mut buf = vec![0u8; 1 << 16];
        let mut want = vec![0u8; 1 << 16];
        let mut got = 0usize;
        loop {
            let n = rd.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            gen.fill(&mut want[..n]);
            assert!(buf[..n] == want[..n], "corrupted data near offset {got}");
            got += n;
        }
        (got, rd)
    };
    let (wr, (got, rd)) = tokio::join!(writer, reader);
    (got, rd.unsplit(wr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_mib_each_way() {
    let a = UdxSocket::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind a");
    let b = UdxSocket::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind b");
    let sa = a
        .create_stream(10, StreamConfig::default())
        .expect("stream a");
    let sb = b
        .create_stream(20, StreamConfig::default())
        .expect("stream b");
    sa.connect(20, b.local_addr()).expect("connect a");
    sb.connect(10, a.local_addr()).expect("connect b");

    // Raw datagrams and messages share the port with the stream.
    a.send_raw(b.local_addr(), b"not udx", None);
    let (from, raw) = tokio::time::timeout(Duration::from_secs(5), b.recv_raw())
        .await
        .expect("raw")
        .expect("open");
    assert_eq!((from, raw.as_slice()), (a.local_addr(), &b"not udx"[..]));
    sa.send_message(b"hello message").expect("send message");
    let msg = tokio::time::timeout(Duration::from_secs(5), sb.recv_message())
        .await
        .expect("message");
    assert_eq!(msg.as_deref(), Some(&b"hello message"[..]));

    let t0 = Instant::now();
    let (ra, rb) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(
            tokio::spawn(pump(sa, INITIATOR_SEED, RESPONDER_SEED)),
            tokio::spawn(pump(sb, RESPONDER_SEED, INITIATOR_SEED))
        )
    })
    .await
    .expect("transfer timed out");
    let ((got_a, sa), (got_b, sb)) = (ra.expect("a"), rb.expect("b"));
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "64 MiB each way in {secs:.2}s ({:.0} MB/s total); a stats {:?}",
        2.0 * BYTES as f64 / secs / 1e6,
        sa.stats()
    );
    assert_eq!((got_a, got_b), (BYTES, BYTES));
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(sa.closed(), sb.closed())
    })
    .await
    .expect("close");
    assert_eq!(closed, (Ok(()), Ok(())));
}

#[tokio::test]
async fn ipv6_dual_stack_socket_talks_to_ipv4_and_sends_low_ttl_datagrams() {
    let v6 = UdxSocket::bind("[::]:0".parse().expect("addr"))
        .await
        .expect("bind dual-stack");
    let v4 = UdxSocket::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind v4");
    let v6_addr: std::net::SocketAddr = format!("127.0.0.1:{}", v6.local_addr().port())
        .parse()
        .expect("addr");
    let s6 = v6.create_stream(1, StreamConfig::default()).expect("s6");
    let s4 = v4.create_stream(2, StreamConfig::default()).expect("s4");
    s6.connect(2, v4.local_addr()).expect("connect");
    s4.connect(1, v6_addr).expect("connect");
    let (mut s6, mut s4) = (s6, s4);
    s6.write_all(b"over a dual-stack socket")
        .await
        .expect("write");
    s6.shutdown().await.expect("end");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s4.read_to_end(&mut got))
        .await
        .expect("read")
        .expect("ok");
    assert_eq!(got, b"over a dual-stack socket");
    // Raw datagrams from the dual-stack socket arrive with a plain IPv4 source; a one-off TTL
    // (hole-punch probes use 5) does not disturb the socket's other traffic.
    v6.send_raw(v4.local_addr(), &[0], Some(5));
    let (from, data) = tokio::time::timeout(Duration::from_secs(5), v4.recv_raw())
        .await
        .expect("raw")
        .expect("open");
    assert_eq!((from, data), (v6_addr, vec![0]));
    s4.shutdown().await.expect("end");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s6.read_to_end(&mut rest))
        .await
        .expect("eof")
        .expect("ok");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), s6.closed())
            .await
            .expect("closed"),
        Ok(())
    );
}
