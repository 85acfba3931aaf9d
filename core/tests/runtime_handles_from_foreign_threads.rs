//! The runtime thread and handle layer (`p2pswarm::runtime`) as the bindings use it: calls from
//! threads that are not the runtime thread, awaited on a foreign executor (a separate tokio
//! runtime stands in for asyncio / napi / uniffi) or blocked on; events through
//! `next_event().await`, the blocking pull and a handler on the runtime thread (where blocking
//! waits are refused); idempotent shutdown that closes the queues.
#![allow(clippy::panic, clippy::too_many_lines)]

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use p2pswarm::runtime::{Error, Event, JoinOptions, Next, Runtime, SwarmOptions};

fn opts(boot: std::net::SocketAddrV4, seed: u8) -> SwarmOptions {
    SwarmOptions {
        seed: Some([seed; 32]),
        bootstrap: Some(vec![boot]),
        host: Some(Ipv4Addr::LOCALHOST),
        ..SwarmOptions::new()
    }
}

#[test]
fn two_swarms_through_handles_awaited_on_a_foreign_executor() {
    let rt = Runtime::new().expect("runtime");
    assert!(!rt.on_runtime_thread());
    let qa = rt.event_queue().expect("queue");
    let qb = rt.event_queue().expect("queue");
    // Blocking calls from this (foreign) thread.
    let net = rt.testnet(4).wait().expect("alive").expect("testnet");
    let a = rt
        .swarm(opts(net.bootstrap(), 1), &qa)
        .wait()
        .expect("alive")
        .expect("a");
    let b = rt
        .swarm(opts(net.bootstrap(), 2), &qb)
        .wait()
        .expect("alive")
        .expect("b");
    assert_ne!(a.id(), b.id());

    // Async calls awaited on another executor.
    let foreign = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("foreign executor");
    foreign.block_on(async {
        let topic = [7u8; 32];
        let da = a
            .join(
                topic,
                JoinOptions {
                    server: true,
                    client: false,
                },
            )
            .await
            .expect("alive")
            .expect("join");
        assert_eq!(da.topic(), topic);
        assert!(da.flushed().await.expect("alive"));
        let _db = b
            .join(
                topic,
                JoinOptions {
                    server: false,
                    client: true,
                },
            )
            .await
            .expect("alive")
            .expect("join");
        assert!(b.flush().await.expect("alive"));

        // One connection each; the client's peer info names the topic.
        let next_conn = |q: p2pswarm::runtime::EventQueue| async move {
            loop {
                let ev = tokio::time::timeout(Duration::from_secs(20), q.next_event())
                    .await
                    .expect("event in time")
                    .expect("queue open");
                if let Event::Connection { conn, peer, .. } = ev {
                    return (conn, peer);
                }
            }
        };
        let (ca, _) = next_conn(qa.clone()).await;
        let (cb, peer) = next_conn(qb.clone()).await;
        assert_eq!(ca.remote_public_key(), b.public_key());
        assert_eq!(cb.remote_public_key(), a.public_key());
        assert_eq!(peer.expect("swarm peer info").topics, vec![topic]);
        assert_eq!(ca.handshake_hash(), cb.handshake_hash());

        // Data: an awaited write one way, a fire-and-forget write the other.
        ca.write(b"from a".to_vec())
            .await
            .expect("alive")
            .expect("write");
        cb.write_nowait(b"from b".to_vec()).expect("write");
        for (q, want, id) in [
            (&qb, &b"from a"[..], cb.id()),
            (&qa, &b"from b"[..], ca.id()),
        ] {
            let mut got = Vec::new();
            while got.len() < want.len() {
                match tokio::time::timeout(Duration::from_secs(10), q.next_event())
                    .await
                    .expect("data in time")
                    .expect("open")
                {
                    Event::Data { conn, data } if conn == id => got.extend(data),
                    _ => {}
                }
            }
            assert_eq!(got, want);
        }
        assert_eq!(a.connections(), 1);
        assert_eq!(b.connections(), 1);
        a.destroy().await.expect("alive");
        b.destroy().await.expect("alive");
    });

    // A handler runs on the runtime thread, where blocking waits are refused.
    let seen: Arc<Mutex<Vec<Result<bool, Error>>>> = Arc::default();
    let (rt2, a2, seen2) = (rt.clone(), a.clone(), seen.clone());
    qa.set_handler(Some(Box::new(move |ev| {
        let on_rt = rt2.on_runtime_thread();
        let r = a2.flush().wait();
        seen2
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(r.map(|_| on_rt));
        Err(ev) // declined: the event goes to the queue and the handler is removed
    })));
    let q = qa.clone();
    rt.call(async move { q.push(Event::Update { source: 0 }) })
        .wait()
        .expect("alive");
    assert!(!qa.has_handler());
    assert!(matches!(
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .first(),
        Some(Err(Error::WouldDeadlock))
    ));
    assert!(matches!(qa.try_next(), Next::Event(_)));

    // Shutdown: idempotent, queues close, calls report Closed.
    rt.shutdown();
    rt.shutdown();
    assert!(qa.is_closed() && qb.is_closed());
    while let Next::Event(_) = qb.next_blocking(Some(Duration::from_millis(10))) {}
    assert!(matches!(qb.next_blocking(None), Next::Closed));
    assert!(matches!(a.flush().wait(), Err(Error::Closed)));
    drop(net);
}
