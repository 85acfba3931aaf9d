//! Hole punching, sans-IO parts (spec `hyperdht.md` §9.1, §9.5, §9.6):
//!
//! * [`SecurePayload`]: the secretbox-encrypted `holepunchPayload` and the address tokens;
//! * [`Puncher`]: the probe schedule of the punch strategies (consistent↔consistent rounds,
//!   random-port probing, birthday sockets) as a state machine: inputs `handle_*(now, …)`,
//!   outputs polled with [`Puncher::poll_action`] / [`Puncher::poll_timeout`];
//! * [`RandomPunchLimiter`]: the node-wide limit on punches involving a randomizing NAT;
//! * [`TtlLadder`]: the TTL of our "low-TTL" probes, learned per peer (not in hyperdht, which
//!   always uses 5): the largest TTL that still expires before the peer's NAT router.
//!
//! The tokio driver (sockets, relayed PEER_HOLEPUNCH rounds) is in `punch.rs`.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use xsalsa20poly1305::aead::{Aead, KeyInit};
use xsalsa20poly1305::XSalsa20Poly1305;

use super::messages::{Firewall, HolepunchPayload};
use super::nat::coerce;
use crate::crypto::{blake2b256_keyed, ns};
use crate::encoding::{from_slice, to_vec};

/// IP TTL of "low TTL" probes (open the local mapping, expire before the far NAT).
pub const LOW_TTL: u8 = 5;
/// Normal IP TTL.
pub const DEFAULT_TTL: u8 = 64;
/// Rounds of consistent probing.
pub const CONSISTENT_ROUNDS: u32 = 10;
/// Gap between consistent rounds.
pub const CONSISTENT_INTERVAL: Duration = Duration::from_secs(1);
/// Probes of random probing / birthday keep-alive.
pub const RANDOM_PROBES: u32 = 1750;
/// Gap between random probes.
pub const RANDOM_INTERVAL: Duration = Duration::from_millis(20);
/// Sockets used by the birthday strategy (including the first punch socket).
pub const BIRTHDAY_SOCKETS: usize = 256;
/// Pause after opening the birthday sockets.
pub const BIRTHDAY_PAUSE: Duration = Duration::from_millis(100);
/// Passive wait when the client is OPEN, and the server's no-progress abort.
pub const PASSIVE_WAIT: Duration = Duration::from_secs(10);
/// Wait when the remote firewall is still UNKNOWN after the probe round.
pub const UNKNOWN_FIREWALL_WAIT: Duration = Duration::from_secs(1);
/// Minimum time between random punches (`randomPunchInterval`).
pub const RANDOM_PUNCH_INTERVAL: Duration = Duration::from_secs(20);
/// Random punches in progress at once (`randomPunchLimit`).
pub const RANDOM_PUNCH_LIMIT: u32 = 1;

/// The 1-byte probe datagram.
pub const PROBE: [u8; 1] = [0];
/// The datagram of a [`TtlLadder`] probe: 2 bytes, so that a peer's socket that it reaches
/// (an open or firewalled peer has no NAT router in front) ignores it (dht-rpc: neither a request
/// nor a response; hole-punch sockets: not a 1-byte probe, which an initiator would take for a
/// punch success from the ladder socket's address).
pub const LADDER_DATAGRAM: [u8; 2] = [0, 0];
/// TTLs tried by the [`TtlLadder`] (one probe socket each). Six, because Linux answers a burst
/// of at most 6 ICMP errors per destination (`icmp_ratelimit`) and every TTL at or beyond the far
/// router may draw one.
pub const LADDER_TTLS: std::ops::RangeInclusive<u8> = 2..=7;
/// Longest wait for the ladder's answers.
pub const LADDER_MAX_WAIT: Duration = Duration::from_millis(500);
/// Shortest wait for the ladder's answers (when a round trip to a DHT node was measured).
pub const LADDER_MIN_WAIT: Duration = Duration::from_millis(25);
/// Wait after the first answer for answers to smaller TTLs (they travel the same path and come
/// first; this only absorbs reordering).
pub const LADDER_GRACE: Duration = Duration::from_millis(5);

/// The hole-punch secret of a finished handshake: `H256k(handshakeHash, NS_PEER_HOLEPUNCH)`.
pub fn holepunch_secret(handshake_hash: &[u8]) -> [u8; 32] {
    blake2b256_keyed(handshake_hash, &ns::PEER_HOLEPUNCH)
}

