//! Events (pull with timeout, readiness fd, callback) and connections.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::Ordering;
use std::time::Duration;

use swarm_core::runtime::{Conn, Event, Next, PeerInfo};

use crate::api::{
    boxed, bytes, fail, get, get_mut, guard, guard_val, out, p2pswarm_context, p2pswarm_result,
    put, put_bytes, unbox, UserData, P2PSWARM_ERR_CLOSED, P2PSWARM_ERR_NOT_FOUND,
    P2PSWARM_ERR_TIMEOUT, P2PSWARM_ERR_WOULD_DEADLOCK,
};

/// Kinds of events.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum p2pswarm_event_kind {
    /// Not an event (NULL).
    P2PSWARM_EVENT_NONE = 0,
    /// A new connection: take it with `p2pswarm_event_take_connection`. The source is a swarm
    /// (`p2pswarm_swarm_id`; peer info available) or a DHT server (`p2pswarm_server_id`).
    P2PSWARM_EVENT_CONNECTION = 1,
    /// Bytes received on a connection (`p2pswarm_event_data`).
    P2PSWARM_EVENT_DATA = 2,
    /// The remote end finished writing.
    P2PSWARM_EVENT_END = 3,
    /// The connection closed (the last event of its id; `p2pswarm_event_error` may say why).
    P2PSWARM_EVENT_CLOSE = 4,
    /// A swarm's counts changed.
    P2PSWARM_EVENT_UPDATE = 5,
    /// A swarm banned a peer (peer info available).
    P2PSWARM_EVENT_BAN = 6,
    /// A connection whose write was refused with `P2PSWARM_ERR_WOULD_BLOCK` has room again: at
    /// most 4 MiB are queued (half the 8 MiB limit).
    P2PSWARM_EVENT_DRAIN = 7,
}

pub use p2pswarm_event_kind::*;

/// An event. Owned by the caller after `p2pswarm_next_event` (free it with
/// `p2pswarm_event_free`, which also frees its data); borrowed during an event callback.
#[derive(Debug)]
pub struct p2pswarm_event {
    pub(crate) ev: Event,
    error: Option<CString>,
}

impl p2pswarm_event {
    fn new(ev: Event) -> Self {
        let error = match &ev {
            Event::Close { error: Some(e), .. } => CString::new(e.replace('\0', " ")).ok(),
            _ => None,
        };
        Self { ev, error }
    }
}

/// An event callback: called on the runtime thread with `userdata` and the event, borrowed for
/// the call (take its connection with `p2pswarm_event_take_connection`; do not free it).
/// Return 0 when handled. A non-zero value declines the event: it goes to the queue instead
/// (`p2pswarm_next_event`, the fd), the callback is removed, and a negative value is reported
/// by `p2pswarm_context_callback_error`. It must not block: blocking calls made from it fail
/// with `P2PSWARM_ERR_WOULD_DEADLOCK`; non-blocking ones (writes, counts) are fine.
pub type p2pswarm_event_callback =
    Option<extern "C" fn(userdata: *mut c_void, event: *mut p2pswarm_event) -> c_int>;

