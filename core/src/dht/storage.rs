//! What a persistent hyperdht node stores and answers (spec `hyperdht.md` §4): peer records per
//! topic, router entries for announced servers, mutable and immutable values; each in a
//! two-generation cache with the reference's sizes and lifetimes. Sans-IO: requests in,
//! [`Outcome`]s out, time and randomness as inputs.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::messages::{
    commands, errors, Announce, LookupRawReply, MutableGetResponse, MutablePutRequest, PeerRecord,
    MAX_LOOKUP_RECORDS, MAX_STORED_RELAY_ADDRESSES,
};
use super::sign::{hash, immutable_target, verify_announce_message, verify_mutable};
use crate::encoding::{from_slice, to_vec, Decoder};
use crate::rpc::message::Request;

const RECORDS_MAX: usize = 65_536;
const RECORDS_AGE: Duration = Duration::from_secs(20 * 60);
const VALUES_MAX: usize = 32_768;
const VALUES_AGE: Duration = Duration::from_secs(48 * 3600);
/// Bumps more than this far in the future are ignored.
const BUMP_SLACK_MS: u64 = 60_000;

/// How to answer a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Reply with this value; `plain` adds a token and closer nodes (dht-rpc's default reply),
    /// otherwise a bare reply.
    Reply {
        /// The reply value.
        value: Option<Vec<u8>>,
        /// Token and closer nodes included.
        plain: bool,
    },
    /// Reply with this error code (closer nodes, no token).
    Error(u64),
    /// Say nothing (the reference drops bad or unauthorised requests silently).
    Silent,
    /// Not a storage command.
    NotStorage,
}

/// A two-generation cache: entries live between 2/3 and 4/3 of `max_age` after their last
/// write (and read, with `refresh_on_read`), and at most about `2 × max_size` entries exist.
#[derive(Debug)]
pub struct GenCache<K, V> {
    fresh: HashMap<K, V>,
    stale: HashMap<K, V>,
    max_size: usize,
    interval: Duration,
    next_gc: Instant,
    refresh_on_read: bool,
}

impl<K: Hash + Eq + Clone, V> GenCache<K, V> {
    /// A cache with the given limits.
    pub fn new(now: Instant, max_size: usize, max_age: Duration, refresh_on_read: bool) -> Self {
        let interval = (max_age * 2).div_f64(3.0);
        Self {
            fresh: HashMap::new(),
            stale: HashMap::new(),
            max_size,
            interval,
            next_gc: now + interval,
            refresh_on_read,
        }
    }

    fn rotate(&mut self) {
        self.stale = std::mem::take(&mut self.fresh);
    }

    /// Ages the cache.
    pub fn tick(&mut self, now: Instant) {
        if now >= self.next_gc {
            self.rotate();
            self.next_gc = now + self.interval;
        }
    }

    /// Inserts or replaces.
    pub fn set(&mut self, k: K, v: V) {
        self.stale.remove(&k);
        self.fresh.insert(k, v);
        if self.fresh.len() > self.max_size {
            self.rotate();
        }
    }

    /// Looks up (and, with `refresh_on_read`, keeps the entry young).
    pub fn get(&mut self, k: &K) -> Option<&V> {
        if self.refresh_on_read {
            if let Some(v) = self.stale.remove(k) {
                self.fresh.insert(k.clone(), v);
            }
        }
        if self.fresh.contains_key(k) {
            self.fresh.get(k)
        } else {
            self.stale.get(k)
        }
    }

