//! One UDP socket's worth of UDX: streams routed by id, raw datagrams beside them, relaying
//! (spec `udx.md` §2.3, §2.5, §5.2, §6).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::packet::{Packet, FLAG_DESTROY};
use super::stream::{Remote, Stream, StreamConfig, StreamEvent};
use super::UdxError;

/// What became of an incoming datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram {
    /// Consumed by a stream (or dropped by a stream's firewall, or relayed).
    Stream(u32),
    /// Not UDX, or for an unknown or closed stream: the caller's (DHT messages, punch probes).
    Raw,
}

/// What the socket reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEvent {
    /// An event of stream `id`.
    Stream(u32, StreamEvent),
}

/// A datagram to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketTransmit {
    /// Destination.
    pub dest: SocketAddr,
    /// IP TTL for this datagram only (hole-punch probes); `None` = the socket's default.
    pub ttl: Option<u8>,
}

#[derive(Debug)]
struct Entry {
    stream: Stream,
    /// Accept the first packet while unconnected and connect to its source with this peer id.
    auto_connect: Option<u32>,
    /// Forward every packet to this stream's peer instead of processing it.
    relay_to: Option<u32>,
}

impl Entry {
    /// Connects an unconnected stream waiting for its first packet to that packet's source.
    /// Whether the stream is connected now.
    fn connect_to_first_packet(&mut self, now: Instant, from: SocketAddr) -> bool {
        if self.stream.remote().is_none() {
            if let Some(id) = self.auto_connect.take() {
                self.stream.connect(now, Remote { id, addr: from });
            }
        }
        self.stream.remote().is_some()
    }
}

/// The UDX streams of one socket.
#[derive(Debug, Default)]
pub struct Socket {
    streams: HashMap<u32, Entry>,
    order: Vec<u32>,
    cursor: usize,
    raw_out: VecDeque<(SocketAddr, Option<u8>, Vec<u8>)>,
    events: VecDeque<SocketEvent>,
}

impl Socket {
    /// An empty socket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a stream with local id `id`.
    pub fn create_stream(
        &mut self,
        now: Instant,
        id: u32,
        cfg: StreamConfig,
    ) -> Result<(), UdxError> {
        if self.streams.contains_key(&id) {
            return Err(UdxError::IdInUse(id));
        }
        self.streams.insert(
            id,
            Entry {
                stream: Stream::new(now, id, cfg),
                auto_connect: None,
                relay_to: None,
            },
        );
        self.order.push(id);
        Ok(())
    }

    /// Whether a stream id is taken.
    pub fn has_stream(&self, id: u32) -> bool {
        self.streams.contains_key(&id)
    }

    /// Number of streams (closed ones linger through TIME_WAIT).
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// A stream, for writing, reading and inspection.
    pub fn stream_mut(&mut self, id: u32) -> Option<&mut Stream> {
        self.streams.get_mut(&id).map(|e| &mut e.stream)
    }

    /// A stream, read-only.
    pub fn stream(&self, id: u32) -> Option<&Stream> {
        self.streams.get(&id).map(|e| &e.stream)
    }

    /// Connects stream `id` to its peer.
    pub fn connect(&mut self, now: Instant, id: u32, remote: Remote) -> Result<(), UdxError> {
        let e = self
            .streams
            .get_mut(&id)
            .ok_or(UdxError::UnknownStream(id))?;
        e.stream.connect(now, remote);
        Ok(())
    }

    /// Lets an unconnected stream accept its first packet from anywhere and connect to that
    /// source with peer id `remote_id` (how a hyperdht server learns the client's path).
    pub fn accept_first_packet(&mut self, id: u32, remote_id: u32) -> Result<(), UdxError> {
        let e = self
            .streams
            .get_mut(&id)
            .ok_or(UdxError::UnknownStream(id))?;
        e.auto_connect = Some(remote_id);
        Ok(())
    }

    /// Relays: every packet arriving for stream `a` goes to stream `b`'s peer with `b`'s peer id,
    /// and the other way round (a blind relay: no acks, no decryption).
    pub fn relay(&mut self, a: u32, b: u32) -> Result<(), UdxError> {
        for (x, y) in [(a, b), (b, a)] {
            self.streams
                .get_mut(&x)
                .ok_or(UdxError::UnknownStream(x))?
                .relay_to = Some(y);
        }
        Ok(())
    }

    /// Queues a raw (non-UDX) datagram, optionally with a one-off TTL.
    pub fn send_raw(&mut self, dest: SocketAddr, data: Vec<u8>, ttl: Option<u8>) {
        self.raw_out.push_back((dest, ttl, data));
    }