/// Takes the next event: waits up to `timeout_ms` milliseconds (0: do not wait; negative: wait
/// forever). Returns `P2PSWARM_OK` and writes `*out_event` (owned by the caller: free it with
/// `p2pswarm_event_free`), `P2PSWARM_ERR_TIMEOUT`, or `P2PSWARM_ERR_CLOSED` once the context is
/// shut down and its queue drained. Any thread; with a non-zero timeout not on the runtime
/// thread (`P2PSWARM_ERR_WOULD_DEADLOCK`). While an event callback is set, events go to it.
/// Flow control: while more than 4 MiB of received data waits in the queue, connections stop
/// reading (the senders are then held back by the transport's receive window).
#[no_mangle]
pub extern "C" fn p2pswarm_next_event(
    ctx: *const p2pswarm_context,
    timeout_ms: i32,
    out_event: *mut *mut p2pswarm_event,
) -> p2pswarm_result {
    guard(|| {
        let c = get(ctx)?;
        out(out_event)?;
        let next = if timeout_ms == 0 {
            c.queue.try_next()
        } else if c.rt.on_runtime_thread() {
            return Err(fail(
                P2PSWARM_ERR_WOULD_DEADLOCK,
                "p2pswarm_next_event with a timeout on the runtime thread",
            ));
        } else {
            let t = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
            c.queue.next_blocking(t)
        };
        match next {
            Next::Event(ev) => {
                put(out_event, boxed(p2pswarm_event::new(ev)));
                Ok(())
            }
            Next::Timeout => Err(fail(P2PSWARM_ERR_TIMEOUT, "no event")),
            Next::Closed => Err(fail(P2PSWARM_ERR_CLOSED, "context shut down")),
        }
    })
}

/// Writes a file descriptor that is readable while events are queued (and once the context is
/// shut down) to `*out_fd`, for poll/select/epoll loops (level-triggered). Never read from,
/// write to or close it: when it is readable call `p2pswarm_next_event(ctx, 0, ...)` until it
/// returns `P2PSWARM_ERR_TIMEOUT`. It stays valid until `p2pswarm_context_free`. Any thread.
#[no_mangle]
pub extern "C" fn p2pswarm_event_fd(
    ctx: *const p2pswarm_context,
    out_fd: *mut c_int,
) -> p2pswarm_result {
    guard(|| {
        let c = get(ctx)?;
        out(out_fd)?;
        #[cfg(unix)]
        {
            put(out_fd, c.queue.readiness_fd());
            Ok(())
        }
        #[cfg(not(unix))]
        {
            let _ = c;
            Err(crate::api::fail(
                crate::api::P2PSWARM_ERR_UNSUPPORTED,
                "no readiness fd on this platform",
            ))
        }
    })
}

/// Sets (or with a NULL `callback` removes) the event callback; see `p2pswarm_event_callback`.
/// Events queued before stay queued. `userdata` must stay valid while the callback is set and
/// be usable from the runtime thread. Any thread.
#[no_mangle]
pub extern "C" fn p2pswarm_set_event_callback(
    ctx: *const p2pswarm_context,
    callback: p2pswarm_event_callback,
    userdata: *mut c_void,
) -> p2pswarm_result {
    guard(|| {
        let c = get(ctx)?;
        let Some(cb) = callback else {
            c.queue.set_handler(None);
            return Ok(());
        };
        let ud = UserData(userdata);
        let err = c.callback_error.clone();
        c.queue.set_handler(Some(Box::new(move |ev| {
            let mut e = p2pswarm_event::new(ev);
            let ud = ud;
            let r = cb(ud.0, &raw mut e);
            if r == 0 {
                return Ok(());
            }
            if r < 0 {
                err.store(r, Ordering::SeqCst);
            }
            Err(e.ev)
        })));
        Ok(())
    })
}

/// The event's kind; `P2PSWARM_EVENT_NONE` for NULL.
#[no_mangle]
pub extern "C" fn p2pswarm_event_get_kind(event: *const p2pswarm_event) -> p2pswarm_event_kind {
    guard_val(P2PSWARM_EVENT_NONE, || {
        get(event).map_or(P2PSWARM_EVENT_NONE, |e| match &e.ev {
            Event::Connection { .. } => P2PSWARM_EVENT_CONNECTION,
            Event::Data { .. } => P2PSWARM_EVENT_DATA,
            Event::End { .. } => P2PSWARM_EVENT_END,
            Event::Close { .. } => P2PSWARM_EVENT_CLOSE,
            Event::Update { .. } => P2PSWARM_EVENT_UPDATE,
            Event::Ban { .. } => P2PSWARM_EVENT_BAN,
            Event::Drain { .. } => P2PSWARM_EVENT_DRAIN,
            _ => P2PSWARM_EVENT_NONE,
        })
    })
}

