//! The iterative Kademlia lookup of dht-rpc (spec `dht-rpc.md` §10), as a plain state machine
//! driven by the node: it says whom to ask next and digests replies and timeouts.

use std::collections::HashMap;
use std::net::SocketAddrV4;

use super::message::{node_id, Response};

/// Replies kept as "closest".
pub const K: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Learned from these referrers, not yet asked (or in flight).
    Referred(Vec<SocketAddrV4>),
    /// Answered.
    Done,
    /// Timed out.
    Down,
}

/// A candidate to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its address.
    pub addr: SocketAddrV4,
    /// Its id when known (computed from the address for referred nodes).
    pub id: Option<[u8; 32]>,
}

/// A successful reply from a node with a valid id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The responder's id.
    pub id: [u8; 32],
    /// Where it answered from.
    pub from: SocketAddrV4,
    /// The round-trip token it issued (for a commit).
    pub token: Option<[u8; 32]>,
    /// The value it returned.
    pub value: Option<Vec<u8>>,
    /// Referral hops from the seed nodes to this node (seeds are hop 1).
    pub hops: u8,
}

/// What the query wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send the query request to this node.
    Ask(Candidate),
    /// Tell `to` that `down` did not answer (DOWN_HINT).
    DownHint {
        /// Referrer to notify.
        to: SocketAddrV4,
        /// The node that timed out.
        down: SocketAddrV4,
    },
}

/// An iterative lookup towards `target`.
#[derive(Debug)]
pub struct Query {
    target: [u8; 32],
    own_id: [u8; 32],
    concurrency: usize,
    pending: Vec<Candidate>,
    seen: HashMap<SocketAddrV4, Seen>,
    hops: HashMap<SocketAddrV4, u8>,
    closest: Vec<Reply>,
    inflight: usize,
    slow: usize,
    successes: usize,
    errors: usize,
    table_seeded: bool,
    topped_up: bool,
    finished: bool,
    /// Requests sent (for hop/traffic statistics).
    pub requests_sent: usize,
}

fn xor_lt(target: &[u8; 32], a: &[u8; 32], b: &[u8; 32]) -> bool {
    for i in 0..32 {
        let (x, y) = (a[i] ^ target[i], b[i] ^ target[i]);
        if x != y {
            return x < y;
        }
    }
    false
}

impl Query {
    /// A query seeded with `nodes` (caller's, then table's, then bootstrap), first popped first.
    pub fn new(
        target: [u8; 32],
        own_id: [u8; 32],
        concurrency: usize,
        nodes: &[Candidate],
        table_seeded: bool,
    ) -> Self {
        let mut q = Self {
            target,
            own_id,
            concurrency: concurrency.max(1),
            pending: Vec::new(),
            seen: HashMap::new(),
            hops: HashMap::new(),
            closest: Vec::new(),
            inflight: 0,
            slow: 0,
            successes: 0,
            errors: 0,
            table_seeded,
            topped_up: false,
            finished: false,
            requests_sent: 0,
        };
        q.push_seeds(nodes);
        q
    }

    /// Adds candidates (e.g. a top-up from the routing table), first popped first.
    pub fn push_seeds(&mut self, nodes: &[Candidate]) {
        for c in nodes.iter().rev() {
            if self.seen.contains_key(&c.addr) || c.id == Some(self.own_id) {
                continue;
            }
            self.seen.insert(c.addr, Seen::Referred(Vec::new()));
            self.hops.insert(c.addr, 1);
            self.pending.push(*c);
        }
    }

    /// The target.
    pub fn target(&self) -> &[u8; 32] {
        &self.target
    }

    /// Whether `id` would improve the closest set.
    pub fn is_closer(&self, id: &[u8; 32]) -> bool {
        self.closest.len() < K
            || self
                .closest
                .last()
                .is_some_and(|w| xor_lt(&self.target, id, &w.id))
    }

