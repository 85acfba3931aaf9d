//! Deterministic, in-memory: the hole-punch strategies (`Puncher`, spec `hyperdht.md` §9.5)
//! of a client and a server run against NAT models on the SimNet (10 ms links): consistent
//! (endpoint-independent mapping) and random (a new port per destination) NATs, both with
//! address-and-port-restricted filtering, and low-TTL probes that open the local mapping but
//! expire before the far NAT. consistent<->consistent connects within the first round;
//! consistent->random and random->consistent connect through random-port probing and the 256
//! birthday sockets within their ~35 s budget; random<->random has no strategy.

#![allow(clippy::panic, clippy::too_many_lines)]

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use p2pswarm::dht::holepunch::{PunchAction, Puncher, RemoteAddr, LOW_TTL};
use p2pswarm::dht::messages::Firewall;
use p2pswarm::testing::{LinkConfig, Rng, SimNet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Consistent,
    Random,
}

/// A NAT: maps (internal socket[, remote]) to an external port; lets inbound traffic through
/// only from remotes the mapping has sent to.
struct Nat {
    kind: Kind,
    public: Ipv4Addr,
    next_port: u16,
    map: HashMap<(u16, Option<SocketAddrV4>), u16>,
    back: HashMap<u16, (u16, HashSet<SocketAddrV4>)>,
    rng: Rng,
}

impl Nat {
    fn new(kind: Kind, public: Ipv4Addr, seed: u64) -> Self {
        Self {
            kind,
            public,
            next_port: 40000,
            map: HashMap::new(),
            back: HashMap::new(),
            rng: Rng::new(seed),
        }
    }

    /// Outbound from internal socket `local` to `remote`: the external address used.
    fn outbound(&mut self, local: u16, remote: SocketAddrV4) -> SocketAddrV4 {
        let key = match self.kind {
            Kind::Consistent => (local, None),
            Kind::Random => (local, Some(remote)),
        };
        let port = if let Some(p) = self.map.get(&key) {
            *p
        } else {
            let p = match self.kind {
                Kind::Consistent => {
                    self.next_port += 1;
                    self.next_port
                }
                Kind::Random => loop {
                    let p = 1024 + (self.rng.next_u64() % 64000) as u16;
                    if !self.back.contains_key(&p) {
                        break p;
                    }
                },
            };
            self.map.insert(key, p);
            self.back.insert(p, (local, HashSet::new()));
            p
        };
        if let Some((_, allowed)) = self.back.get_mut(&port) {
            allowed.insert(remote);
        }
        SocketAddrV4::new(self.public, port)
    }

    /// Inbound to external `port` from `from`: the internal socket, if let through.
    fn inbound(&self, port: u16, from: SocketAddrV4) -> Option<u16> {
        let (local, allowed) = self.back.get(&port)?;
        allowed.contains(&from).then_some(*local)
    }
}

struct Side {
    nat: Nat,
    puncher: Puncher,
    sockets: usize,
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("v4 only"),
    }
}

