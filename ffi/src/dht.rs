//! DHT nodes and servers: connect, listen, lookup, announce, immutable and mutable put/get.

use std::collections::HashSet;

use swarm_core::crypto::{KeyPair, PublicKey};
use swarm_core::runtime::{DhtHandle, DhtOptions, ServerHandle};

use crate::api::{
    array, boxed, bytes, code, get, guard, guard_val, out, p2pswarm_buffer, p2pswarm_context,
    p2pswarm_options, p2pswarm_result, put, put_bytes, unbox,
};
use crate::events::p2pswarm_connection;

/// A HyperDHT node.
#[derive(Debug)]
pub struct p2pswarm_dht {
    pub(crate) h: DhtHandle,
    /// Made by `p2pswarm_dht_new` (freeing it closes the node), not borrowed from a swarm.
    pub(crate) owned: bool,
}

impl Drop for p2pswarm_dht {
    fn drop(&mut self) {
        if self.owned {
            self.h.destroy();
        }
    }
}

/// A DHT server listening on a key pair.
#[derive(Debug)]
pub struct p2pswarm_server {
    h: ServerHandle,
}

fn seed_key_pair(seed: *const u8, seed_len: usize) -> Result<Option<KeyPair>, p2pswarm_result> {
    if seed.is_null() && seed_len == 0 {
        return Ok(None);
    }
    Ok(Some(KeyPair::from_seed(&array::<32>(seed, seed_len)?)))
}

fn key_pair_required(seed: *const u8, seed_len: usize) -> Result<KeyPair, p2pswarm_result> {
    Ok(KeyPair::from_seed(&array::<32>(seed, seed_len)?))
}

/// Creates a DHT node with `options` (NULL: defaults, i.e. the public network; the key pair
/// options set its default key pair; swarm-only options are ignored) and waits until it is
/// bootstrapped. Blocking (refused on the runtime thread). `*out_dht` is owned by the caller:
/// `p2pswarm_dht_free` closes the node and frees it. Connections it makes or accepts report
/// to the context.
#[no_mangle]
pub extern "C" fn p2pswarm_dht_new(
    ctx: *const p2pswarm_context,
    options: *const p2pswarm_options,
    out_dht: *mut *mut p2pswarm_dht,
) -> p2pswarm_result {
    guard(|| {
        let c = get(ctx)?;
        out(out_dht)?;
        let mut o = DhtOptions::new();
        if !options.is_null() {
            let opts = get(options)?;
            o.key_pair.clone_from(&opts.key_pair);
            o.seed = opts.seed;
            o.bootstrap.clone_from(&opts.bootstrap);
            o.host = opts.host;
            o.port = opts.port;
            o.ready_timeout = opts.timeout;
        }
        let h = c.rt.dht(o, &c.queue).wait().map_err(code)?.map_err(code)?;
        put(out_dht, boxed(p2pswarm_dht { h, owned: true }));
        Ok(())
    })
}

/// Closes the node made by `p2pswarm_dht_new` (not one borrowed from a swarm) and frees the
/// handle. NULL is a no-op. Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_dht_free(dht: *mut p2pswarm_dht) {
    guard_val((), || drop(unbox(dht)));
}

/// Closes the node now (also a swarm's node). Idempotent, non-blocking. Free the handle after.
#[no_mangle]
pub extern "C" fn p2pswarm_dht_destroy(dht: *const p2pswarm_dht) -> p2pswarm_result {
    guard(|| {
        get(dht)?.h.destroy();
        Ok(())
    })
}

/// Writes the node's default 32-byte public key to `out_public_key`.
#[no_mangle]
pub extern "C" fn p2pswarm_dht_public_key(
    dht: *const p2pswarm_dht,
    out_public_key: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        out(out_public_key)?;
        put_bytes(out_public_key, &d.h.public_key().0);
        Ok(())
    })
}