/// Encrypts and decrypts hole-punch payloads and computes address tokens (§9.1).
#[derive(Clone)]
pub struct SecurePayload {
    cipher: XSalsa20Poly1305,
    local_secret: [u8; 32],
}

impl std::fmt::Debug for SecurePayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecurePayload")
    }
}

impl SecurePayload {
    /// `key` = the holepunch secret; `local_secret` = 32 random bytes for this connection.
    pub fn new(key: &[u8; 32], local_secret: [u8; 32]) -> Self {
        Self {
            cipher: XSalsa20Poly1305::new(key.into()),
            local_secret,
        }
    }

    /// `nonce || secretbox(plaintext)` with a caller-chosen (random) 24-byte nonce.
    pub fn encrypt(&self, payload: &HolepunchPayload, nonce: [u8; 24]) -> Vec<u8> {
        let plain = to_vec(payload);
        let mut out = nonce.to_vec();
        // secretbox_easy = MAC || ciphertext, which is this crate's (NaCl-compatible) layout
        match self.cipher.encrypt((&nonce).into(), plain.as_slice()) {
            Ok(ct) => out.extend_from_slice(&ct),
            Err(_) => return Vec::new(),
        }
        out
    }

    /// Decrypts and decodes; `None` for short, forged or undecodable input.
    pub fn decrypt(&self, data: &[u8]) -> Option<HolepunchPayload> {
        if data.len() <= 40 {
            return None;
        }
        let (nonce, ct) = data.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let plain = self.cipher.decrypt((&nonce).into(), ct).ok()?;
        from_slice::<HolepunchPayload>(&plain).ok()
    }

    /// `token(addr) = H256k(localSecret, host string)`.
    pub fn token(&self, addr: &SocketAddrV4) -> [u8; 32] {
        blake2b256_keyed(&self.local_secret, addr.ip().to_string().as_bytes())
    }
}

/// A remote candidate address and whether its host was verified by a token echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr {
    /// Address.
    pub addr: SocketAddrV4,
    /// Host confirmed by the token echo.
    pub verified: bool,
}

/// What the driver must do for the puncher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PunchAction {
    /// Send [`PROBE`] from punch socket `socket` to `dest` with IP TTL `ttl`.
    Probe {
        /// Index of the punch socket (0 = the first).
        socket: usize,
        /// Destination.
        dest: SocketAddrV4,
        /// IP TTL.
        ttl: u8,
    },
    /// Open `count` more punch sockets and report them with [`Puncher::handle_sockets_opened`].
    OpenSockets(usize),
    /// Initiator: a probe arrived; connect the stream on `socket` to `from`.
    Connected {
        /// Index of the punch socket.
        socket: usize,
        /// The peer's address on that path.
        from: SocketAddrV4,
    },
    /// The strategy ran out without success.
    GaveUp,
}

#[derive(Debug, Clone)]
enum Strategy {
    Consistent {
        round: u32,
        addrs: Vec<RemoteAddr>,
    },
    RandomPorts {
        host: Ipv4Addr,
        left: u32,
    },
    Birthday {
        remote: SocketAddrV4,
        opened: bool,
        next: usize,
        low_ttl_rounds: u32,
        left: u32,
    },
}

/// The probe schedule of one punch (§9.5 "Punch strategies").
#[derive(Debug, Clone)]
pub struct Puncher {
    initiator: bool,
    low_ttl: u8,
    strategy: Strategy,
    sockets: usize,
    next_at: Option<Instant>,
    connected: bool,
    finished: bool,
    random: bool,
    rng: u64,
    out: VecDeque<PunchAction>,
}

fn pick_verified(addrs: &[RemoteAddr]) -> Option<SocketAddrV4> {
    addrs.iter().find(|a| a.verified).map(|a| a.addr)
}