/// The id of the swarm or server that produced a CONNECTION, UPDATE or BAN event; 0 otherwise.
#[no_mangle]
pub extern "C" fn p2pswarm_event_source(event: *const p2pswarm_event) -> u64 {
    guard_val(0, || {
        get(event).map_or(0, |e| match &e.ev {
            Event::Connection { source, .. }
            | Event::Update { source }
            | Event::Ban { source, .. } => *source,
            _ => 0,
        })
    })
}

/// The connection id of a CONNECTION, DATA, END, CLOSE or DRAIN event (see `p2pswarm_connection_id`);
/// 0 otherwise.
#[no_mangle]
pub extern "C" fn p2pswarm_event_connection_id(event: *const p2pswarm_event) -> u64 {
    guard_val(0, || {
        get(event).map_or(0, |e| match &e.ev {
            Event::Connection { conn, .. } => conn.id(),
            Event::Data { conn, .. }
            | Event::End { conn }
            | Event::Close { conn, .. }
            | Event::Drain { conn } => *conn,
            _ => 0,
        })
    })
}

/// The bytes of a DATA event: `*out_data` and `*out_len` borrow the event's buffer, valid until
/// the event is freed (or the callback returns). `P2PSWARM_ERR_NOT_FOUND` for other kinds.
#[no_mangle]
pub extern "C" fn p2pswarm_event_data(
    event: *const p2pswarm_event,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let e = get(event)?;
        out(out_data)?;
        out(out_len)?;
        let Event::Data { data, .. } = &e.ev else {
            return Err(fail(P2PSWARM_ERR_NOT_FOUND, "not a DATA event"));
        };
        put(out_data, data.as_ptr());
        put(out_len, data.len());
        Ok(())
    })
}

/// The error of a CLOSE event as a NUL-terminated string borrowed from the event; NULL when the
/// connection closed cleanly or for other kinds.
#[no_mangle]
pub extern "C" fn p2pswarm_event_error(event: *const p2pswarm_event) -> *const c_char {
    guard_val(std::ptr::null(), || {
        get(event)
            .ok()
            .and_then(|e| e.error.as_ref())
            .map_or(std::ptr::null(), |s| s.as_ptr())
    })
}

/// The remote public key (32 bytes to `out_public_key`) of a CONNECTION or BAN event.
/// `P2PSWARM_ERR_NOT_FOUND` for other kinds.
#[no_mangle]
pub extern "C" fn p2pswarm_event_public_key(
    event: *const p2pswarm_event,
    out_public_key: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let e = get(event)?;
        out(out_public_key)?;
        let pk = match &e.ev {
            Event::Connection { conn, .. } => conn.remote_public_key(),
            Event::Ban { peer, .. } => peer.public_key,
            _ => return Err(fail(P2PSWARM_ERR_NOT_FOUND, "no public key in this event")),
        };
        put_bytes(out_public_key, &pk.0);
        Ok(())
    })
}

/// Takes the connection of a CONNECTION event: `*out_connection` is a new handle owned by the
/// caller (free it with `p2pswarm_connection_free`). A connection not taken is destroyed when
/// its event is freed. Taking twice gives two handles to the same connection.
/// `P2PSWARM_ERR_NOT_FOUND` for other kinds.
#[no_mangle]
pub extern "C" fn p2pswarm_event_take_connection(
    event: *mut p2pswarm_event,
    out_connection: *mut *mut p2pswarm_connection,
) -> p2pswarm_result {
    guard(|| {
        let e = get_mut(event)?;
        out(out_connection)?;
        let Event::Connection { conn, .. } = &e.ev else {
            return Err(fail(P2PSWARM_ERR_NOT_FOUND, "not a CONNECTION event"));
        };
        put(
            out_connection,
            boxed(p2pswarm_connection { conn: conn.clone() }),
        );
        Ok(())
    })
}

