//! Streams started from a finished IK handshake (the hyperdht path): header frames only, the
//! 5 s keep-alive of hyperdht on an idle stream (silently filtered by the peer), and the
//! inactivity timeout when the peer goes silent. Runs on tokio's paused clock.

#![allow(clippy::panic, clippy::too_many_lines)]

use std::time::Duration;

use p2pswarm::crypto::{ns, KeyPair};
use p2pswarm::noise::{Handshake, HandshakeResult, Pattern};
use p2pswarm::secret_stream::{Config, Error, SecretStream};
use tokio::io::AsyncReadExt;

fn ik_pair() -> (HandshakeResult, HandshakeResult) {
    let server = KeyPair::generate();
    let mut i = Handshake::new(
        Pattern::IK,
        true,
        KeyPair::generate(),
        &ns::PEER_HANDSHAKE,
        Some(*server.public_key()),
    )
    .expect("client");
    let mut r =
        Handshake::new(Pattern::IK, false, server, &ns::PEER_HANDSHAKE, None).expect("server");
    r.read_message(&i.write_message(b"client payload").expect("m1"))
        .expect("server reads");
    i.read_message(&r.write_message(b"server payload").expect("m2"))
        .expect("client reads");
    (
        i.finish().expect("client done"),
        r.finish().expect("server done"),
    )
}

#[tokio::test(start_paused = true)]
async fn premade_handshake_keep_alive_and_timeout() {
    let (ci, si) = ik_pair();
    let hash = ci.hash;
    let ka = Config {
        keep_alive: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let (a, b) = tokio::io::duplex(1 << 16);
    let mut client = SecretStream::from_handshake(a, ci, &ka);
    let mut server = SecretStream::from_handshake(b, si, &ka);
    assert_eq!(client.handshake_hash(), Some(&hash));
    assert!(client.is_initiator() && !server.is_initiator());

    client.send(b"hello").await.expect("send");
    assert_eq!(server.recv().await.expect("recv"), Some(b"hello".to_vec()));

    // Both idle for 21 s while the server waits for a message: keep-alives flow both ways
    // (4 from the client's side), and none surfaces as a message.
    let before = client.engine().raw_bytes_written();
    let waiting = tokio::time::timeout(Duration::from_secs(21), server.recv());
    let client_reads = async {
        let mut buf = [0u8; 16];
        tokio::time::timeout(Duration::from_secs(21), client.read(&mut buf)).await
    };
    let (w, c) = tokio::join!(waiting, client_reads);
    assert!(w.is_err() && c.is_err(), "no message may arrive");
    let keep_alives = (client.engine().raw_bytes_written() - before) / 20;
    assert_eq!(
        keep_alives, 4,
        "one 20-byte keep-alive per 5 s of write idleness"
    );
    assert!(server.engine().raw_bytes_read() >= 4 * 17);
}

#[tokio::test(start_paused = true)]
async fn silent_peer_times_out() {
    let (ci, si) = ik_pair();
    let (a, b) = tokio::io::duplex(1 << 16);
    let cfg = Config {
        timeout: Some(Duration::from_secs(3)),
        ..Config::default()
    };
    let mut client = SecretStream::from_handshake(a, ci, &cfg);
    let _server = SecretStream::from_handshake(b, si, &Config::default()); // never polled: silent
    let started = tokio::time::Instant::now();
    let err = client.recv().await.expect_err("must time out");
    assert!(matches!(err, Error::TimedOut), "{err:?}");
    assert_eq!(started.elapsed().as_secs(), 3);
}
