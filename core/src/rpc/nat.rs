//! NAT sampler: decides our public address from what peers report seeing, behaving exactly like
//! npm `nat-sampler` 1.0.1 as used by `dht-rpc` 6.27 (spec `dht-rpc.md` §12.2).
//!
//! A ring of 32 slots holds the last 16 observations, each as two entries: a "full" one keyed by
//! `(host, port)` (even slots) and a "host-only" one keyed by `(host, 0)` (odd slots). An entry
//! found among the 4 most recent entries of its kind is shared (its hit count goes up) instead of
//! being duplicated, so a hit count is the number of slots that refer to the entry. The best
//! entry of each kind is remembered (replaced only by one with strictly more hits) and compared
//! against a threshold that grows with the number of observations.
//!
//! JS shares entries by object reference; here entries live in a small arena and slots hold
//! indices. Entries nobody refers to any more are reused, so memory stays bounded.

use std::net::Ipv4Addr;

/// Ring size in slots (two per observation).
const SLOTS: usize = 32;

/// How many recent entries of the same kind are searched for a match.
const LOOKBACK: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    host: Ipv4Addr,
    port: u16,
    hits: u32,
}

/// Decides the public `(host, port)` from observed `to` addresses (spec §12.2).
#[derive(Debug, Clone, Default)]
pub struct NatSampler {
    host: Option<Ipv4Addr>,
    port: u16,
    size: usize,
    threshold: usize,
    top: usize,
    /// Ring slots, indices into `entries`; grows to [`SLOTS`], then is overwritten in place.
    samples: Vec<usize>,
    entries: Vec<Entry>,
    best_full: Option<usize>,
    best_host: Option<usize>,
}

impl NatSampler {
    /// An empty sampler (no public address known).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one observation of our address as `host:port` (a reply's or request's `to`) and
    /// updates [`host`](Self::host) / [`port`](Self::port). Returns the hit count of the matching
    /// full `(host, port)` entry after the update, like the JS `add`.
    pub fn add(&mut self, host: Ipv4Addr, port: u16) -> u32 {
        let a = self.bump(host, port, 2, None);
        let b = self.bump(host, 0, 1, Some(a));

        if self.samples.len() < SLOTS {
            self.size += 1;
            self.threshold = self.size
                - match self.size {
                    0..=3 => 0,
                    4..=7 => 1,
                    8..=11 => 2,
                    _ => 3,
                };
            self.samples.push(a);
            self.samples.push(b);
            self.top += 2;
        } else {
            if self.top == SLOTS {
                self.top = 0;
            }
            for new in [a, b] {
                let old = std::mem::replace(&mut self.samples[self.top], new);
                self.top += 1;
                let hits = &mut self.entries[old].hits;
                *hits = hits.saturating_sub(1);
            }
        }

        let hits = |i: usize| self.entries[i].hits;
        if self.best_full.is_none_or(|x| hits(x) < hits(a)) {
            self.best_full = Some(a);
        }
        if self.best_host.is_none_or(|x| hits(x) < hits(b)) {
            self.best_host = Some(b);
        }

        let threshold = self.threshold as u64;
        let full = self.best_full.map(|i| self.entries[i]);
        let host_only = self.best_host.map(|i| self.entries[i]);
        match (full, host_only) {
            (Some(f), _) if u64::from(f.hits) >= threshold => {
                self.host = Some(f.host);
                self.port = f.port;
            }
            (_, Some(h)) if u64::from(h.hits) >= threshold => {
                self.host = Some(h.host);
                self.port = 0;
            }
            _ => {
                self.host = None;
                self.port = 0;
            }
        }

        self.entries[a].hits
    }

    /// The public host, if enough observations agree on one.
    pub fn host(&self) -> Option<Ipv4Addr> {
        self.host
    }

