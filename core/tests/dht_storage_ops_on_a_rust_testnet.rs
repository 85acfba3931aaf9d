//! HyperDHT storage operations on a loopback network of Rust nodes: announce → lookup (from
//! another node), unannounce → gone; immutable put/get; mutable put/get with SEQ_TOO_LOW and
//! SEQ_REUSED refusals and a forged record ignored.

#![allow(clippy::panic, clippy::too_many_lines)]

mod common;

use std::net::SocketAddrV4;
use std::time::Duration;

use p2pswarm::crypto::KeyPair;
use p2pswarm::dht::messages::{commands, MutablePutRequest};
use p2pswarm::dht::sign::public_key_target;
use p2pswarm::dht::DhtError;
use p2pswarm::encoding::to_vec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_lookup_put_get() {
    let (net, _) = common::net::rust_testnet(10).await;
    let (a, b) = (&net[3], &net[7]);
    let topic = [0x42u8; 32];
    let server = KeyPair::from_seed(&[9; 32]);
    let relay: SocketAddrV4 = "1.2.3.4:5".parse().expect("addr");
    let stored = a
        .announce(topic, &server, &[relay])
        .await
        .expect("announce");
    assert!(stored >= 5, "announce stored on {stored} nodes");
    let found = b.lookup(topic).await.expect("lookup");
    assert!(
        found.iter().any(|r| r
            .peers
            .iter()
            .any(|p| p.public_key == *server.public_key() && p.relay_addresses == vec![relay])),
        "{found:?}"
    );
    let mut stream = b.lookup_stream(topic);
    let first = tokio::time::timeout(Duration::from_secs(10), stream.recv())
        .await
        .expect("stream")
        .expect("a reply");
    assert!(first
        .peers
        .iter()
        .any(|p| p.public_key == *server.public_key()));

    a.unannounce(topic, &server).await.expect("unannounce");
    let found = b.lookup(topic).await.expect("lookup");
    assert!(
        found
            .iter()
            .all(|r| r.peers.iter().all(|p| p.public_key != *server.public_key())),
        "still announced: {found:?}"
    );

    // immutable
    let target = a
        .immutable_put(b"hello immutable")
        .await
        .expect("immutable put");
    assert_eq!(
        b.immutable_get(target).await.expect("immutable get"),
        b"hello immutable"
    );
    assert_eq!(b.immutable_get([1; 32]).await, Err(DhtError::NotFound));

    // mutable
    let owner = KeyPair::from_seed(&[7; 32]);
    a.mutable_put(&owner, b"v1", 1).await.expect("put seq 1");
    a.mutable_put(&owner, b"v2", 2).await.expect("put seq 2");
    let got = b.mutable_get(owner.public_key(), 0).await.expect("get");
    assert_eq!((got.seq, got.value.as_slice()), (2, &b"v2"[..]));
    assert_eq!(
        a.mutable_put(&owner, b"old", 1).await,
        Err(DhtError::MutableRefused(17))
    );
    assert_eq!(
        a.mutable_put(&owner, b"other", 2).await,
        Err(DhtError::MutableRefused(16))
    );
    assert_eq!(
        b.mutable_get(owner.public_key(), 3).await,
        Err(DhtError::NotFound)
    );

    // A forged record (signed by another key) is ignored by storage nodes.
    let forger = KeyPair::from_seed(&[8; 32]);
    let forged = MutablePutRequest {
        public_key: *owner.public_key(),
        seq: 9,
        value: b"forged".to_vec(),
        signature: p2pswarm::dht::sign::sign_mutable(&forger, 9, b"forged"),
    };
    let target = public_key_target(owner.public_key());
    let (tx, rx) = b
        .rpc()
        .query(target, commands::MUTABLE_GET, false, Some(vec![0]), false);
    drop(tx);
    let closest = rx.await.expect("done").expect("closest");
    // Sent at once (a silent drop costs a 4 s timeout; tokens are valid for 7.5–15 s).
    let tasks: Vec<_> = closest
        .iter()
        .take(5)
        .map(|r| {
            let rpc = b.rpc().clone();
            let (from, token, value) = (r.from, r.token, to_vec(&forged));
            tokio::spawn(async move {
                rpc.request(
                    from,
                    commands::MUTABLE_PUT,
                    false,
                    Some(target),
                    Some(value),
                    token,
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let res = t.await.expect("task");
        assert!(res.is_err(), "a forged put got an answer: {res:?}");
    }
    let got = b.mutable_get(owner.public_key(), 0).await.expect("get");
    assert_eq!(got.value, b"v2");
    for d in &net {
        d.destroy();
    }
}
