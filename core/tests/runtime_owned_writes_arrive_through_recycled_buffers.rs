//! The runtime's zero-copy paths, as the Python binding uses them: 32 MiB written with
//! `Conn::write_nowait_owned` (buffers the runtime owns and drops once written, no copy) past
//! the write queue's high-water mark (refusals, then `Drain` once at most `WRITE_LOW_WATER`
//! bytes wait), received as data events whose buffers go back with `EventQueue::recycle` and
//! are read into again. Every byte arrives in order and every written buffer is released.
#![allow(clippy::panic, clippy::too_many_lines)]

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use p2pswarm::runtime::{
    Conn, Error, Event, EventQueue, JoinOptions, Next, Runtime, SwarmOptions, WRITE_LOW_WATER,
};

const PIECE: usize = 256 * 1024 + 17;
const PIECES: usize = 128;

fn opts(boot: std::net::SocketAddrV4, seed: u8) -> SwarmOptions {
    SwarmOptions {
        seed: Some([seed; 32]),
        bootstrap: Some(vec![boot]),
        host: Some(Ipv4Addr::LOCALHOST),
        ..SwarmOptions::new()
    }
}

fn byte_at(i: usize) -> u8 {
    (i % 251) as u8
}

/// An owned buffer that counts its drops.
struct Piece {
    bytes: Vec<u8>,
    dropped: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn connection(q: &EventQueue) -> Conn {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if let Next::Event(Event::Connection { conn, .. }) =
            q.next_blocking(Some(Duration::from_millis(200)))
        {
            return conn;
        }
    }
    panic!("no connection in 30 s");
}

#[test]
fn owned_writes_arrive_through_recycled_buffers() {
    let rt = Runtime::new().expect("runtime");
    let (qa, qb) = (
        rt.event_queue().expect("queue"),
        rt.event_queue().expect("queue"),
    );
    let net = rt.testnet(3).wait().expect("alive").expect("testnet");
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
    let topic = [9u8; 32];
    let server = JoinOptions {
        server: true,
        client: false,
    };
    let client = JoinOptions {
        server: false,
        client: true,
    };
    let da = a.join(topic, server).wait().expect("alive").expect("join");
    assert!(da.flushed().wait().expect("alive"));
    let _db = b.join(topic, client).wait().expect("alive").expect("join");
    let (ca, cb) = (connection(&qa), connection(&qb));

    let dropped = Arc::new(AtomicUsize::new(0));
    let total = PIECE * PIECES;
    let (mut written, mut got, mut refusals, mut drains, mut reused) = (0, 0usize, 0, 0, 0);
    let mut recycled: Vec<usize> = Vec::new(); // addresses of buffers handed back
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut waiting_drain = false;
    while got < total {
        assert!(Instant::now() < deadline, "stalled: {got} of {total} bytes");
        // The writer: as much as the queue takes, then wait for its Drain.
        while !waiting_drain && written < PIECES {
            let bytes = (0..PIECE).map(|i| byte_at(written * PIECE + i)).collect();
            let piece = Piece {
                bytes,
                dropped: dropped.clone(),
            };
            match cb.write_nowait_owned(piece) {
                Ok(()) => written += 1,
                Err(Error::WouldBlock) => {
                    refusals += 1;
                    assert!(
                        cb.queued_bytes() > 0,
                        "a write into an empty queue is taken"
                    );
                    waiting_drain = true;
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        while let Next::Event(ev) = qb.try_next() {
            if let Event::Drain { conn } = ev {
                assert_eq!(conn, cb.id());
                assert!(cb.queued_bytes() <= WRITE_LOW_WATER);
                drains += 1;
                waiting_drain = false;
            }
        }
        // The reader only starts once the writer was refused (the receiver stalls until then).
        if refusals == 0 && written < PIECES {
            continue;
        }
        match qa.next_blocking(Some(Duration::from_millis(20))) {
            Next::Event(Event::Data { conn, data }) => {
                assert_eq!(conn, ca.id());
                for (i, &byte) in data.iter().enumerate() {
                    assert_eq!(byte, byte_at(got + i), "byte {}", got + i);
                }
                got += data.len();
                if recycled.contains(&(data.as_ptr() as usize)) {
                    reused += 1;
                }
                recycled.push(data.as_ptr() as usize);
                qa.recycle(data);
            }
            Next::Event(Event::Close { error, .. }) => panic!("closed: {error:?}"),
            Next::Closed => panic!("queue closed"),
            Next::Event(_) | Next::Timeout => {}
        }
    }
    assert_eq!(got, total);
    assert!(
        refusals > 0 && drains > 0,
        "{refusals} refusals, {drains} drains"
    );
    assert!(reused > 0, "no read buffer was reused");
    // An awaited (empty) write completes after every earlier one: all owned buffers released
    // (the written ones on the runtime thread, the refused ones at once).
    cb.write(Vec::new()).wait().expect("alive").expect("flush");
    assert_eq!(dropped.load(Ordering::SeqCst), PIECES + refusals);
    rt.shutdown();
    drop(net);
}