/// The peer info of a swarm CONNECTION event or of a BAN event: `*out_info` is owned by the
/// caller (free it with `p2pswarm_peer_info_free`). `P2PSWARM_ERR_NOT_FOUND` otherwise (e.g.
/// connections accepted by a DHT server).
#[no_mangle]
pub extern "C" fn p2pswarm_event_peer_info(
    event: *const p2pswarm_event,
    out_info: *mut *mut p2pswarm_peer_info,
) -> p2pswarm_result {
    guard(|| {
        let e = get(event)?;
        out(out_info)?;
        let info = match &e.ev {
            Event::Connection { peer: Some(p), .. } | Event::Ban { peer: p, .. } => p.clone(),
            _ => return Err(fail(P2PSWARM_ERR_NOT_FOUND, "no peer info in this event")),
        };
        put(out_info, boxed(p2pswarm_peer_info { info }));
        Ok(())
    })
}

/// Frees an event and its data. NULL is a no-op. Never free an event inside the callback that
/// received it.
#[no_mangle]
pub extern "C" fn p2pswarm_event_free(event: *mut p2pswarm_event) {
    guard_val((), || drop(unbox(event)));
}

/// What a swarm knows about a peer (a snapshot).
#[derive(Debug)]
pub struct p2pswarm_peer_info {
    pub(crate) info: PeerInfo,
}

/// Writes the peer's 32-byte public key to `out_public_key`.
#[no_mangle]
pub extern "C" fn p2pswarm_peer_info_public_key(
    info: *const p2pswarm_peer_info,
    out_public_key: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let i = get(info)?;
        out(out_public_key)?;
        put_bytes(out_public_key, &i.info.public_key.0);
        Ok(())
    })
}

/// Number of topics the peer was found on (as a client); 0 for NULL.
#[no_mangle]
pub extern "C" fn p2pswarm_peer_info_topics_len(info: *const p2pswarm_peer_info) -> usize {
    guard_val(0, || get(info).map_or(0, |i| i.info.topics.len()))
}

/// Writes topic number `index` (32 bytes) to `out_topic`; `P2PSWARM_ERR_NOT_FOUND` if out of
/// range.
#[no_mangle]
pub extern "C" fn p2pswarm_peer_info_topic(
    info: *const p2pswarm_peer_info,
    index: usize,
    out_topic: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let i = get(info)?;
        out(out_topic)?;
        let t = i
            .info
            .topics
            .get(index)
            .ok_or_else(|| fail(P2PSWARM_ERR_NOT_FOUND, "topic index out of range"))?;
        put_bytes(out_topic, t);
        Ok(())
    })
}

/// Whether reconnecting to the peer is prioritised; false for NULL.
#[no_mangle]
pub extern "C" fn p2pswarm_peer_info_prioritized(info: *const p2pswarm_peer_info) -> bool {
    guard_val(false, || get(info).is_ok_and(|i| i.info.prioritized))
}

/// Whether the peer is banned; false for NULL.
#[no_mangle]
pub extern "C" fn p2pswarm_peer_info_banned(info: *const p2pswarm_peer_info) -> bool {
    guard_val(false, || get(info).is_ok_and(|i| i.info.banned))
}

/// Whether the peer was added with `p2pswarm_swarm_join_peer`; false for NULL.
#[no_mangle]
pub extern "C" fn p2pswarm_peer_info_explicit(info: *const p2pswarm_peer_info) -> bool {
    guard_val(false, || get(info).is_ok_and(|i| i.info.explicit))
}

/// Frees peer info. NULL is a no-op.
#[no_mangle]
pub extern "C" fn p2pswarm_peer_info_free(info: *mut p2pswarm_peer_info) {
    guard_val((), || drop(unbox(info)));
}

/// An encrypted connection (swarm or DHT). Its received bytes arrive as DATA events with its
/// id. A connection stays open while a handle to it (or its CONNECTION event) exists.
#[derive(Debug)]
pub struct p2pswarm_connection {
    pub(crate) conn: Conn,
}