/// Runs both punchers until the client connects or `limit` passes; returns the time taken.
fn punch(client_kind: Kind, server_kind: Kind, seed: u64, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut net = SimNet::new(t0, seed, LinkConfig::default());
    let helper = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 100), 49737);
    let mut cnat = Nat::new(client_kind, Ipv4Addr::new(10, 0, 0, 1), seed ^ 1);
    let mut snat = Nat::new(server_kind, Ipv4Addr::new(10, 0, 0, 2), seed ^ 2);
    // NAT sampling: each side's first punch socket talked to a DHT node
    let c_seen = cnat.outbound(0, helper);
    let s_seen = snat.outbound(0, helper);
    let advertised = |k: Kind, seen: SocketAddrV4| match k {
        Kind::Consistent => (Firewall::CONSISTENT, seen),
        Kind::Random => (Firewall::RANDOM, SocketAddrV4::new(*seen.ip(), 0)),
    };
    let (cfw, caddr) = advertised(client_kind, c_seen);
    let (sfw, saddr) = advertised(server_kind, s_seen);
    let client = Puncher::start(
        t0,
        true,
        cfw,
        sfw,
        &[RemoteAddr {
            addr: saddr,
            verified: true,
        }],
        seed ^ 3,
    );
    let server = Puncher::start(
        t0,
        false,
        sfw,
        cfw,
        &[RemoteAddr {
            addr: caddr,
            verified: true,
        }],
        seed ^ 4,
    );
    let (Some(client), Some(server)) = (client, server) else {
        return None;
    };
    let mut sides = [
        Side {
            nat: cnat,
            puncher: client,
            sockets: 1,
        },
        Side {
            nat: snat,
            puncher: server,
            sockets: 1,
        },
    ];
    let mut now = t0;
    loop {
        // actions of both sides
        for i in 0..2 {
            while let Some(act) = sides[i].puncher.poll_action() {
                match act {
                    PunchAction::Probe { socket, dest, ttl } => {
                        let ext = sides[i].nat.outbound(socket as u16, dest);
                        if ttl != LOW_TTL {
                            net.send(SocketAddr::V4(ext), SocketAddr::V4(dest), &[0]);
                        }
                    }
                    PunchAction::OpenSockets(n) => {
                        sides[i].sockets += n;
                        sides[i].puncher.handle_sockets_opened(now, n);
                    }
                    PunchAction::Connected { socket, from } => {
                        assert_eq!(i, 0, "only the initiator connects");
                        assert!(socket < sides[0].sockets);
                        assert_eq!(*from.ip(), sides[1].nat.public);
                        return Some(now - t0);
                    }
                    PunchAction::GaveUp => return None,
                }
            }
        }
        let next = [
            net.next_arrival(),
            sides[0].puncher.poll_timeout(),
            sides[1].puncher.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()?;
        if next - t0 > limit {
            return None;
        }
        now = next;
        net.advance_to(now);
        while let Some((from, to, _)) = net.pop_due() {
            let (from, to) = (v4(from), v4(to));
            let i = usize::from(*to.ip() == sides[1].nat.public);
            if let Some(sock) = sides[i].nat.inbound(to.port(), from) {
                sides[i].puncher.handle_probe(now, usize::from(sock), from);
            }
        }
        for s in &mut sides {
            s.puncher.handle_timeout(now);
        }
    }
}

#[test]
fn consistent_pair_connects_in_the_first_round() {
    let t = punch(
        Kind::Consistent,
        Kind::Consistent,
        1,
        Duration::from_secs(12),
    )
    .unwrap_or_else(|| panic!("consistent x consistent must punch"));
    // the client's first probe opens its NAT, the responder's probe 1 s later gets through
    assert!(t <= Duration::from_millis(1100), "took {t:?}");
}

#[test]
fn consistent_client_punches_a_random_server_with_random_ports() {
    let mut times = Vec::new();
    for seed in 1..=5 {
        let t = punch(
            Kind::Consistent,
            Kind::Random,
            seed,
            Duration::from_secs(40),
        )
        .unwrap_or_else(|| panic!("seed {seed}: consistent -> random must punch"));
        times.push(t);
    }
    println!("consistent -> random: {times:?}");
    assert!(times.iter().all(|t| *t < Duration::from_secs(36)));
}

#[test]
fn random_client_punches_a_consistent_server_with_birthday_sockets() {
    let mut times = Vec::new();
    for seed in 1..=5 {
        let t = punch(
            Kind::Random,
            Kind::Consistent,
            seed,
            Duration::from_secs(40),
        )
        .unwrap_or_else(|| panic!("seed {seed}: random -> consistent must punch"));
        times.push(t);
    }
    println!("random -> consistent: {times:?}");
    assert!(times.iter().all(|t| *t < Duration::from_secs(36)));
}

#[test]
fn two_random_nats_have_no_strategy() {
    assert_eq!(
        punch(Kind::Random, Kind::Random, 1, Duration::from_secs(40)),
        None
    );
}