impl Puncher {
    /// Chooses the strategy from the frozen NAT state. `None` = this pair cannot be punched
    /// (both randomizing, or no verified remote address where one is needed).
    pub fn start(
        now: Instant,
        initiator: bool,
        local: Firewall,
        remote: Firewall,
        remote_addrs: &[RemoteAddr],
        seed: u64,
    ) -> Option<Self> {
        if remote_addrs.is_empty() {
            return None;
        }
        let local = coerce(local);
        let remote = coerce(remote);
        let mut p = Self {
            initiator,
            low_ttl: LOW_TTL,
            strategy: Strategy::Consistent {
                round: 0,
                addrs: Vec::new(),
            },
            sockets: 1,
            next_at: None,
            connected: false,
            finished: false,
            random: false,
            rng: seed | 1,
            out: VecDeque::new(),
        };
        if local == Firewall::CONSISTENT && remote == Firewall::CONSISTENT {
            p.strategy = Strategy::Consistent {
                round: 0,
                addrs: remote_addrs.to_vec(),
            };
            // the responder waits first: the server's fast-open probe just went out
            p.next_at = Some(if initiator {
                now
            } else {
                now + CONSISTENT_INTERVAL
            });
            return Some(p);
        }
        let verified = pick_verified(remote_addrs)?;
        p.random = true;
        if local == Firewall::CONSISTENT && remote >= Firewall::RANDOM {
            p.strategy = Strategy::RandomPorts {
                host: *verified.ip(),
                left: RANDOM_PROBES,
            };
            p.next_at = Some(now);
            return Some(p);
        }
        if local >= Firewall::RANDOM && remote == Firewall::CONSISTENT {
            p.strategy = Strategy::Birthday {
                remote: verified,
                opened: false,
                next: 0,
                low_ttl_rounds: 1,
                left: RANDOM_PROBES,
            };
            p.out.push_back(PunchAction::Probe {
                socket: 0,
                dest: verified,
                ttl: LOW_TTL,
            });
            p.out
                .push_back(PunchAction::OpenSockets(BIRTHDAY_SOCKETS - 1));
            return Some(p);
        }
        None
    }

    /// Uses `ttl` instead of [`LOW_TTL`] for the low-TTL probes (birthday sockets), e.g. the one
    /// a [`TtlLadder`] learned. Call right after [`Puncher::start`].
    #[must_use]
    pub fn with_low_ttl(mut self, ttl: u8) -> Self {
        for a in &mut self.out {
            if let PunchAction::Probe { ttl: t, .. } = a {
                if *t == self.low_ttl {
                    *t = ttl;
                }
            }
        }
        self.low_ttl = ttl;
        self
    }

    /// Keeps every birthday probe low-TTL (hyperdht sends all passes after the first with TTL
    /// 64). For a peer whose router is known to accept unsolicited datagrams (a [`TtlLadder`]
    /// probe was refused by it): a full-TTL probe that reaches it before the peer has sent to that
    /// socket's address leaves a conntrack entry there that makes the peer's own later probe to
    /// that address leave from another port (the peer's probes to our sockets' addresses are
    /// what connects).
    #[must_use]
    pub fn keep_low_ttl(mut self) -> Self {
        if let Strategy::Birthday { low_ttl_rounds, .. } = &mut self.strategy {
            *low_ttl_rounds = u32::MAX;
        }
        self
    }

    /// Whether this punch involves a randomizing NAT (counts for the limiter).
    pub fn is_random(&self) -> bool {
        self.random
    }

    /// Whether the initiator saw a probe.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether the punch is over (connected, gave up or stopped).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Stops probing (the connection was made another way, or aborted).
    pub fn stop(&mut self) {
        self.finished = true;
        self.next_at = None;
    }

    /// The driver opened `count` more punch sockets (indices continue after the existing ones).
    pub fn handle_sockets_opened(&mut self, now: Instant, count: usize) {
        if self.finished {
            return;
        }
        let first = self.sockets;
        self.sockets += count;
        if let Strategy::Birthday { remote, opened, .. } = &mut self.strategy {
            for socket in first..self.sockets {
                self.out.push_back(PunchAction::Probe {
                    socket,
                    dest: *remote,
                    ttl: self.low_ttl,
                });
            }
            *opened = true;
            self.next_at = Some(now + BIRTHDAY_PAUSE);
        }
    }

    /// A 1-byte probe arrived on punch socket `socket` from `from`.
    pub fn handle_probe(&mut self, _now: Instant, socket: usize, from: SocketAddrV4) {
        if self.finished && !self.connected {
            return;
        }
        if !self.initiator {
            // the responder echoes (its stream binds when the initiator's data arrives)
            self.out.push_back(PunchAction::Probe {
                socket,
                dest: from,
                ttl: DEFAULT_TTL,
            });
            return;
        }
        if self.connected {
            return;
        }
        self.connected = true;
        self.finished = true;
        self.next_at = None;
        self.out.push_back(PunchAction::Connected { socket, from });
    }

    fn random_port(&mut self) -> u16 {
        // xorshift64*; the seed comes from the driver
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32;
        (1000 + (r % 64536)) as u16
    }