/// Connects to the server listening on a 32-byte public key, with the node's default key pair.
/// Blocking (refused on the runtime thread). `*out_connection` is owned by the caller (free it
/// with `p2pswarm_connection_free`); its data arrives as DATA events. Failures say why:
/// `P2PSWARM_ERR_PEER_NOT_FOUND`, `_CONNECTION_FAILED`, `_REJECTED`, `_HANDSHAKE`, `_CLOSED`.
#[no_mangle]
pub extern "C" fn p2pswarm_dht_connect(
    dht: *const p2pswarm_dht,
    public_key: *const u8,
    public_key_len: usize,
    out_connection: *mut *mut p2pswarm_connection,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        let k = PublicKey(array::<32>(public_key, public_key_len)?);
        out(out_connection)?;
        let conn = d.h.connect(k, None).wait().map_err(code)?.map_err(code)?;
        put(out_connection, boxed(p2pswarm_connection { conn }));
        Ok(())
    })
}

/// Listens on the key pair of a 32-byte `seed` (NULL with `seed_len` 0: the node's default key
/// pair): announces it and accepts connections, which arrive as CONNECTION events whose source
/// is `p2pswarm_server_id`. Blocking (refused on the runtime thread). `*out_server` is owned by
/// the caller (free it with `p2pswarm_server_free`). `P2PSWARM_ERR_KEY_PAIR_IN_USE` if the
/// node already listens on it.
#[no_mangle]
pub extern "C" fn p2pswarm_dht_listen(
    dht: *const p2pswarm_dht,
    seed: *const u8,
    seed_len: usize,
    out_server: *mut *mut p2pswarm_server,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        let kp = seed_key_pair(seed, seed_len)?;
        out(out_server)?;
        let h = d.h.listen(kp).wait().map_err(code)?.map_err(code)?;
        put(out_server, boxed(p2pswarm_server { h }));
        Ok(())
    })
}

/// The server's id, the source of its CONNECTION events; 0 for NULL.
#[no_mangle]
pub extern "C" fn p2pswarm_server_id(server: *const p2pswarm_server) -> u64 {
    guard_val(0, || get(server).map_or(0, |s| s.h.id()))
}

/// Writes the 32-byte public key the server listens on to `out_public_key`.
#[no_mangle]
pub extern "C" fn p2pswarm_server_public_key(
    server: *const p2pswarm_server,
    out_public_key: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let s = get(server)?;
        out(out_public_key)?;
        put_bytes(out_public_key, &s.h.public_key().0);
        Ok(())
    })
}

/// Stops listening and unannounces (accepted connections stay). Idempotent. Blocking (refused
/// on the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_server_close(server: *const p2pswarm_server) -> p2pswarm_result {
    guard(|| {
        let s = get(server)?;
        s.h.close().wait().map_err(code)
    })
}

/// Starts closing the server (without waiting) and frees the handle. NULL is a no-op.
#[no_mangle]
pub extern "C" fn p2pswarm_server_free(server: *mut p2pswarm_server) {
    guard_val((), || {
        if let Some(s) = unbox(server) {
            drop(s.h.close());
        }
    });
}

/// Looks a 32-byte topic up: `*out_keys` is a buffer of the distinct public keys announced
/// under it, 32 bytes each (owned by the caller: `p2pswarm_buffer_free`). Blocking (refused on
/// the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_dht_lookup(
    dht: *const p2pswarm_dht,
    topic: *const u8,
    topic_len: usize,
    out_keys: *mut *mut p2pswarm_buffer,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        let t = array::<32>(topic, topic_len)?;
        out(out_keys)?;
        let replies = d.h.lookup(t).wait().map_err(code)?.map_err(code)?;
        let mut seen = HashSet::new();
        let mut data = Vec::new();
        for p in replies.iter().flat_map(|r| &r.peers) {
            if seen.insert(p.public_key) {
                data.extend_from_slice(&p.public_key.0);
            }
        }
        put(out_keys, boxed(p2pswarm_buffer { data }));
        Ok(())
    })
}

/// Announces the key pair of a 32-byte `seed` under a 32-byte topic on the closest nodes;
/// `*out_nodes` (may be NULL) is how many stored it. Blocking (refused on the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_dht_announce(
    dht: *const p2pswarm_dht,
    topic: *const u8,
    topic_len: usize,
    seed: *const u8,
    seed_len: usize,
    out_nodes: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        let t = array::<32>(topic, topic_len)?;
        let kp = key_pair_required(seed, seed_len)?;
        let n = d.h.announce(t, kp).wait().map_err(code)?.map_err(code)?;
        if !out_nodes.is_null() {
            put(out_nodes, n);
        }
        Ok(())
    })
}