    /// Routes an incoming datagram.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Datagram {
        let Some(id) = super::packet::peek_id(datagram) else {
            return Datagram::Raw;
        };
        let Some(entry) = self.streams.get_mut(&id) else {
            return Datagram::Raw;
        };
        if entry.stream.is_closed() && entry.stream.is_finished(now) {
            return Datagram::Raw;
        }
        if let Some(other) = entry.relay_to {
            // a relay stream learns its peer's path from the first packet (blind-relay's
            // firewall hook connects it), then forwards everything
            if !entry.connect_to_first_packet(now, from) {
                return Datagram::Stream(id);
            }
            self.forward(id, other, datagram);
            return Datagram::Stream(id);
        }
        let Some(pkt) = Packet::parse(datagram) else {
            return Datagram::Stream(id);
        };
        // A stream that stays unconnected still takes packets in (as libudx does): a peer
        // paired through a blind relay may send before our own pairing reply arrives, and its
        // first window must not wait a whole RTO for retransmission. Data is buffered and
        // acknowledged once the stream connects; nothing is sent before.
        entry.connect_to_first_packet(now, from);
        entry.stream.handle_packet(now, &pkt);
        self.collect(id);
        Datagram::Stream(id)
    }

    fn forward(&mut self, from_id: u32, to_id: u32, datagram: &[u8]) {
        let Some(target) = self.streams.get(&to_id).and_then(|e| e.stream.remote()) else {
            return;
        };
        if datagram.len() < 8 {
            return;
        }
        let mut out = datagram.to_vec();
        out[4..8].copy_from_slice(&target.id.to_le_bytes());
        self.raw_out.push_back((target.addr, None, out));
        if datagram[2] & FLAG_DESTROY != 0 {
            for id in [from_id, to_id] {
                if let Some(e) = self.streams.get_mut(&id) {
                    e.relay_to = None;
                    e.stream.destroy_silently();
                }
                self.collect(id);
            }
        }
    }

    fn collect(&mut self, id: u32) {
        if let Some(e) = self.streams.get_mut(&id) {
            while let Some(ev) = e.stream.poll_event() {
                self.events.push_back(SocketEvent::Stream(id, ev));
            }
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SocketEvent> {
        if self.events.is_empty() {
            let ids: Vec<u32> = self.order.clone();
            for id in ids {
                self.collect(id);
            }
        }
        self.events.pop_front()
    }

    /// Writes the next datagram into `out` and says where it goes.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<SocketTransmit> {
        if let Some((dest, ttl, data)) = self.raw_out.pop_front() {
            out.clear();
            out.extend_from_slice(&data);
            return Some(SocketTransmit { dest, ttl });
        }
        let n = self.order.len();
        for k in 0..n {
            let idx = (self.cursor + k) % n;
            let id = self.order[idx];
            let Some(e) = self.streams.get_mut(&id) else {
                continue;
            };
            if e.relay_to.is_some() {
                continue; // relay streams only forward
            }
            if let Some(t) = e.stream.poll_transmit(now, out) {
                self.cursor = (idx + 1) % n;
                return Some(SocketTransmit {
                    dest: t.dest,
                    ttl: None,
                });
            }
        }
        None
    }

    /// The earliest timer of any stream.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(|e| e.stream.poll_timeout())
            .min()
    }

    /// Runs expired timers and forgets streams that are finished.
    pub fn handle_timeout(&mut self, now: Instant) {
        let ids: Vec<u32> = self.order.clone();
        for id in ids {
            if let Some(e) = self.streams.get_mut(&id) {
                if e.stream.poll_timeout().is_some_and(|t| now >= t) {
                    e.stream.handle_timeout(now);
                }
            }
            self.collect(id);
        }
        self.reap(now);
    }

    /// Forgets streams that closed (and finished their TIME_WAIT) whose events were taken.
    fn reap(&mut self, now: Instant) {
        let before = self.order.len();
        let streams = &mut self.streams;
        self.order.retain(|id| {
            let done = streams.get(id).is_none_or(|e| e.stream.is_finished(now));
            if done {
                streams.remove(id);
            }
            !done
        });
        if self.order.len() != before {
            self.cursor = 0;
        }
    }

    /// Removes a stream at once (its id becomes free).
    pub fn remove_stream(&mut self, id: u32) {
        self.streams.remove(&id);
        self.order.retain(|x| *x != id);
        self.cursor = 0;
    }
}
