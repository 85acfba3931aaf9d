//! Swarms and topic discoveries.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use swarm_core::crypto::PublicKey;
use swarm_core::runtime::{Discovery, EventQueue, JoinOptions, SwarmHandle, SwarmOptions};

use crate::api::{
    array, boxed, code, fail, get, guard, guard_val, out, p2pswarm_context, p2pswarm_options,
    p2pswarm_result, put, put_bytes, unbox, P2PSWARM_ERR_BUFFER_TOO_SMALL,
    P2PSWARM_ERR_INVALID_ARGUMENT, P2PSWARM_ERR_NOT_FOUND,
};
use crate::dht::p2pswarm_dht;
use crate::events::p2pswarm_peer_info;

/// `p2pswarm_swarm_join` flag: announce the topic and accept connections.
pub const P2PSWARM_JOIN_SERVER: u32 = 1;
/// `p2pswarm_swarm_join` flag: look the topic up and connect to the peers found.
pub const P2PSWARM_JOIN_CLIENT: u32 = 2;
/// `p2pswarm_swarm_status` flag: a discovery query of the topic is in flight.
pub const P2PSWARM_STATUS_REFRESHING: u32 = 4;
/// `p2pswarm_swarm_status` flag: the swarm is suspended.
pub const P2PSWARM_STATUS_SUSPENDED: u32 = 8;

/// A swarm (Hyperswarm): join topics, get one encrypted connection per peer.
#[derive(Debug)]
pub struct p2pswarm_swarm {
    pub(crate) h: SwarmHandle,
    pub(crate) queue: EventQueue,
}

/// A joined topic (`p2pswarm_swarm_join`).
#[derive(Debug)]
pub struct p2pswarm_discovery {
    d: Discovery,
}

fn flags(f: u32) -> Result<JoinOptions, p2pswarm_result> {
    if f & !(P2PSWARM_JOIN_SERVER | P2PSWARM_JOIN_CLIENT) != 0 {
        return Err(fail(P2PSWARM_ERR_INVALID_ARGUMENT, "unknown join flags"));
    }
    Ok(JoinOptions {
        server: f & P2PSWARM_JOIN_SERVER != 0,
        client: f & P2PSWARM_JOIN_CLIENT != 0,
    })
}

fn key(p: *const u8, len: usize) -> Result<PublicKey, p2pswarm_result> {
    array::<32>(p, len).map(PublicKey)
}

/// Creates a swarm with `options` (NULL: defaults, i.e. the public network) in the context:
/// binds its DHT node and waits until it is bootstrapped. Blocking (refused on the runtime
/// thread). `*out_swarm` is owned by the caller: free it with `p2pswarm_swarm_free`. Its events
/// (CONNECTION, UPDATE, BAN, and DATA/END/CLOSE of its connections) go to the context.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_new(
    ctx: *const p2pswarm_context,
    options: *const p2pswarm_options,
    out_swarm: *mut *mut p2pswarm_swarm,
) -> p2pswarm_result {
    guard(|| {
        let c = get(ctx)?;
        out(out_swarm)?;
        let mut o = SwarmOptions::new();
        if !options.is_null() {
            let opts = get(options)?;
            o.key_pair.clone_from(&opts.key_pair);
            o.seed = opts.seed;
            o.max_peers = opts.max_peers;
            o.max_parallel = opts.max_parallel;
            o.max_client_connections = opts.max_client_connections;
            o.bootstrap.clone_from(&opts.bootstrap);
            o.host = opts.host;
            o.port = opts.port;
            o.ready_timeout = opts.timeout;
            if let Some((Some(cb), ud)) = opts.firewall {
                let err = c.callback_error.clone();
                o.firewall = Some(Arc::new(move |pk: &PublicKey| {
                    let ud = ud;
                    let r = cb(ud.0, pk.0.as_ptr());
                    if r < 0 {
                        err.store(r, Ordering::SeqCst);
                    }
                    r != 0
                }));
            }
        }
        let h =
            c.rt.swarm(o, &c.queue)
                .wait()
                .map_err(code)?
                .map_err(code)?;
        put(
            out_swarm,
            boxed(p2pswarm_swarm {
                h,
                queue: c.queue.clone(),
            }),
        );
        Ok(())
    })
}