    fn give_up(&mut self) {
        self.finished = true;
        self.next_at = None;
        self.out.push_back(PunchAction::GaveUp);
    }

    /// Advances the schedule.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(at) = self.next_at else { return };
        if now < at || self.finished {
            return;
        }
        match &mut self.strategy {
            Strategy::Consistent { round, addrs } => {
                if *round >= CONSISTENT_ROUNDS {
                    self.give_up();
                    return;
                }
                *round += 1;
                let tick = *round;
                for a in addrs.iter() {
                    // unverified addresses only every 4th round
                    if !a.verified && tick & 3 != 0 {
                        continue;
                    }
                    self.out.push_back(PunchAction::Probe {
                        socket: 0,
                        dest: a.addr,
                        ttl: DEFAULT_TTL,
                    });
                }
                self.next_at = Some(at + CONSISTENT_INTERVAL);
            }
            Strategy::RandomPorts { host, left } => {
                if *left == 0 {
                    self.give_up();
                    return;
                }
                *left -= 1;
                let host = *host;
                let port = self.random_port();
                self.out.push_back(PunchAction::Probe {
                    socket: 0,
                    dest: SocketAddrV4::new(host, port),
                    ttl: DEFAULT_TTL,
                });
                self.next_at = Some(now + RANDOM_INTERVAL);
            }
            Strategy::Birthday {
                remote,
                opened,
                next,
                low_ttl_rounds,
                left,
            } => {
                if !*opened {
                    return;
                }
                if *left == 0 {
                    self.give_up();
                    return;
                }
                *left -= 1;
                if *next >= self.sockets {
                    *next = 0;
                    *low_ttl_rounds = low_ttl_rounds.saturating_sub(1);
                }
                let ttl = if *low_ttl_rounds > 0 {
                    self.low_ttl
                } else {
                    DEFAULT_TTL
                };
                self.out.push_back(PunchAction::Probe {
                    socket: *next,
                    dest: *remote,
                    ttl,
                });
                *next += 1;
                self.next_at = Some(now + RANDOM_INTERVAL);
            }
        }
    }

    /// When [`Puncher::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_at
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<PunchAction> {
        self.out.pop_front()
    }
}

/// Learns the TTL of our low-TTL probes toward one peer address (not in hyperdht).
///
/// A low-TTL probe must cross all of our own NAT routers (so they hold a mapping toward the peer
/// before the peer's first probe arrives) and expire before the peer's NAT router: a router that
/// accepts unsolicited datagrams delivers one addressed to itself (no socket: ICMP port
/// unreachable) and records a conntrack entry for it, and the peer's own outgoing packets to us
/// then clash with that entry and get another external port (`docs/nat-matrix.md`). hyperdht's
/// fixed TTL 5 reaches the far router whenever it is at most 4 router hops away.
///
/// The driver sends one probe per TTL in [`LADDER_TTLS`] to the peer address, each from its own
/// throw-away socket (so a probe that does reach the far router only marks that socket's address
/// pair there, not the punch socket's), connected so that an ICMP port unreachable comes back as
/// a refused receive, and reports every refused TTL with [`TtlLadder::handle_refused`]. The
/// smallest refused TTL `k` reached the far router, so `k - 1` is the largest TTL that does not;
/// it crosses our NATs as long as at least one non-NAT hop lies between them and the far router.
/// No refusal (the far router drops, or is farther than the ladder) means hyperdht's [`LOW_TTL`].
#[derive(Debug, Clone)]
pub struct TtlLadder {
    start: Instant,
    wait: Duration,
    first_refusal: Option<Instant>,
    min_refused: Option<u8>,
    answered: usize,
}