/// The connection's id (as in its events); 0 for NULL.
#[no_mangle]
pub extern "C" fn p2pswarm_connection_id(connection: *const p2pswarm_connection) -> u64 {
    guard_val(0, || get(connection).map_or(0, |c| c.conn.id()))
}

/// Queues `len` bytes (copied; `data` is only read during the call) for sending. Non-blocking
/// (usable in callbacks); a write failure closes the connection (CLOSE event with an error).
/// `P2PSWARM_ERR_WOULD_BLOCK` (nothing queued) when more than 8 MiB would wait to be sent (a
/// write into an empty queue is always taken): retry after the connection's DRAIN event.
/// `P2PSWARM_ERR_CLOSED` if the connection is already closed.
#[no_mangle]
pub extern "C" fn p2pswarm_connection_write(
    connection: *const p2pswarm_connection,
    data: *const u8,
    len: usize,
) -> p2pswarm_result {
    guard(|| {
        let c = get(connection)?;
        let d = bytes(data, len)?;
        c.conn.write_nowait(d.to_vec()).map_err(crate::api::code)
    })
}

/// Writes the number of bytes queued on the connection and not yet handed to the transport to
/// `*out_bytes` (`p2pswarm_connection_write` refuses writes beyond 8 MiB). Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_connection_queued_bytes(
    connection: *const p2pswarm_connection,
    out_bytes: *mut usize,
) -> p2pswarm_result {
    guard(|| {
        let c = get(connection)?;
        out(out_bytes)?;
        put(out_bytes, c.conn.queued_bytes());
        Ok(())
    })
}

/// Ends our side after the queued writes (the remote gets END); reading continues until the
/// remote ends too, then CLOSE. Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_connection_end(
    connection: *const p2pswarm_connection,
) -> p2pswarm_result {
    guard(|| {
        let c = get(connection)?;
        c.conn.end().map_err(crate::api::code)
    })
}

/// Closes the connection after the queued writes are handed to the stream (CLOSE follows).
/// Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_connection_destroy(
    connection: *const p2pswarm_connection,
) -> p2pswarm_result {
    guard(|| {
        let c = get(connection)?;
        c.conn.destroy().map_err(crate::api::code)
    })
}

/// Writes the remote's 32-byte public key to `out_public_key`.
#[no_mangle]
pub extern "C" fn p2pswarm_connection_remote_public_key(
    connection: *const p2pswarm_connection,
    out_public_key: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let c = get(connection)?;
        out(out_public_key)?;
        put_bytes(out_public_key, &c.conn.remote_public_key().0);
        Ok(())
    })
}

/// Writes the 64-byte Noise handshake hash to `out_hash` (`P2PSWARM_ERR_NOT_FOUND` if unknown).
#[no_mangle]
pub extern "C" fn p2pswarm_connection_handshake_hash(
    connection: *const p2pswarm_connection,
    out_hash: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let c = get(connection)?;
        out(out_hash)?;
        let h = c
            .conn
            .handshake_hash()
            .ok_or_else(|| fail(P2PSWARM_ERR_NOT_FOUND, "no handshake hash"))?;
        put_bytes(out_hash, &h);
        Ok(())
    })
}

/// Writes whether we dialled this connection to `*out_initiator`.
#[no_mangle]
pub extern "C" fn p2pswarm_connection_is_initiator(
    connection: *const p2pswarm_connection,
    out_initiator: *mut bool,
) -> p2pswarm_result {
    guard(|| {
        let c = get(connection)?;
        out(out_initiator)?;
        put(out_initiator, c.conn.is_initiator());
        Ok(())
    })
}

/// Frees a connection handle; the connection is destroyed when its last handle (and its
/// CONNECTION event) is freed. NULL is a no-op. Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_connection_free(connection: *mut p2pswarm_connection) {
    guard_val((), || drop(unbox(connection)));
}
