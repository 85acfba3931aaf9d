//! Many dht-rpc nodes on the in-memory network: each node has a server and a client socket;
//! only nodes whose datagrams or timers are due are woken, so a thousand nodes stay cheap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use p2pswarm::rpc::node::{Node, NodeConfig, NodeEvent, SocketKind};
use p2pswarm::testing::{LinkConfig, SimNet};

pub struct Sim {
    pub net: SimNet,
    pub nodes: Vec<Node>,
    pub events: Vec<Vec<NodeEvent>>,
    addrs: HashMap<SocketAddrV4, (usize, SocketKind)>,
    wake: BinaryHeap<Reverse<(Instant, usize)>>,
    scheduled: Vec<Option<Instant>>,
    pub start: Instant,
}

pub fn server_addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, (i / 250) as u8, (i % 250) as u8 + 1, 1),
        10_000,
    )
}

pub fn client_addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(*server_addr(i).ip(), 20_000)
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(v) => v,
        SocketAddr::V6(_) => panic!("ipv6 in the dht sim"),
    }
}

impl Sim {
    pub fn new(seed: u64, link: LinkConfig) -> Self {
        let start = Instant::now();
        Self {
            net: SimNet::new(start, seed, link),
            nodes: Vec::new(),
            events: Vec::new(),
            addrs: HashMap::new(),
            wake: BinaryHeap::new(),
            scheduled: Vec::new(),
            start,
        }
    }

    pub fn now(&self) -> Instant {
        self.net.now()
    }

    /// Adds node `i` (= current count) and starts its bootstrap.
    pub fn add_node(&mut self, cfg: NodeConfig, seed: u64) -> usize {
        let i = self.nodes.len();
        let now = self.now();
        let mut node = Node::new(now, cfg, server_addr(i).port(), seed);
        node.bootstrap(now);
        self.nodes.push(node);
        self.events.push(Vec::new());
        self.scheduled.push(None);
        self.addrs.insert(server_addr(i), (i, SocketKind::Server));
        self.addrs.insert(client_addr(i), (i, SocketKind::Client));
        self.after(i);
        i
    }

    fn after(&mut self, i: usize) {
        let from_server = SocketAddr::V4(server_addr(i));
        let from_client = SocketAddr::V4(client_addr(i));
        while let Some(t) = self.nodes[i].poll_transmit() {
            let from = if t.socket == SocketKind::Server {
                from_server
            } else {
                from_client
            };
            self.net.send(from, SocketAddr::V4(t.dest), &t.data);
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events[i].push(e);
        }
        let next = self.nodes[i].poll_timeout();
        if next != self.scheduled[i] {
            self.scheduled[i] = next;
            if let Some(t) = next {
                self.wake.push(Reverse((t, i)));
            }
        }
    }

    /// Runs node `i`'s API call, then flushes its outputs.
    pub fn with<R>(&mut self, i: usize, f: impl FnOnce(&mut Node, Instant) -> R) -> R {
        let now = self.now();
        let r = f(&mut self.nodes[i], now);
        self.after(i);
        r
    }

    /// One step of the simulation; `false` if nothing is scheduled.
    pub fn step(&mut self) -> bool {
        let next_wake = self.wake.peek().map(|Reverse((t, _))| *t);
        let Some(t) = [self.net.next_arrival(), next_wake]
            .into_iter()
            .flatten()
            .min()
        else {
            return false;
        };
        self.net.advance_to(t);
        let now = self.now();
        let mut touched = Vec::new();
        while let Some((from, to, data)) = self.net.pop_due() {
            if let Some(&(i, socket)) = self.addrs.get(&v4(to)) {
                self.nodes[i].handle_datagram(now, socket, v4(from), &data);
                touched.push(i);
            }
        }
        while let Some(&Reverse((t, i))) = self.wake.peek() {
            if t > now {
                break;
            }
            self.wake.pop();
            if self.scheduled[i] == Some(t) {
                self.scheduled[i] = None;
                self.nodes[i].handle_timeout(now);
                touched.push(i);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for i in touched {
            self.after(i);
        }
        true
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now() + d;
        while self.now() < until {
            let next_wake = self.wake.peek().map(|Reverse((t, _))| *t);
            let next = [self.net.next_arrival(), next_wake]
                .into_iter()
                .flatten()
                .min();
            if next.is_none_or(|t| t > until) {
                self.net.advance_to(until);
                break;
            }
            self.step();
        }
    }

    /// Runs until `f` holds or `limit` of virtual time passed; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut f: impl FnMut(&mut Sim) -> bool) -> bool {
        let until = self.now() + limit;
        while self.now() < until {
            if f(self) {
                return true;
            }
            if !self.step() {
                break;
            }
        }
        f(self)
    }
}