impl TtlLadder {
    /// A ladder whose probes were sent at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            start: now,
            wait: LADDER_MAX_WAIT,
            first_refusal: None,
            min_refused: None,
            answered: 0,
        }
    }

    /// The TTLs to probe with.
    pub fn ttls() -> impl Iterator<Item = u8> {
        LADDER_TTLS
    }

    /// A round trip to some DHT node took `rtt`: wait about three of them (the far router is
    /// usually no farther than the nodes), within [`LADDER_MIN_WAIT`]..[`LADDER_MAX_WAIT`].
    pub fn handle_rtt(&mut self, rtt: Duration) {
        self.wait = self
            .wait
            .min((rtt * 3).clamp(LADDER_MIN_WAIT, LADDER_MAX_WAIT));
    }

    /// The probe with IP TTL `ttl` was refused (ICMP port unreachable from the far side).
    pub fn handle_refused(&mut self, now: Instant, ttl: u8) {
        if !LADDER_TTLS.contains(&ttl) {
            return;
        }
        self.answered += 1;
        self.first_refusal.get_or_insert(now);
        self.min_refused = Some(self.min_refused.map_or(ttl, |m| m.min(ttl)));
    }

    /// When to stop waiting for answers.
    pub fn deadline(&self) -> Instant {
        let end = self.start + self.wait;
        match self.first_refusal {
            Some(t) => end.min(t + LADDER_GRACE),
            None => end,
        }
    }

    /// Whether the wait is over at `now` (deadline passed, or every TTL answered).
    pub fn is_done(&self, now: Instant) -> bool {
        now >= self.deadline() || self.answered >= LADDER_TTLS.len()
    }

    /// Whether a usable TTL was learned: the far router refused a probe (it accepts unsolicited
    /// datagrams) and a smaller TTL did not reach it.
    pub fn learned(&self) -> bool {
        matches!(self.min_refused, Some(k) if k > 2)
    }

    /// The smallest TTL seen reaching the far router, if any.
    pub fn min_refused(&self) -> Option<u8> {
        self.min_refused
    }

    /// The TTL for low-TTL probes: one below the smallest refused TTL; [`LOW_TTL`] when nothing
    /// was refused, or when TTL 2 already reached the far router (then no TTL opens our NAT
    /// without reaching it, and hyperdht's value is as good as any).
    pub fn low_ttl(&self) -> u8 {
        match self.min_refused {
            Some(k) if self.learned() => k - 1,
            _ => LOW_TTL,
        }
    }
}

/// The node-wide random-punch limiter (§9.5 punch round step 1).
#[derive(Debug, Clone, Default)]
pub struct RandomPunchLimiter {
    active: u32,
    last_done: Option<Instant>,
}

impl RandomPunchLimiter {
    /// Whether a random punch may start now.
    pub fn allows(&self, now: Instant) -> bool {
        self.active < RANDOM_PUNCH_LIMIT
            && self
                .last_done
                .is_none_or(|t| now.saturating_duration_since(t) >= RANDOM_PUNCH_INTERVAL)
    }

    /// A random punch started.
    pub fn begin(&mut self) {
        self.active += 1;
    }

