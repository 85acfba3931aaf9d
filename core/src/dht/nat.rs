//! NAT classification of one hole-punch socket (spec `hyperdht.md` §9.4), sans-IO.
//!
//! Feed it the address other nodes saw for the socket ([`NatAnalyzer::add`], one sample per
//! distinct referrer); it reports the firewall kind (OPEN / CONSISTENT / RANDOM / UNKNOWN) and
//! the addresses to advertise to the peer. The driver sends the sampling PINGs.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::messages::Firewall;

/// Samples the driver should aim for before the analysis counts as done.
pub const MIN_SAMPLES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    host: Ipv4Addr,
    port: u16,
    hits: u32,
}

/// Adds one hit for (host, port), keeping the list ordered by hits (stable: earlier first).
fn add_tally(list: &mut Vec<Tally>, host: Ipv4Addr, port: u16) {
    if let Some(mut i) = list.iter().position(|t| t.host == host && t.port == port) {
        list[i].hits += 1;
        while i > 0 && list[i - 1].hits < list[i].hits {
            list.swap(i - 1, i);
            i -= 1;
        }
        return;
    }
    list.push(Tally {
        host,
        port,
        hits: 1,
    });
}

/// The classifier state of one punch socket.
#[derive(Debug, Clone)]
pub struct NatAnalyzer {
    /// The dht-rpc node itself is unfirewalled (then the socket is OPEN).
    unfirewalled: bool,
    hosts: Vec<Tally>,
    full: Vec<Tally>,
    referrers: HashSet<SocketAddrV4>,
    sampled: usize,
    frozen: bool,
    gave_up: bool,
    firewall: Firewall,
    addresses: Option<Vec<SocketAddrV4>>,
}

impl NatAnalyzer {
    /// A fresh analyzer; `unfirewalled` = the DHT node has a confirmed public address.
    pub fn new(unfirewalled: bool) -> Self {
        Self {
            unfirewalled,
            hosts: Vec::new(),
            full: Vec::new(),
            referrers: HashSet::new(),
            sampled: 0,
            frozen: false,
            gave_up: false,
            firewall: if unfirewalled {
                Firewall::OPEN
            } else {
                Firewall::UNKNOWN
            },
            addresses: None,
        }
    }

    /// One observation: `referrer` saw this socket as `observed`. Duplicates per referrer are
    /// ignored.
    pub fn add(&mut self, observed: SocketAddrV4, referrer: SocketAddrV4) {
        if !self.referrers.insert(referrer) {
            return;
        }
        add_tally(&mut self.hosts, *observed.ip(), 0);
        add_tally(&mut self.full, *observed.ip(), observed.port());
        self.sampled += 1;
        if (self.sampled >= 3 || self.unfirewalled) && !self.frozen {
            self.update();
        }
    }

    /// The driver's sampling ended (all pings answered or failed).
    pub fn give_up(&mut self) {
        self.gave_up = true;
    }

    /// Stops reclassifying (the result was told to the peer).
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// Whether the analysis reached a conclusion or ran out of samples.
    pub fn done(&self) -> bool {
        matches!(self.firewall, Firewall::OPEN | Firewall::CONSISTENT)
            || self.sampled >= MIN_SAMPLES
            || self.gave_up
    }

    /// Samples collected.
    pub fn sampled(&self) -> usize {
        self.sampled
    }

    /// The classification so far.
    pub fn firewall(&self) -> Firewall {
        self.firewall
    }

    /// The addresses to advertise (`None` while UNKNOWN).
    pub fn addresses(&self) -> Option<Vec<SocketAddrV4>> {
        self.addresses.clone()
    }

    fn update(&mut self) {
        self.update_firewall();
        self.update_addresses();
    }

    fn update_firewall(&mut self) {
        if self.unfirewalled {
            self.firewall = Firewall::OPEN;
            return;
        }
        if self.sampled < 3 {
            return;
        }
        let max = self.full.first().map_or(0, |t| t.hits);
        if max >= 3 {
            self.firewall = Firewall::CONSISTENT;
        } else if max == 1 || (self.hosts.len() == 1 && self.sampled > 3) {
            // one hit each, or 2+2 on a single host
            self.firewall = Firewall::RANDOM;
        } else if self.hosts.len() > 1 && self.full.get(1).is_some_and(|t| t.hits > 1) {
            self.firewall = Firewall::CONSISTENT;
        } else if self.sampled > 4 {
            self.firewall = Firewall::RANDOM;
        }
    }