/// Starts destroying the swarm (as `p2pswarm_swarm_destroy`, without waiting) and frees the
/// handle. NULL is a no-op. Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_free(swarm: *mut p2pswarm_swarm) {
    guard_val((), || {
        if let Some(s) = unbox(swarm) {
            drop(s.h.destroy());
        }
    });
}

/// The swarm's id, the source of its events; 0 for NULL.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_id(swarm: *const p2pswarm_swarm) -> u64 {
    guard_val(0, || get(swarm).map_or(0, |s| s.h.id()))
}

/// Writes the swarm's 32-byte public key to `out_public_key`.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_public_key(
    swarm: *const p2pswarm_swarm,
    out_public_key: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        out(out_public_key)?;
        put_bytes(out_public_key, &s.h.public_key().0);
        Ok(())
    })
}

/// Joins a 32-byte topic with `P2PSWARM_JOIN_SERVER` and/or `P2PSWARM_JOIN_CLIENT` flags
/// (each join is a discovery session; the topic is left when its last session is destroyed).
/// Non-blocking in effect: returns once discovery started (refused on the runtime thread). `*out_discovery` is owned by the caller (free it with `p2pswarm_discovery_free`;
/// freeing it does not leave the topic). `out_discovery` may be NULL when not wanted.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_join(
    swarm: *const p2pswarm_swarm,
    topic: *const u8,
    topic_len: usize,
    join_flags: u32,
    out_discovery: *mut *mut p2pswarm_discovery,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        let t = array::<32>(topic, topic_len)?;
        let f = flags(join_flags)?;
        let d = s.h.join(t, f).wait().map_err(code)?.map_err(code)?;
        if !out_discovery.is_null() {
            put(out_discovery, boxed(p2pswarm_discovery { d }));
        }
        Ok(())
    })
}

/// Leaves a 32-byte topic: stops announcing and looking it up (connections stay). Blocking
/// (refused on the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_leave(
    swarm: *const p2pswarm_swarm,
    topic: *const u8,
    topic_len: usize,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        let t = array::<32>(topic, topic_len)?;
        s.h.leave(t).wait().map_err(code)
    })
}

/// The discovery state of a joined 32-byte topic: `*out_flags` gets `P2PSWARM_JOIN_SERVER` /
/// `P2PSWARM_JOIN_CLIENT` (some session announces / looks it up), `P2PSWARM_STATUS_REFRESHING`
/// and `P2PSWARM_STATUS_SUSPENDED`; `*out_sessions` (may be NULL) the number of live discovery
/// sessions. `P2PSWARM_ERR_NOT_FOUND` if the topic is not joined. Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_status(
    swarm: *const p2pswarm_swarm,
    topic: *const u8,
    topic_len: usize,
    out_flags: *mut u32,
    out_sessions: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        let t = array::<32>(topic, topic_len)?;
        out(out_flags)?;
        let st =
            s.h.status(&t)
                .ok_or_else(|| fail(P2PSWARM_ERR_NOT_FOUND, "topic not joined"))?;
        let mut f = 0;
        for (on, bit) in [
            (st.server, P2PSWARM_JOIN_SERVER),
            (st.client, P2PSWARM_JOIN_CLIENT),
            (st.refreshing, P2PSWARM_STATUS_REFRESHING),
            (st.suspended, P2PSWARM_STATUS_SUSPENDED),
        ] {
            if on {
                f |= bit;
            }
        }
        put(out_flags, f);
        if !out_sessions.is_null() {
            put(out_sessions, st.sessions);
        }
        Ok(())
    })
}

