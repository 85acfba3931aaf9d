//! A stream started from a finished handshake (the hyperdht client path) puts its header on
//! the wire at once, before the application polls it, as the JS stream does on start: a
//! hyperdht server's UDX stream accepts the client's first packet and binds to its path, and JS
//! drops a server stream that saw no packet within 10 s, silently. Before this, a Rust client
//! that a swarm had not handed to a reader yet sent nothing, so the JS server dropped it while
//! the Rust side counted a live connection (the flaky duplicate-pair interop test). Real UDX
//! sockets on loopback.

#![allow(clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use p2pswarm::crypto::{ns, KeyPair};
use p2pswarm::noise::{Handshake, HandshakeResult, Pattern};
use p2pswarm::secret_stream::{Config, SecretStream};
use p2pswarm::udx::{StreamConfig, UdxSocket};

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

#[tokio::test]
async fn unpolled_client_binds_the_server_stream_with_its_header() {
    let (ci, si) = ik_pair();
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server_sock = UdxSocket::bind(lo).await.expect("bind server");
    let client_sock = UdxSocket::bind(lo).await.expect("bind client");
    let server_raw = server_sock
        .create_stream(11, StreamConfig::default())
        .expect("server stream");
    server_raw.accept_first_packet(22).expect("accept");
    let client_raw = client_sock
        .create_stream(22, StreamConfig::default())
        .expect("client stream");
    client_raw
        .connect(11, server_sock.local_addr())
        .expect("connect");

    // Held, never polled, like a swarm connection waiting in the event queue.
    let mut client = SecretStream::from_handshake(client_raw, ci, &Config::default());

    let mut bound = None;
    for _ in 0..1000 {
        bound = server_raw.remote();
        if bound.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let remote = bound.expect("the client's header reached the server and bound its stream");
    assert_eq!(remote.id, 22);
    assert_eq!(remote.addr, client_sock.local_addr());

    // The header was the real one: the bound server stream decrypts the client's messages.
    let mut server = SecretStream::from_handshake(server_raw, si, &Config::default());
    client.send(b"after the header").await.expect("send");
    let got = tokio::time::timeout(Duration::from_secs(10), server.recv())
        .await
        .expect("message in time")
        .expect("recv");
    assert_eq!(got, Some(b"after the header".to_vec()));
}