    /// Looks up for modification (moves the entry to the fresh generation).
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        if let Some(v) = self.stale.remove(k) {
            self.fresh.insert(k.clone(), v);
        }
        self.fresh.get_mut(k)
    }

    /// Removes.
    pub fn delete(&mut self, k: &K) -> Option<V> {
        self.fresh.remove(k).or_else(|| self.stale.remove(k))
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.fresh.len() + self.stale.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A server's announce-self entry: where its announcement came from, and its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterEntry {
    /// Address the announce came from (the relay to forward handshakes to); `None` when this
    /// node hosts the server itself.
    pub relay: Option<SocketAddrV4>,
    /// Encoded peer record.
    pub record: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Refresh {
    target: [u8; 32],
    record: Vec<u8>,
    announce_self: bool,
}

/// Peer records of one topic: (public key, encoded record), in insertion order.
type RecordSet = Vec<([u8; 32], Vec<u8>)>;

/// The storage of a persistent node.
#[derive(Debug)]
pub struct Storage {
    records: GenCache<[u8; 32], RecordSet>,
    /// Router entries (also consulted by the handshake router).
    pub router: GenCache<[u8; 32], RouterEntry>,
    bumps: GenCache<[u8; 32], u64>,
    refreshes: GenCache<[u8; 32], Refresh>,
    mutables: GenCache<[u8; 32], Vec<u8>>,
    immutables: GenCache<[u8; 32], Vec<u8>>,
}

fn bare(value: Option<Vec<u8>>) -> Outcome {
    Outcome::Reply {
        value,
        plain: false,
    }
}

fn plain(value: Option<Vec<u8>>) -> Outcome {
    Outcome::Reply { value, plain: true }
}

impl Storage {
    /// Empty storage with the reference's limits.
    pub fn new(now: Instant) -> Self {
        Self {
            records: GenCache::new(now, RECORDS_MAX, RECORDS_AGE, false),
            router: GenCache::new(now, RECORDS_MAX, RECORDS_AGE, true),
            bumps: GenCache::new(now, RECORDS_MAX, RECORDS_AGE, false),
            refreshes: GenCache::new(now, RECORDS_MAX, RECORDS_AGE, false),
            mutables: GenCache::new(now, VALUES_MAX, VALUES_AGE, false),
            immutables: GenCache::new(now, VALUES_MAX, VALUES_AGE, false),
        }
    }

    /// Ages every cache.
    pub fn tick(&mut self, now: Instant) {
        self.records.tick(now);
        self.router.tick(now);
        self.bumps.tick(now);
        self.refreshes.tick(now);
        self.mutables.tick(now);
        self.immutables.tick(now);
    }

    /// Peer records stored for a topic (encoded), in insertion order.
    pub fn records(&mut self, topic: &[u8; 32]) -> Vec<Vec<u8>> {
        self.records
            .get(topic)
            .map(|v| v.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }

    fn add_record(&mut self, target: [u8; 32], pk: [u8; 32], record: Vec<u8>) {
        if let Some(set) = self.records.get_mut(&target) {
            if let Some(e) = set.iter_mut().find(|(k, _)| *k == pk) {
                e.1 = record;
            } else {
                set.push((pk, record));
            }
            return;
        }
        self.records.set(target, vec![(pk, record)]);
    }

    fn remove_record(&mut self, target: &[u8; 32], pk: &[u8; 32]) {
        let empty = self.records.get_mut(target).is_some_and(|set| {
            set.retain(|(k, _)| k != pk);
            set.is_empty()
        });
        if empty {
            self.records.delete(target);
        }
    }

    /// Handles a storage command. `node_id` is this node's id; `rnd` picks LOOKUP records;
    /// `now_ms` is wall-clock milliseconds for bumps.
    pub fn on_request(
        &mut self,
        node_id: &[u8; 32],
        from: SocketAddrV4,
        req: &Request,
        rnd: u64,
        now_ms: u64,
    ) -> Outcome {
        if req.internal {
            return Outcome::NotStorage;
        }
        let Some(target) = req.target else {
            return match req.command {
                commands::FIND_PEER..=commands::IMMUTABLE_GET => Outcome::Silent,
                _ => Outcome::NotStorage,
            };
        };
        match req.command {
            commands::FIND_PEER => plain(self.router.get(&target).map(|e| e.record.clone())),
            commands::LOOKUP => self.lookup(&target, rnd),
            commands::ANNOUNCE => self.announce(node_id, from, &target, req, now_ms),
            commands::UNANNOUNCE => self.unannounce(node_id, &target, req),
            commands::MUTABLE_PUT => self.mutable_put(&target, req),
            commands::MUTABLE_GET => {
                let Some(min_seq) = req
                    .value
                    .as_deref()
                    .and_then(|v| Decoder::new(v).uint().ok())
                else {
                    return Outcome::Silent;
                };
                let stored = self.mutables.get(&target).cloned();
                let value = stored.filter(|s| {
                    from_slice::<MutableGetResponse>(s).is_ok_and(|r| r.seq >= min_seq)
                });
                plain(value)
            }
            commands::IMMUTABLE_PUT => {
                let (Some(value), Some(_)) = (&req.value, &req.token) else {
                    return Outcome::Silent;
                };
                if immutable_target(value) != target {
                    return Outcome::Silent;
                }
                self.immutables.set(target, value.clone());
                plain(None)
            }
            commands::IMMUTABLE_GET => plain(self.immutables.get(&target).cloned()),
            _ => Outcome::NotStorage,
        }
    }

    fn lookup(&mut self, target: &[u8; 32], rnd: u64) -> Outcome {
        let mut records: Vec<Vec<u8>> = self.records(target);
        if records.len() > MAX_LOOKUP_RECORDS {
            // A random window of 20 (the reference samples at random).
            let start = (rnd % records.len() as u64) as usize;
            records.rotate_left(start);
            records.truncate(MAX_LOOKUP_RECORDS);
        }
        if records.len() < MAX_LOOKUP_RECORDS {
            if let Some(e) = self.router.get(target) {
                records.push(e.record.clone());
            }
        }
        if records.is_empty() {
            return plain(None);
        }
        let bump = self.bumps.get(target).copied().unwrap_or(0);
        plain(Some(LookupRawReply::encode_raw(&records, bump)))
    }

    fn announce(
        &mut self,
        node_id: &[u8; 32],
        from: SocketAddrV4,
        target: &[u8; 32],
        req: &Request,
        now_ms: u64,
    ) -> Outcome {
        let (Some(value), Some(token)) = (&req.value, &req.token) else {
            return Outcome::Silent;
        };
        let Ok(ann) = from_slice::<Announce>(value) else {
            return Outcome::Silent;
        };
        if ann.peer.is_none() {
            return match ann.refresh {
                Some(r) => self.refresh(from, &r),
                None => Outcome::Silent,
            };
        }
        if !verify_announce_message(&ann, false, target, node_id, token) {
            return Outcome::Silent;
        }
        let Some(mut peer) = ann.peer.clone() else {
            return Outcome::Silent;
        };
        peer.relay_addresses.truncate(MAX_STORED_RELAY_ADDRESSES);
        let record = to_vec(&peer);
        let pk = peer.public_key.0;
        let announce_self = hash(&pk) == *target;
        if announce_self {
            self.router.set(
                *target,
                RouterEntry {
                    relay: Some(from),
                    record: record.clone(),
                },
            );
            self.remove_record(target, &pk);
        } else {
            self.add_record(*target, pk, record.clone());
            if ann.bump > self.bumps.get(target).copied().unwrap_or(0)
                && ann.bump <= now_ms + BUMP_SLACK_MS
            {
                self.bumps.set(*target, ann.bump);
            }
        }
        if let Some(r) = ann.refresh {
            self.refreshes.set(
                r,
                Refresh {
                    target: *target,
                    record,
                    announce_self,
                },
            );
        }
        bare(None)
    }

    fn refresh(&mut self, from: SocketAddrV4, value: &[u8; 32]) -> Outcome {
        let Some(entry) = self.refreshes.delete(&hash(value)) else {
            return Outcome::Silent;
        };
        if entry.announce_self {
            self.router.set(
                entry.target,
                RouterEntry {
                    relay: Some(from),
                    record: entry.record.clone(),
                },
            );
        } else if let Ok(peer) = from_slice::<PeerRecord>(&entry.record) {
            self.add_record(entry.target, peer.public_key.0, entry.record.clone());
        }
        self.refreshes.set(*value, entry);
        bare(None)
    }

    fn unannounce(&mut self, node_id: &[u8; 32], target: &[u8; 32], req: &Request) -> Outcome {
        let (Some(value), Some(token)) = (&req.value, &req.token) else {
            return Outcome::Silent;
        };
        let Ok(ann) = from_slice::<Announce>(value) else {
            return Outcome::Silent;
        };
        if !verify_announce_message(&ann, true, target, node_id, token) {
            return Outcome::Silent;
        }
        let Some(peer) = &ann.peer else {
            return Outcome::Silent;
        };
        let pk = peer.public_key.0;
        self.remove_record(target, &pk);
        if hash(&pk) == *target {
            self.router.delete(target);
        }
        bare(None)
    }

    fn mutable_put(&mut self, target: &[u8; 32], req: &Request) -> Outcome {
        let (Some(value), Some(_)) = (&req.value, &req.token) else {
            return Outcome::Silent;
        };
        let Ok(put) = from_slice::<MutablePutRequest>(value) else {
            return Outcome::Silent;
        };
        if hash(&put.public_key.0) != *target
            || !verify_mutable(&put.signature, put.seq, &put.value, &put.public_key)
        {
            return Outcome::Silent;
        }
        if let Some(existing) = self
            .mutables
            .get(target)
            .and_then(|s| from_slice::<MutableGetResponse>(s).ok())
        {
            if existing.seq == put.seq && existing.value != put.value {
                return Outcome::Error(errors::SEQ_REUSED);
            }
            if existing.seq > put.seq {
                return Outcome::Error(errors::SEQ_TOO_LOW);
            }
        }
        let stored = to_vec(&MutableGetResponse {
            seq: put.seq,
            value: put.value,
            signature: put.signature,
        });
        self.mutables.set(*target, stored);
        plain(None)
    }
}
