//! A stream that is not connected yet keeps the packets sent to it (as libudx does) and
//! acknowledges them as soon as it connects, so the sender's first window is not lost to a
//! full RTO. This is the blind-relay race: the relay pairs both halves, and the faster peer's
//! first packets reach the slower one before its own pairing reply has connected its stream.
//! Nothing is sent before the stream connects. Virtual clock, two sans-IO sockets.

#![allow(clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pswarm::udx::{Remote, Socket, StreamConfig};

const A_ID: u32 = 1;
const B_ID: u32 = 2;

/// Moves every datagram `from` has queued into `to`; returns how many moved.
fn deliver(now: Instant, from: &mut Socket, from_addr: SocketAddr, to: &mut Socket) -> usize {
    let mut buf = Vec::new();
    let mut n = 0;
    while from.poll_transmit(now, &mut buf).is_some() {
        to.handle_datagram(now, from_addr, &buf);
        n += 1;
    }
    n
}

#[test]
fn packets_before_connect_are_buffered_and_acked_on_connect() {
    let a_addr: SocketAddr = "127.0.0.1:1000".parse().expect("addr");
    let b_addr: SocketAddr = "127.0.0.1:2000".parse().expect("addr");
    let start = Instant::now();
    let mut a = Socket::new();
    let mut b = Socket::new();
    a.create_stream(start, A_ID, StreamConfig::default())
        .expect("create a");
    b.create_stream(start, B_ID, StreamConfig::default())
        .expect("create b");
    a.connect(
        start,
        A_ID,
        Remote {
            id: B_ID,
            addr: b_addr,
        },
    )
    .expect("connect a");
    let data: Vec<u8> = (0..8000u32).map(|i| (i % 251) as u8).collect();
    a.stream_mut(A_ID)
        .expect("a")
        .write(data.clone())
        .expect("write");

    // A's first window reaches B while B is still unconnected.
    let now = start + Duration::from_millis(5);
    assert!(
        deliver(now, &mut a, a_addr, &mut b) > 0,
        "A sends its window"
    );
    let mut buf = Vec::new();
    assert!(
        b.poll_transmit(now, &mut buf).is_none(),
        "an unconnected stream sends nothing"
    );
    assert_eq!(
        b.stream(B_ID).expect("b").readable(),
        data.len(),
        "B kept the data"
    );

    // B connects (its pairing reply came): its ACK covers everything, well before A's RTO.
    let now = start + Duration::from_millis(20);
    b.connect(
        now,
        B_ID,
        Remote {
            id: A_ID,
            addr: a_addr,
        },
    )
    .expect("connect b");
    assert!(deliver(now, &mut b, b_addr, &mut a) > 0, "B acknowledges");
    assert!(
        a.stream(A_ID).expect("a").is_flushed(),
        "A's data is acknowledged without a retransmission"
    );
    let mut got = vec![0u8; data.len() + 10];
    let (n, _) = b.stream_mut(B_ID).expect("b").read_into(&mut got);
    assert_eq!(&got[..n], &data[..], "B reads the bytes in order");
}