    /// The public port; 0 when unknown or when the NAT randomizes ports (host known, port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Number of observations in the window (at most 16).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Hits an entry needs to be trusted: `size − (0, 1, 2 or 3)` for size `< 4, < 8, < 12,
    /// ≥ 12` (13 once the window is full).
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Finds `(host, port)` among the 4 most recent entries of its kind (`back` = 2: full
    /// entries, 1: host-only entries) and bumps it, or creates a fresh entry with one hit.
    /// `reserved` is an entry created earlier in the same `add` that must not be reused.
    fn bump(&mut self, host: Ipv4Addr, port: u16, back: usize, reserved: Option<usize>) -> usize {
        for i in 0..LOOKBACK {
            let j = self.top.wrapping_sub(back + 2 * i) & (SLOTS - 1);
            let Some(&e) = self.samples.get(j) else {
                break;
            };
            let entry = &mut self.entries[e];
            if entry.port == port && entry.host == host {
                entry.hits += 1;
                return e;
            }
        }
        self.alloc(
            Entry {
                host,
                port,
                hits: 1,
            },
            reserved,
        )
    }

    /// Stores a new entry, reusing the slot of one no slot, best pointer or `reserved` refers to.
    fn alloc(&mut self, entry: Entry, reserved: Option<usize>) -> usize {
        // At most 35 entries are pinned (32 slots, 2 best pointers, `reserved`) and the arena only
        // grows when every entry is pinned, so it never exceeds 36 entries.
        let mut used = vec![false; self.entries.len()];
        let pinned = self
            .samples
            .iter()
            .copied()
            .chain(self.best_full)
            .chain(self.best_host)
            .chain(reserved);
        for i in pinned {
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
        }
        if let Some(i) = used.iter().position(|&u| !u) {
            self.entries[i] = entry;
            i
        } else {
            self.entries.push(entry);
            self.entries.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, d)
    }

    #[test]
    fn empty() {
        let s = NatSampler::new();
        assert_eq!(
            (s.host(), s.port(), s.size(), s.threshold()),
            (None, 0, 0, 0)
        );
    }

    #[test]
    fn consistent_address() {
        let mut s = NatSampler::new();
        for n in 1..=40usize {
            let hits = s.add(ip(1), 4000);
            assert_eq!(s.host(), Some(ip(1)));
            assert_eq!(s.port(), 4000);
            assert_eq!(s.size(), n.min(16));
            assert_eq!(hits as usize, n.min(16));
        }
        assert_eq!(s.threshold(), 13);
        assert!(s.entries.len() <= SLOTS + 4);
    }

    #[test]
    fn thresholds_by_size() {
        let mut s = NatSampler::new();
        let want = [1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12, 13, 13, 13];
        for (i, &w) in want.iter().enumerate() {
            s.add(ip(1), i as u16 + 1);
            assert_eq!(s.threshold(), w, "after {} observations", i + 1);
        }
    }

    #[test]
    fn randomized_ports_give_host_with_port_zero() {
        let mut s = NatSampler::new();
        s.add(ip(2), 1000);
        assert_eq!((s.host(), s.port()), (Some(ip(2)), 1000));
        s.add(ip(2), 1001);
        // full entries have 1 hit each < threshold 2, host-only has 2
        assert_eq!((s.host(), s.port()), (Some(ip(2)), 0));
        for p in 0..50u16 {
            s.add(ip(2), 2000 + p);
            assert_eq!((s.host(), s.port()), (Some(ip(2)), 0));
        }
    }

    #[test]
    fn disagreeing_hosts_give_nothing() {
        let mut s = NatSampler::new();
        s.add(ip(1), 1);
        s.add(ip(2), 1);
        assert_eq!((s.host(), s.port()), (None, 0));
    }

    #[test]
    fn address_change_is_adopted_after_the_window_turns() {
        let mut s = NatSampler::new();
        for _ in 0..16 {
            s.add(ip(1), 1);
        }
        let mut switched_at = None;
        for n in 1..=16 {
            s.add(ip(3), 3);
            if s.host() == Some(ip(3)) && switched_at.is_none() {
                switched_at = Some(n);
            }
        }
        // the new entry needs 13 hits (threshold) to be trusted
        assert_eq!(switched_at, Some(13));
        assert_eq!((s.host(), s.port()), (Some(ip(3)), 3));
    }

    #[test]
    fn arena_stays_bounded_with_ever_new_addresses() {
        let mut s = NatSampler::new();
        for i in 0..10_000u32 {
            s.add(
                Ipv4Addr::from(i.wrapping_mul(2_654_435_761)),
                (i % 7) as u16,
            );
        }
        assert!(s.entries.len() <= SLOTS + 4, "{}", s.entries.len());
    }
}