    fn update_addresses(&mut self) {
        self.addresses = match self.firewall {
            Firewall::RANDOM => self
                .hosts
                .first()
                .map(|t| vec![SocketAddrV4::new(t.host, 0)]),
            Firewall::CONSISTENT | Firewall::OPEN => {
                let mut out = Vec::new();
                for t in &self.full {
                    if t.hits >= 2 || out.len() < 2 {
                        out.push(SocketAddrV4::new(t.host, t.port));
                    }
                }
                Some(out)
            }
            _ => None,
        };
    }
}

/// Firewall values compared the way the punch strategies do: OPEN counts as CONSISTENT.
pub fn coerce(fw: Firewall) -> Firewall {
    if fw == Firewall::OPEN {
        Firewall::CONSISTENT
    } else {
        fw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddrV4 {
        s.parse()
            .unwrap_or_else(|_| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
    }

    fn feed(samples: &[(&str, &str)]) -> NatAnalyzer {
        let mut n = NatAnalyzer::new(false);
        for (obs, from) in samples {
            n.add(a(obs), a(from));
        }
        n
    }

    #[test]
    fn three_equal_samples_are_consistent() {
        let n = feed(&[
            ("1.2.3.4:1000", "9.0.0.1:1"),
            ("1.2.3.4:1000", "9.0.0.2:1"),
            ("1.2.3.4:1000", "9.0.0.3:1"),
        ]);
        assert_eq!(n.firewall(), Firewall::CONSISTENT);
        assert!(n.done());
        // at least two addresses are advertised (padded with the next best: none here)
        assert_eq!(n.addresses(), Some(vec![a("1.2.3.4:1000")]));
    }

    #[test]
    fn all_different_ports_are_random_with_port_zero() {
        let n = feed(&[
            ("1.2.3.4:1000", "9.0.0.1:1"),
            ("1.2.3.4:1001", "9.0.0.2:1"),
            ("1.2.3.4:1002", "9.0.0.3:1"),
        ]);
        assert_eq!(n.firewall(), Firewall::RANDOM);
        assert_eq!(n.addresses(), Some(vec![a("1.2.3.4:0")]));
    }

    #[test]
    fn two_samples_stay_unknown_and_duplicates_per_referrer_count_once() {
        let n = feed(&[
            ("1.2.3.4:1000", "9.0.0.1:1"),
            ("1.2.3.4:1000", "9.0.0.1:1"),
            ("1.2.3.4:1000", "9.0.0.2:1"),
        ]);
        assert_eq!(n.sampled(), 2);
        assert_eq!(n.firewall(), Firewall::UNKNOWN);
        assert_eq!(n.addresses(), None);
        assert!(!n.done());
    }

    #[test]
    fn two_two_on_one_host_is_random_after_four() {
        let mut n = feed(&[
            ("1.2.3.4:1000", "9.0.0.1:1"),
            ("1.2.3.4:1000", "9.0.0.2:1"),
            ("1.2.3.4:1001", "9.0.0.3:1"),
        ]);
        assert_eq!(n.firewall(), Firewall::UNKNOWN);
        n.add(a("1.2.3.4:1001"), a("9.0.0.4:1"));
        assert_eq!(n.firewall(), Firewall::RANDOM);
    }

    #[test]
    fn double_hits_on_two_hosts_are_consistent() {
        let n = feed(&[
            ("1.2.3.4:1000", "9.0.0.1:1"),
            ("1.2.3.4:1000", "9.0.0.2:1"),
            ("5.6.7.8:2000", "9.0.0.3:1"),
            ("5.6.7.8:2000", "9.0.0.4:1"),
        ]);
        assert_eq!(n.firewall(), Firewall::CONSISTENT);
        assert_eq!(
            n.addresses(),
            Some(vec![a("1.2.3.4:1000"), a("5.6.7.8:2000")])
        );
    }

    #[test]
    fn frozen_analysis_does_not_change_and_unfirewalled_is_open() {
        let mut n = feed(&[
            ("1.2.3.4:1000", "9.0.0.1:1"),
            ("1.2.3.4:1000", "9.0.0.2:1"),
            ("1.2.3.4:1000", "9.0.0.3:1"),
        ]);
        n.freeze();
        n.add(a("1.2.3.4:7"), a("9.0.0.4:1"));
        n.add(a("1.2.3.4:8"), a("9.0.0.5:1"));
        n.add(a("1.2.3.4:9"), a("9.0.0.6:1"));
        assert_eq!(n.firewall(), Firewall::CONSISTENT);
        let mut o = NatAnalyzer::new(true);
        assert_eq!(o.firewall(), Firewall::OPEN);
        o.add(a("1.2.3.4:1000"), a("9.0.0.1:1"));
        assert!(o.done());
        assert_eq!(o.addresses(), Some(vec![a("1.2.3.4:1000")]));
    }
}