    /// A random punch ended (connected or given up): its time starts the interval, as
    /// hyperdht's `_decrementRandomized` does either way.
    pub fn end(&mut self, now: Instant) {
        self.active = self.active.saturating_sub(1);
        self.last_done = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::messages::ErrorCode;

    fn a(s: &str) -> SocketAddrV4 {
        s.parse()
            .unwrap_or_else(|_| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
    }

    #[test]
    fn secretbox_matches_the_spec_vector() {
        let key = hex32("82a4d8751e5f0c2548cff6232f429a18c06eb099e90f4178be6030d750c0397e");
        let sp = SecurePayload::new(&key, [9; 32]);
        let payload = HolepunchPayload {
            error: ErrorCode::NONE,
            firewall: Firewall::CONSISTENT,
            round: 0,
            addresses: Some(vec![a("2.2.2.2:40000")]),
            ..HolepunchPayload::default()
        };
        let enc = sp.encrypt(&payload, [7; 24]);
        assert_eq!(
            crate::crypto::to_hex(&enc),
            "070707070707070707070707070707070707070707070707fa71b1a4ed510d166b25bf1544679f930588d84c26dc74b30dd6b1"
        );
        assert_eq!(sp.decrypt(&enc), Some(payload));
        let mut bad = enc.clone();
        bad[30] ^= 1;
        assert_eq!(sp.decrypt(&bad), None);
        assert_eq!(sp.decrypt(&enc[..40]), None);
        assert_eq!(sp.decrypt(&[]), None);
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }

    #[test]
    fn holepunch_secret_matches_the_spec_vector() {
        let hash = "c401287ccbc34a0b2b029f471299b9b70a709e46c2a83b5cbd473be9c9769ac959587376e4aec780747eb0afb223980d8d3ae82771944e7f1aad987baa100905";
        let mut h = [0u8; 64];
        for (i, o) in h.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        assert_eq!(
            holepunch_secret(&h),
            hex32("82a4d8751e5f0c2548cff6232f429a18c06eb099e90f4178be6030d750c0397e")
        );
    }

    #[test]
    fn tokens_depend_on_host_only_and_on_the_secret() {
        let sp = SecurePayload::new(&[1; 32], [2; 32]);
        assert_eq!(sp.token(&a("1.2.3.4:1")), sp.token(&a("1.2.3.4:9")));
        assert_ne!(sp.token(&a("1.2.3.4:1")), sp.token(&a("1.2.3.5:1")));
        let other = SecurePayload::new(&[1; 32], [3; 32]);
        assert_ne!(sp.token(&a("1.2.3.4:1")), other.token(&a("1.2.3.4:1")));
    }

    fn drain(p: &mut Puncher) -> Vec<PunchAction> {
        std::iter::from_fn(|| p.poll_action()).collect()
    }

    fn run_until(p: &mut Puncher, start: Instant, end: Instant) -> Vec<(Duration, PunchAction)> {
        let mut out = Vec::new();
        while let Some(t) = p.poll_timeout() {
            if t > end {
                break;
            }
            p.handle_timeout(t);
            for act in drain(p) {
                out.push((t - start, act));
            }
        }
        out
    }

    #[test]
    fn consistent_pair_probes_ten_rounds_then_gives_up() {
        let now = Instant::now();
        let addrs = [
            RemoteAddr {
                addr: a("1.1.1.1:1000"),
                verified: true,
            },
            RemoteAddr {
                addr: a("1.1.1.2:2000"),
                verified: false,
            },
        ];
        let mut p = Puncher::start(now, true, Firewall::CONSISTENT, Firewall::OPEN, &addrs, 1)
            .unwrap_or_else(|| unreachable!("consistent pairs punch"));
        assert!(!p.is_random());
        let acts = run_until(&mut p, now, now + Duration::from_secs(60));
        let probes: Vec<_> = acts
            .iter()
            .filter(|(_, a)| matches!(a, PunchAction::Probe { .. }))
            .collect();
        // verified: 10 rounds; unverified: rounds 4 and 8
        assert_eq!(probes.len(), 12);
        assert_eq!(probes[0].0, Duration::ZERO);
        assert!(
            matches!(acts.last(), Some((t, PunchAction::GaveUp)) if *t == Duration::from_secs(10))
        );
        // the responder starts after one interval and echoes probes
        let mut r = Puncher::start(
            now,
            false,
            Firewall::CONSISTENT,
            Firewall::CONSISTENT,
            &addrs,
            1,
        )
        .unwrap_or_else(|| unreachable!());
        assert_eq!(r.poll_timeout(), Some(now + CONSISTENT_INTERVAL));
        r.handle_probe(now, 0, a("9.9.9.9:9"));
        assert_eq!(
            drain(&mut r),
            vec![PunchAction::Probe {
                socket: 0,
                dest: a("9.9.9.9:9"),
                ttl: DEFAULT_TTL
            }]
        );
    }

    #[test]
    fn initiator_connects_on_the_first_probe_only() {
        let now = Instant::now();
        let addrs = [RemoteAddr {
            addr: a("1.1.1.1:1000"),
            verified: true,
        }];
        let mut p = Puncher::start(
            now,
            true,
            Firewall::CONSISTENT,
            Firewall::CONSISTENT,
            &addrs,
            1,
        )
        .unwrap_or_else(|| unreachable!());
        p.handle_timeout(now);
        drain(&mut p);
        p.handle_probe(now, 0, a("1.1.1.1:1000"));
        p.handle_probe(now, 0, a("1.1.1.1:1001"));
        assert_eq!(
            drain(&mut p),
            vec![PunchAction::Connected {
                socket: 0,
                from: a("1.1.1.1:1000")
            }]
        );
        assert!(p.is_connected() && p.is_finished());
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn random_remote_gets_1750_random_ports_on_the_verified_host_20ms_apart() {
        let now = Instant::now();
        let unverified = [RemoteAddr {
            addr: a("1.1.1.1:0"),
            verified: false,
        }];
        assert!(Puncher::start(
            now,
            true,
            Firewall::CONSISTENT,
            Firewall::RANDOM,
            &unverified,
            1
        )
        .is_none());
        let addrs = [RemoteAddr {
            addr: a("1.1.1.1:0"),
            verified: true,
        }];
        let mut p = Puncher::start(now, true, Firewall::CONSISTENT, Firewall::RANDOM, &addrs, 7)
            .unwrap_or_else(|| unreachable!());
        assert!(p.is_random());
        let acts = run_until(&mut p, now, now + Duration::from_secs(120));
        let probes: Vec<SocketAddrV4> = acts
            .iter()
            .filter_map(|(_, a)| match a {
                PunchAction::Probe { dest, .. } => Some(*dest),
                _ => None,
            })
            .collect();
        assert_eq!(probes.len(), 1750);
        assert!(probes.iter().all(|d| *d.ip() == Ipv4Addr::new(1, 1, 1, 1)));
        assert!(probes.iter().all(|d| d.port() >= 1000));
        let distinct: std::collections::HashSet<u16> =
            probes.iter().map(SocketAddrV4::port).collect();
        assert!(
            distinct.len() > 1500,
            "ports look random: {}",
            distinct.len()
        );
        let (t, last) = acts
            .last()
            .cloned()
            .unwrap_or((Duration::ZERO, PunchAction::GaveUp));
        assert_eq!(last, PunchAction::GaveUp);
        assert_eq!(t, RANDOM_INTERVAL * 1750);
        // both randomizing: no strategy
        assert!(Puncher::start(now, true, Firewall::RANDOM, Firewall::RANDOM, &addrs, 1).is_none());
    }

    #[test]
    fn birthday_opens_256_sockets_then_cycles_low_ttl_first() {
        let now = Instant::now();
        let addrs = [RemoteAddr {
            addr: a("1.1.1.1:4000"),
            verified: true,
        }];
        let mut p = Puncher::start(now, true, Firewall::RANDOM, Firewall::CONSISTENT, &addrs, 1)
            .unwrap_or_else(|| unreachable!());
        let first = drain(&mut p);
        assert_eq!(first[1], PunchAction::OpenSockets(255));
        p.handle_sockets_opened(now, 255);
        let opening = drain(&mut p);
        assert_eq!(opening.len(), 255);
        assert!(opening
            .iter()
            .all(|a| matches!(a, PunchAction::Probe { ttl: LOW_TTL, .. })));
        assert_eq!(p.poll_timeout(), Some(now + BIRTHDAY_PAUSE));
        let acts = run_until(&mut p, now, now + Duration::from_secs(120));
        let ttls: Vec<u8> = acts
            .iter()
            .filter_map(|(_, a)| match a {
                PunchAction::Probe { ttl, .. } => Some(*ttl),
                _ => None,
            })
            .collect();
        assert_eq!(ttls.len(), 1750);
        assert!(ttls[..256].iter().all(|t| *t == LOW_TTL));
        assert!(ttls[256..].iter().all(|t| *t == DEFAULT_TTL));
        // a probe on any birthday socket connects through that socket
        let mut q = Puncher::start(now, true, Firewall::RANDOM, Firewall::CONSISTENT, &addrs, 1)
            .unwrap_or_else(|| unreachable!());
        drain(&mut q);
        q.handle_sockets_opened(now, 255);
        drain(&mut q);
        q.handle_probe(now, 77, a("1.1.1.1:4000"));
        assert_eq!(
            drain(&mut q),
            vec![PunchAction::Connected {
                socket: 77,
                from: a("1.1.1.1:4000")
            }]
        );
    }

    #[test]
    fn ladder_picks_one_below_the_smallest_refused_ttl() {
        let t0 = Instant::now();
        let mut l = TtlLadder::new(t0);
        assert_eq!(
            TtlLadder::ttls().collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6, 7]
        );
        assert_eq!(l.low_ttl(), LOW_TTL);
        assert!(!l.is_done(t0));
        // answers for TTL >= 5 (the far router is 4 hops away), out of order
        l.handle_refused(t0 + Duration::from_millis(3), 6);
        l.handle_refused(t0 + Duration::from_millis(3), 5);
        l.handle_refused(t0 + Duration::from_millis(4), 7);
        assert_eq!(l.min_refused(), Some(5));
        assert_eq!(l.low_ttl(), 4);
        assert_eq!(l.deadline(), t0 + Duration::from_millis(3) + LADDER_GRACE);
        assert!(l.is_done(t0 + Duration::from_millis(9)));
        // TTLs outside the ladder are ignored
        l.handle_refused(t0, 1);
        assert_eq!(l.min_refused(), Some(5));
    }

    #[test]
    fn ladder_falls_back_to_hyperdht_low_ttl() {
        let t0 = Instant::now();
        // nothing refused (dropping routers): wait the full bound, then TTL 5
        let mut l = TtlLadder::new(t0);
        assert_eq!(l.deadline(), t0 + LADDER_MAX_WAIT);
        l.handle_rtt(Duration::from_millis(2));
        assert_eq!(l.deadline(), t0 + LADDER_MIN_WAIT);
        l.handle_rtt(Duration::from_millis(1));
        assert_eq!(l.deadline(), t0 + LADDER_MIN_WAIT);
        let mut slow = TtlLadder::new(t0);
        slow.handle_rtt(Duration::from_millis(100));
        assert_eq!(slow.deadline(), t0 + Duration::from_millis(300));
        slow.handle_rtt(Duration::from_secs(2));
        assert_eq!(slow.deadline(), t0 + Duration::from_millis(300));
        assert_eq!(l.low_ttl(), LOW_TTL);
        // adjacent routers: TTL 2 already reached the far router; no TTL is safe
        l.handle_refused(t0, 2);
        l.handle_refused(t0, 3);
        assert_eq!(l.low_ttl(), LOW_TTL);
        // every TTL answered: done at once
        let mut all = TtlLadder::new(t0);
        for t in TtlLadder::ttls() {
            all.handle_refused(t0, t);
        }
        assert!(all.is_done(t0));
    }

    #[test]
    fn birthday_low_ttl_probes_use_the_learned_ttl() {
        let t0 = Instant::now();
        let remote = [RemoteAddr {
            addr: a("10.0.0.2:4000"),
            verified: true,
        }];
        let mut p = Puncher::start(t0, true, Firewall::RANDOM, Firewall::CONSISTENT, &remote, 7)
            .map(|p| p.with_low_ttl(3))
            .expect("birthday");
        let first = drain(&mut p);
        assert!(
            matches!(first[0], PunchAction::Probe { ttl: 3, .. }),
            "{first:?}"
        );
        p.handle_sockets_opened(t0, BIRTHDAY_SOCKETS - 1);
        let opened = drain(&mut p);
        assert!(opened
            .iter()
            .all(|x| matches!(x, PunchAction::Probe { ttl: 3, .. })));
        p.handle_timeout(t0 + BIRTHDAY_PAUSE);
        assert!(matches!(
            drain(&mut p)[0],
            PunchAction::Probe { ttl: 3, .. }
        ));
        // after the first pass hyperdht's schedule goes to TTL 64; keep_low_ttl stays low
        let ttls_after_first_pass = |p: Puncher| {
            let mut p = p;
            let mut t = t0 + BIRTHDAY_PAUSE;
            let mut out = Vec::new();
            for _ in 0..BIRTHDAY_SOCKETS + 10 {
                t += RANDOM_INTERVAL;
                p.handle_timeout(t);
                out.extend(drain(&mut p));
            }
            out.iter()
                .skip(BIRTHDAY_SOCKETS)
                .filter_map(|x| match x {
                    PunchAction::Probe { ttl, .. } => Some(*ttl),
                    _ => None,
                })
                .collect::<Vec<u8>>()
        };
        assert!(ttls_after_first_pass(p.clone())
            .iter()
            .all(|t| *t == DEFAULT_TTL));
        assert!(ttls_after_first_pass(p.keep_low_ttl())
            .iter()
            .all(|t| *t == 3));
    }

    #[test]
    fn ladder_learns_only_when_a_ttl_above_2_was_the_smallest_refused() {
        let t0 = Instant::now();
        let mut l = TtlLadder::new(t0);
        assert!(!l.learned());
        l.handle_refused(t0, 2);
        l.handle_refused(t0, 5);
        assert!(!l.learned(), "TTL 2 reached the far router: nothing safe");
        let mut m = TtlLadder::new(t0);
        m.handle_refused(t0, 4);
        assert!(m.learned());
        assert_eq!(m.low_ttl(), 3);
    }

    #[test]
    fn limiter_allows_one_at_a_time_and_20s_apart() {
        let now = Instant::now();
        let mut l = RandomPunchLimiter::default();
        assert!(l.allows(now));
        l.begin();
        assert!(!l.allows(now));
        l.end(now);
        assert!(!l.allows(now + Duration::from_secs(19)));
        assert!(l.allows(now + Duration::from_secs(20)));
        // a failed punch also starts the interval
        let later = now + Duration::from_secs(30);
        l.begin();
        l.end(later);
        assert!(!l.allows(later + Duration::from_secs(5)));
        assert!(l.allows(later + Duration::from_secs(20)));
    }
}