/// Keeps a connection to the peer with this 32-byte public key (reconnecting). Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_join_peer(
    swarm: *const p2pswarm_swarm,
    public_key: *const u8,
    public_key_len: usize,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        s.h.join_peer(key(public_key, public_key_len)?);
        Ok(())
    })
}

/// Stops keeping a connection to the peer (an open connection stays). Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_leave_peer(
    swarm: *const p2pswarm_swarm,
    public_key: *const u8,
    public_key_len: usize,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        s.h.leave_peer(&key(public_key, public_key_len)?);
        Ok(())
    })
}

/// Waits for pending announces and connection attempts; `*out_flushed` is false if the swarm
/// was destroyed meanwhile. `out_flushed` may be NULL. Blocking (refused on the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_flush(
    swarm: *const p2pswarm_swarm,
    out_flushed: *mut bool,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        let r = s.h.flush().wait().map_err(code)?;
        if !out_flushed.is_null() {
            put(out_flushed, r);
        }
        Ok(())
    })
}

/// Starts accepting connections (done by the first server join). Blocking (refused on the
/// runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_listen(swarm: *const p2pswarm_swarm) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        s.h.listen().wait().map_err(code)?.map_err(code)
    })
}

/// Suspends networking (what an app calls when backgrounded): drops every connection, stops
/// discovery (unannouncing) and retries until `p2pswarm_swarm_resume`. Blocking (refused on
/// the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_suspend(swarm: *const p2pswarm_swarm) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        s.h.suspend().wait().map_err(code)?.map_err(code)
    })
}

/// Resumes networking: refreshes every discovery and re-dials explicit peers. Blocking
/// (refused on the runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_resume(swarm: *const p2pswarm_swarm) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        s.h.resume().wait().map_err(code)?.map_err(code)
    })
}

/// Leaves every topic, closes the connections and the DHT node. Idempotent. Blocking (refused
/// on the runtime thread). The handle must still be freed.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_destroy(swarm: *const p2pswarm_swarm) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        s.h.destroy().wait().map_err(code)
    })
}

/// Writes the number of connection attempts in progress to `*out_count`. Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_connecting(
    swarm: *const p2pswarm_swarm,
    out_count: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        out(out_count)?;
        put(out_count, s.h.connecting());
        Ok(())
    })
}

/// Writes the number of open connections to `*out_count`. Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_connections(
    swarm: *const p2pswarm_swarm,
    out_count: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        out(out_count)?;
        put(out_count, s.h.connections());
        Ok(())
    })
}

/// Writes the number of known peers to `*out_count`. Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_peers_len(
    swarm: *const p2pswarm_swarm,
    out_count: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        out(out_count)?;
        put(out_count, s.h.peers().len());
        Ok(())
    })
}

/// Writes the known peers' public keys, 32 bytes each, to `out_keys` (room for `capacity`
/// keys) and their number to `*out_count`. `P2PSWARM_ERR_BUFFER_TOO_SMALL` (nothing written)
/// if there are more than `capacity`. `out_keys` may be NULL when `capacity` is 0.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_peers(
    swarm: *const p2pswarm_swarm,
    out_keys: *mut u8,
    capacity: usize,
    out_count: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        out(out_count)?;
        let peers = s.h.peers();
        if peers.len() > capacity {
            return Err(fail(
                P2PSWARM_ERR_BUFFER_TOO_SMALL,
                "more peers than capacity",
            ));
        }
        if !peers.is_empty() {
            out(out_keys)?;
            let all: Vec<u8> = peers.iter().flat_map(|p| p.public_key.0).collect();
            put_bytes(out_keys, &all);
        }
        put(out_count, peers.len());
        Ok(())
    })
}

/// The info of one peer: `*out_info` is owned by the caller (free it with
/// `p2pswarm_peer_info_free`). `P2PSWARM_ERR_NOT_FOUND` if the swarm does not know it.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_peer(
    swarm: *const p2pswarm_swarm,
    public_key: *const u8,
    public_key_len: usize,
    out_info: *mut *mut p2pswarm_peer_info,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        let k = key(public_key, public_key_len)?;
        out(out_info)?;
        let info =
            s.h.peer(&k)
                .ok_or_else(|| fail(P2PSWARM_ERR_NOT_FOUND, "unknown peer"))?;
        put(out_info, boxed(p2pswarm_peer_info { info }));
        Ok(())
    })
}

