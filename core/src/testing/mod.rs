//! Deterministic test support: a seeded random source and an in-memory datagram network on a
//! virtual clock, with per-direction latency, jitter (reordering), random loss, duplication, a
//! bandwidth bottleneck with a drop-tail queue, and an MTU limit.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A small seeded PRNG (xorshift64*), so simulations replay exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Behaviour of one direction of a link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// One-way delay.
    pub latency: Duration,
    /// Extra random delay in `[0, jitter)` per datagram; reorders when larger than the spacing.
    pub jitter: Duration,
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Bottleneck rate in bytes per second (`None` = unlimited).
    pub rate: Option<f64>,
    /// Bytes the bottleneck queue holds before dropping.
    pub queue_limit: usize,
    /// Largest datagram (UDP payload) that passes; larger ones are dropped.
    pub max_datagram: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            rate: None,
            queue_limit: 256 * 1024,
            max_datagram: 65_507,
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Reverse<Instant>,
    order: Reverse<u64>,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

/// Counters of what the network did.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Datagrams delivered (duplicates included).
    pub delivered: u64,
    /// Dropped at random.
    pub lost: u64,
    /// Dropped by a full bottleneck queue.
    pub queue_drops: u64,
    /// Dropped for exceeding the link's MTU.
    pub too_big: u64,
    /// Delivered twice.
    pub duplicated: u64,
}

/// An in-memory datagram network on a virtual clock.
#[derive(Debug)]
pub struct SimNet {
    now: Instant,
    rng: Rng,
    default_link: LinkConfig,
    links: HashMap<(SocketAddr, SocketAddr), LinkConfig>,
    busy_until: HashMap<(SocketAddr, SocketAddr), Instant>,
    queue: BinaryHeap<InFlight>,
    order: u64,
    /// What happened so far.
    pub stats: NetStats,
}

impl SimNet {
    /// A network starting at `start` whose links all behave like `default_link`.
    pub fn new(start: Instant, seed: u64, default_link: LinkConfig) -> Self {
        Self {
            now: start,
            rng: Rng::new(seed),
            default_link,
            links: HashMap::new(),
            busy_until: HashMap::new(),
            queue: BinaryHeap::new(),
            order: 0,
            stats: NetStats::default(),
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Overrides the behaviour of the direction `from → to`.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, cfg: LinkConfig) {
        self.links.insert((from, to), cfg);
    }

    /// Hands a datagram to the network.
    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.stats.sent += 1;
        let cfg = self
            .links
            .get(&(from, to))
            .unwrap_or(&self.default_link)
            .clone();
        if data.len() > cfg.max_datagram {
            self.stats.too_big += 1;
            return;
        }
        let mut depart = self.now;
        if let Some(rate) = cfg.rate {
            let busy = self.busy_until.entry((from, to)).or_insert(self.now);
            let start = (*busy).max(self.now);
            let backlog = start.saturating_duration_since(self.now).as_secs_f64() * rate;
            if backlog > cfg.queue_limit as f64 {
                self.stats.queue_drops += 1;
                return;
            }
            depart = start + Duration::from_secs_f64((data.len() + 28) as f64 / rate);
            *busy = depart;
        }
        if self.rng.chance(cfg.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.chance(cfg.duplicate) { 2 } else { 1 };
        if copies == 2 {
            self.stats.duplicated += 1;
        }
        for _ in 0..copies {
            let jitter = if cfg.jitter.is_zero() {
                Duration::ZERO
            } else {
                cfg.jitter.mul_f64(self.rng.unit())
            };
            self.order += 1;
            self.queue.push(InFlight {
                at: Reverse(depart + cfg.latency + jitter),
                order: Reverse(self.order),
                from,
                to,
                data: data.to_vec(),
            });
        }
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|f| f.at.0)
    }

    /// Advances the clock (never backwards).
    pub fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
    }

    /// Takes one datagram due by now: `(from, to, bytes)`.
    pub fn pop_due(&mut self) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        if self.queue.peek().is_some_and(|f| f.at.0 <= self.now) {
            let f = self.queue.pop()?;
            self.stats.delivered += 1;
            return Some((f.from, f.to, f.data));
        }
        None
    }
}
