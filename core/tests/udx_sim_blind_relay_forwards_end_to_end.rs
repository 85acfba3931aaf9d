//! A blind relay on the in-memory network: peers A and B each connect a stream to relay R, which
//! joins its two streams with `Socket::relay`. Data, acks and END flow end to end through R
//! (only the stream id is rewritten); a DESTROY from A resets B and tears the relay pair down.

#![allow(clippy::panic, clippy::too_many_lines)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2pswarm::testing::{LinkConfig, SimNet};
use p2pswarm::udx::{Remote, Socket, SocketEvent, StreamConfig, StreamEvent, UdxError};

struct Net {
    sim: SimNet,
    nodes: Vec<(SocketAddr, Socket)>,
    buf: Vec<u8>,
}

impl Net {
    fn step(&mut self) -> bool {
        let now = self.sim.now();
        for (addr, s) in &mut self.nodes {
            while let Some(t) = s.poll_transmit(now, &mut self.buf) {
                self.sim.send(*addr, t.dest, &self.buf);
            }
        }
        let next = self
            .nodes
            .iter()
            .filter_map(|(_, s)| s.poll_timeout())
            .chain(self.sim.next_arrival())
            .min();
        let Some(t) = next else { return false };
        self.sim.advance_to(t);
        let now = self.sim.now();
        while let Some((from, to, d)) = self.sim.pop_due() {
            if let Some((_, s)) = self.nodes.iter_mut().find(|(a, _)| *a == to) {
                s.handle_datagram(now, from, &d);
            }
        }
        for (_, s) in &mut self.nodes {
            s.handle_timeout(now);
        }
        true
    }

    fn events(&mut self, i: usize) -> Vec<(u32, StreamEvent)> {
        std::iter::from_fn(|| self.nodes[i].1.poll_event())
            .map(|SocketEvent::Stream(id, e)| (id, e))
            .collect()
    }
}

#[test]
fn relay_carries_a_stream_and_propagates_destroy() {
    let start = Instant::now();
    let (a, r, b): (SocketAddr, SocketAddr, SocketAddr) = (
        "10.0.0.1:1".parse().expect("a"),
        "10.0.0.9:9".parse().expect("r"),
        "10.0.0.2:2".parse().expect("b"),
    );
    let mut net = Net {
        sim: SimNet::new(start, 3, LinkConfig::default()),
        nodes: Vec::new(),
        buf: Vec::new(),
    };
    let set_loss = |net: &mut Net, loss: f64| {
        for (x, y) in [(a, r), (r, a), (b, r), (r, b)] {
            net.sim.set_link(
                x,
                y,
                LinkConfig {
                    loss,
                    ..LinkConfig::default()
                },
            );
        }
    };
    set_loss(&mut net, 0.02);
    let cfg = StreamConfig::default;
    let mut sa = Socket::new();
    sa.create_stream(start, 1, cfg()).expect("a");
    sa.connect(start, 1, Remote { id: 11, addr: r })
        .expect("connect");
    let mut sr = Socket::new();
    sr.create_stream(start, 11, cfg()).expect("r1");
    sr.create_stream(start, 12, cfg()).expect("r2");
    sr.connect(start, 11, Remote { id: 1, addr: a })
        .expect("r1 connect");
    sr.connect(start, 12, Remote { id: 2, addr: b })
        .expect("r2 connect");
    sr.relay(11, 12).expect("relay");
    let mut sb = Socket::new();
    sb.create_stream(start, 2, cfg()).expect("b");
    sb.connect(start, 2, Remote { id: 12, addr: r })
        .expect("connect");
    net.nodes = vec![(a, sa), (r, sr), (b, sb)];

    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let s = net.nodes[0].1.stream_mut(1).expect("a stream");
    s.write(data.clone()).expect("write");
    s.end().expect("end");
    let mut got = Vec::new();
    let mut ended = false;
    for _ in 0..200_000 {
        if !net.step() {
            break;
        }
        while let Some(chunk) = net.nodes[2]
            .1
            .stream_mut(2)
            .and_then(p2pswarm::udx::Stream::read)
        {
            got.extend_from_slice(&chunk);
        }
        ended |= net.events(2).iter().any(|(_, e)| *e == StreamEvent::End);
        if ended && got.len() == data.len() {
            break;
        }
        assert!(
            net.sim.now() - start < Duration::from_secs(120),
            "relay transfer stalled"
        );
    }
    assert_eq!(got, data, "bytes through the relay");
    assert!(ended);
    // The relay itself never delivers or acknowledges: its streams hold no data.
    assert_eq!(
        net.nodes[1]
            .1
            .stream(11)
            .map(p2pswarm::udx::Stream::readable),
        Some(0)
    );

    // A destroys: B is reset, the relay pair is torn down without sending anything itself.
    // (DESTROY is sent once and never retransmitted, so this part runs without loss.)
    set_loss(&mut net, 0.0);
    net.nodes[0].1.stream_mut(1).expect("a").destroy();
    let mut b_result = None;
    let mut relay_closed = 0;
    for _ in 0..10_000 {
        if !net.step() {
            break;
        }
        for (_, e) in net.events(2) {
            if let StreamEvent::Closed(r) = e {
                b_result = Some(r);
            }
        }
        relay_closed += net
            .events(1)
            .iter()
            .filter(|(_, e)| matches!(e, StreamEvent::Closed(_)))
            .count();
        if b_result.is_some() && relay_closed == 2 {
            break;
        }
    }
    assert_eq!(b_result, Some(Err(UdxError::Reset)));
    assert_eq!(relay_closed, 2, "both relay streams closed");
}