/// Bans (`banned` true) or un-bans a peer: no more connection attempts to or from it (open
/// connections stay). Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_ban(
    swarm: *const p2pswarm_swarm,
    public_key: *const u8,
    public_key_len: usize,
    banned: bool,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        s.h.ban(&key(public_key, public_key_len)?, banned);
        Ok(())
    })
}

/// The swarm's DHT node: `*out_dht` is a new handle owned by the caller (free it with
/// `p2pswarm_dht_free`, which does not close the swarm's node). Its connections report to the
/// swarm's context.
#[no_mangle]
pub extern "C" fn p2pswarm_swarm_dht(
    swarm: *const p2pswarm_swarm,
    out_dht: *mut *mut p2pswarm_dht,
) -> p2pswarm_result {
    guard(|| {
        let s = get(swarm)?;
        out(out_dht)?;
        put(
            out_dht,
            boxed(p2pswarm_dht {
                h: s.h.dht(&s.queue),
                owned: false,
            }),
        );
        Ok(())
    })
}

/// Writes the discovery's 32-byte topic to `out_topic`.
#[no_mangle]
pub extern "C" fn p2pswarm_discovery_topic(
    discovery: *const p2pswarm_discovery,
    out_topic: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let d = get(discovery)?;
        out(out_topic)?;
        put_bytes(out_topic, &d.d.topic());
        Ok(())
    })
}

/// Waits for the discovery's query in flight: the topic is announced (server) and looked up
/// (client); `*out_flushed` (may be NULL) is false if that query failed or the swarm was
/// destroyed. Blocking (refused on the
/// runtime thread).
#[no_mangle]
pub extern "C" fn p2pswarm_discovery_flushed(
    discovery: *const p2pswarm_discovery,
    out_flushed: *mut bool,
) -> p2pswarm_result {
    guard(|| {
        let d = get(discovery)?;
        let r = d.d.flushed().wait().map_err(code)?;
        if !out_flushed.is_null() {
            put(out_flushed, r);
        }
        Ok(())
    })
}

/// Changes the roles (`P2PSWARM_JOIN_*` flags; at least one, else
/// `P2PSWARM_ERR_INVALID_ARGUMENT`) and re-announces / looks up now, then waits for that round.
/// `*out_ok` (may be NULL) is false if the round's query failed. Blocking (refused on the
/// runtime thread); `P2PSWARM_ERR_CLOSED` once the discovery is destroyed.
#[no_mangle]
pub extern "C" fn p2pswarm_discovery_refresh(
    discovery: *const p2pswarm_discovery,
    join_flags: u32,
    out_ok: *mut bool,
) -> p2pswarm_result {
    guard(|| {
        let d = get(discovery)?;
        let f = flags(join_flags)?;
        let ok = d.d.refresh(f).wait().map_err(code)?.map_err(code)?;
        if !out_ok.is_null() {
            put(out_ok, ok);
        }
        Ok(())
    })
}

/// Ends this discovery (the last discovery of a topic leaves it, unannouncing). Blocking (refused on the runtime
/// thread). The handle must still be freed.
#[no_mangle]
pub extern "C" fn p2pswarm_discovery_destroy(
    discovery: *const p2pswarm_discovery,
) -> p2pswarm_result {
    guard(|| {
        let d = get(discovery)?;
        d.d.destroy().wait().map_err(code)
    })
}

/// Frees a discovery handle (the topic stays joined). NULL is a no-op.
#[no_mangle]
pub extern "C" fn p2pswarm_discovery_free(discovery: *mut p2pswarm_discovery) {
    guard_val((), || drop(unbox(discovery)));
}