    /// The next candidates to ask, respecting concurrency and slow-start.
    pub fn next_batch(&mut self) -> Vec<Candidate> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        loop {
            let limit = if !self.table_seeded
                && self.successes + self.errors < self.concurrency
                && self.successes == 0
            {
                3 + self.slow
            } else {
                self.concurrency + self.slow
            };
            if self.inflight >= limit {
                break;
            }
            let Some(c) = self.pending.pop() else { break };
            if c.id.is_some_and(|id| !self.is_closer(&id)) {
                continue;
            }
            self.inflight += 1;
            self.requests_sent += 1;
            out.push(c);
        }
        out
    }

    /// A request of this query is being retransmitted for the first time (counts as slow).
    pub fn on_slow(&mut self) {
        self.slow += 1;
    }

    /// A reply arrived from `from`; `valid_id` is its id when it matched its address. Returns
    /// DOWN_HINTs owed and whether the reply counts as a success (to emit to the consumer).
    pub fn on_reply(
        &mut self,
        from: SocketAddrV4,
        valid_id: Option<[u8; 32]>,
        res: &Response,
        was_slow: bool,
    ) -> (Vec<Step>, bool) {
        let mut steps = Vec::new();
        self.inflight = self.inflight.saturating_sub(1);
        if was_slow {
            self.slow = self.slow.saturating_sub(1);
        }
        self.seen.insert(from, Seen::Done);
        let hops = self.hops.get(&from).copied().unwrap_or(1);
        let ok = res.error == 0;
        if ok {
            self.successes += 1;
            if let Some(id) = valid_id {
                if self.is_closer(&id) {
                    self.closest.retain(|r| r.id != id);
                    let pos = self
                        .closest
                        .iter()
                        .position(|r| xor_lt(&self.target, &id, &r.id))
                        .unwrap_or(self.closest.len());
                    self.closest.insert(
                        pos,
                        Reply {
                            id,
                            from,
                            token: res.token,
                            value: res.value.clone(),
                            hops,
                        },
                    );
                    self.closest.truncate(K);
                }
            }
        } else {
            self.errors += 1;
        }
        for &addr in &res.closer_nodes {
            let id = node_id(&addr);
            if id == self.own_id {
                continue;
            }
            match self.seen.get_mut(&addr) {
                Some(Seen::Referred(refs)) => refs.push(from),
                Some(Seen::Down) => steps.push(Step::DownHint {
                    to: from,
                    down: addr,
                }),
                Some(Seen::Done) => {}
                None => {
                    // dht-rpc stops at the first non-closer node, but closerNodes come in the
                    // routing table's bucket order, not sorted by distance: checking every one
                    // finds the true closest set more often at no extra requests.
                    if !self.is_closer(&id) {
                        continue;
                    }
                    self.seen.insert(addr, Seen::Referred(vec![from]));
                    self.hops.insert(addr, hops.saturating_add(1));
                    self.pending.push(Candidate { addr, id: Some(id) });
                }
            }
        }
        (steps, ok)
    }

    /// A request to `addr` failed after all retries.
    pub fn on_timeout(&mut self, addr: SocketAddrV4, was_slow: bool) -> Vec<Step> {
        self.inflight = self.inflight.saturating_sub(1);
        if was_slow {
            self.slow = self.slow.saturating_sub(1);
        }
        self.errors += 1;
        let refs = match self.seen.insert(addr, Seen::Down) {
            Some(Seen::Referred(refs)) => refs,
            _ => Vec::new(),
        };
        refs.into_iter()
            .map(|to| Step::DownHint { to, down: addr })
            .collect()
    }

    /// Whether the lookup has converged. `top_up` is offered once when the query was not table
    /// seeded and few nodes answered; return the table's nodes through it.
    pub fn check_done(&mut self, top_up: impl FnOnce() -> Vec<Candidate>) -> bool {
        if self.finished {
            return true;
        }
        let idle = self.pending.is_empty()
            && (self.inflight == 0 || (self.inflight <= self.slow && self.closest.len() >= K));
        if !idle {
            return false;
        }
        if !self.table_seeded && !self.topped_up && self.successes < K / 4 {
            self.topped_up = true;
            let more = top_up();
            if !more.is_empty() {
                self.push_seeds(&more);
                return false;
            }
        }
        self.finished = true;
        true
    }

    /// Whether the query finished.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The closest replies found, nearest first.
    pub fn closest_replies(&self) -> &[Reply] {
        &self.closest
    }

    /// Counts of successful and failed requests.
    pub fn counts(&self) -> (usize, usize) {
        (self.successes, self.errors)
    }
}