/// Removes the announcement of the key pair of a 32-byte `seed` under a 32-byte topic;
/// `*out_nodes` (may be NULL) is how many confirmed. Blocking (refused on the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_dht_unannounce(
    dht: *const p2pswarm_dht,
    topic: *const u8,
    topic_len: usize,
    seed: *const u8,
    seed_len: usize,
    out_nodes: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        let t = array::<32>(topic, topic_len)?;
        let kp = key_pair_required(seed, seed_len)?;
        let n = d.h.unannounce(t, kp).wait().map_err(code)?.map_err(code)?;
        if !out_nodes.is_null() {
            put(out_nodes, n);
        }
        Ok(())
    })
}

/// Stores `len` bytes (at most 1000) as an immutable value; writes its 32-byte hash (the key to
/// get it) to `out_hash`. Blocking (refused on the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_dht_immutable_put(
    dht: *const p2pswarm_dht,
    value: *const u8,
    len: usize,
    out_hash: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        let v = bytes(value, len)?.to_vec();
        out(out_hash)?;
        let h = d.h.immutable_put(v).wait().map_err(code)?.map_err(code)?;
        put_bytes(out_hash, &h);
        Ok(())
    })
}

/// Fetches the immutable value with this 32-byte hash: `*out_value` is owned by the caller
/// (`p2pswarm_buffer_free`). `P2PSWARM_ERR_NOT_FOUND` if no node has it. Blocking (refused on
/// the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_dht_immutable_get(
    dht: *const p2pswarm_dht,
    hash: *const u8,
    hash_len: usize,
    out_value: *mut *mut p2pswarm_buffer,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        let h = array::<32>(hash, hash_len)?;
        out(out_value)?;
        let data = d.h.immutable_get(h).wait().map_err(code)?.map_err(code)?;
        put(out_value, boxed(p2pswarm_buffer { data }));
        Ok(())
    })
}

/// Stores `len` bytes (at most 1000) signed with the key pair of a 32-byte `seed` under
/// sequence number `seq` (readers get it by the public key); `*out_nodes` (may be NULL) is how
/// many stored it. `P2PSWARM_ERR_MUTABLE_REFUSED` if `seq` is reused with another value or too
/// low. Blocking (refused on the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_dht_mutable_put(
    dht: *const p2pswarm_dht,
    seed: *const u8,
    seed_len: usize,
    value: *const u8,
    len: usize,
    seq: u64,
    out_nodes: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        let kp = key_pair_required(seed, seed_len)?;
        let v = bytes(value, len)?.to_vec();
        let n =
            d.h.mutable_put(kp, v, seq)
                .wait()
                .map_err(code)?
                .map_err(code)?;
        if !out_nodes.is_null() {
            put(out_nodes, n);
        }
        Ok(())
    })
}

/// Fetches the latest mutable value of a 32-byte public key with sequence number ≥ `min_seq`
/// (signature verified): `*out_value` is owned by the caller (`p2pswarm_buffer_free`) and
/// `*out_seq` is its sequence number. `P2PSWARM_ERR_NOT_FOUND` if none. Blocking (refused on
/// the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_dht_mutable_get(
    dht: *const p2pswarm_dht,
    public_key: *const u8,
    public_key_len: usize,
    min_seq: u64,
    out_value: *mut *mut p2pswarm_buffer,
    out_seq: *mut u64,
) -> p2pswarm_result {
    guard(|| {
        let d = get(dht)?;
        let k = PublicKey(array::<32>(public_key, public_key_len)?);
        out(out_value)?;
        out(out_seq)?;
        let m =
            d.h.mutable_get(k, min_seq)
                .wait()
                .map_err(code)?
                .map_err(code)?;
        put(out_seq, m.seq);
        put(out_value, boxed(p2pswarm_buffer { data: m.value }));
        Ok(())
    })
}
