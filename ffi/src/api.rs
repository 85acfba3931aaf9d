//! Result codes, error messages, pointer helpers, the context and small utilities.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use swarm_core::crypto::KeyPair;
use swarm_core::runtime::{Error, EventQueue, Runtime};

/// Result of every fallible call. The numeric values are stable.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum p2pswarm_result {
    /// Success.
    P2PSWARM_OK = 0,
    /// A required pointer argument was NULL.
    P2PSWARM_ERR_NULL_ARGUMENT = 1,
    /// An argument was invalid (wrong length, unparsable address, bad flags).
    P2PSWARM_ERR_INVALID_ARGUMENT = 2,
    /// Nothing happened before the timeout.
    P2PSWARM_ERR_TIMEOUT = 3,
    /// The context was shut down, or the object was destroyed.
    P2PSWARM_ERR_CLOSED = 4,
    /// A blocking call was made on the runtime thread (from a callback).
    P2PSWARM_ERR_WOULD_DEADLOCK = 5,
    /// An internal panic was caught.
    P2PSWARM_ERR_PANIC = 6,
    /// The output buffer is too small.
    P2PSWARM_ERR_BUFFER_TOO_SMALL = 7,
    /// Not supported (yet).
    P2PSWARM_ERR_UNSUPPORTED = 8,
    /// A callback returned an error.
    P2PSWARM_ERR_CALLBACK = 9,
    /// The requested item does not exist.
    P2PSWARM_ERR_NOT_FOUND = 10,
    /// The connection's write queue is full: nothing was queued; retry after its DRAIN event.
    P2PSWARM_ERR_WOULD_BLOCK = 11,
    /// The UDP sockets could not be bound.
    P2PSWARM_ERR_BIND = 20,
    /// The DHT node did not bootstrap in time.
    P2PSWARM_ERR_BOOTSTRAP_TIMEOUT = 21,
    /// A stream failed.
    P2PSWARM_ERR_IO = 22,
    /// Connect: no node knows a server for the key.
    P2PSWARM_ERR_PEER_NOT_FOUND = 30,
    /// Connect: the server was found but no handshake completed.
    P2PSWARM_ERR_CONNECTION_FAILED = 31,
    /// Connect: the server rejected us (its firewall).
    P2PSWARM_ERR_REJECTED = 32,
    /// Connect: the handshake did not authenticate.
    P2PSWARM_ERR_HANDSHAKE = 33,
    /// Connect: the server is incompatible.
    P2PSWARM_ERR_INCOMPATIBLE = 34,
    /// DHT: the query found no nodes.
    P2PSWARM_ERR_QUERY_FAILED = 40,
    /// DHT: no node stored the value.
    P2PSWARM_ERR_NOT_STORED = 41,
    /// DHT: the key pair is already used by a server on this node.
    P2PSWARM_ERR_KEY_PAIR_IN_USE = 42,
    /// DHT: a mutable put was refused (sequence number reused or too low).
    P2PSWARM_ERR_MUTABLE_REFUSED = 43,
    /// Any other error.
    P2PSWARM_ERR_INTERNAL = 99,
}

pub use p2pswarm_result::*;

pub(crate) type R = Result<(), p2pswarm_result>;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_detail(s: &str) {
    LAST_ERROR.with(|l| {
        let mut l = l.borrow_mut();
        l.clear();
        l.push_str(s);
    });
}

/// Records the detail and maps a runtime error to its code.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn code(e: Error) -> p2pswarm_result {
    use swarm_core::dht::{ConnectError, DhtError};
    set_detail(&e.to_string());
    match e {
        Error::Closed => P2PSWARM_ERR_CLOSED,
        Error::WouldDeadlock => P2PSWARM_ERR_WOULD_DEADLOCK,
        Error::InvalidArgument(_) => P2PSWARM_ERR_INVALID_ARGUMENT,
        Error::Bind(_) => P2PSWARM_ERR_BIND,
        Error::BootstrapTimeout => P2PSWARM_ERR_BOOTSTRAP_TIMEOUT,
        Error::Io(_) => P2PSWARM_ERR_IO,
        Error::Unsupported(_) => P2PSWARM_ERR_UNSUPPORTED,
        Error::WouldBlock => P2PSWARM_ERR_WOULD_BLOCK,
        Error::Connect(c) => match c {
            ConnectError::PeerNotFound => P2PSWARM_ERR_PEER_NOT_FOUND,
            ConnectError::ConnectionFailed => P2PSWARM_ERR_CONNECTION_FAILED,
            ConnectError::Rejected(_) => P2PSWARM_ERR_REJECTED,
            ConnectError::Handshake(_) => P2PSWARM_ERR_HANDSHAKE,
            ConnectError::ServerIncompatible => P2PSWARM_ERR_INCOMPATIBLE,
            ConnectError::Destroyed => P2PSWARM_ERR_CLOSED,
            _ => P2PSWARM_ERR_INTERNAL,
        },
        Error::Dht(d) => match d {
            DhtError::Query(_) => P2PSWARM_ERR_QUERY_FAILED,
            DhtError::NotStored => P2PSWARM_ERR_NOT_STORED,
            DhtError::NotFound => P2PSWARM_ERR_NOT_FOUND,
            DhtError::KeyPairInUse => P2PSWARM_ERR_KEY_PAIR_IN_USE,
            DhtError::MutableRefused(_) => P2PSWARM_ERR_MUTABLE_REFUSED,
            _ => P2PSWARM_ERR_INTERNAL,
        },
        _ => P2PSWARM_ERR_INTERNAL,
    }
}

pub(crate) fn fail(c: p2pswarm_result, detail: &str) -> p2pswarm_result {
    set_detail(detail);
    c
}

/// Runs an entry point: catches panics, turns `Err` into its code.
pub(crate) fn guard(f: impl FnOnce() -> R) -> p2pswarm_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => P2PSWARM_OK,
        Ok(Err(c)) => c,
        Err(_) => fail(P2PSWARM_ERR_PANIC, "internal panic"),
    }
}

/// Runs an infallible entry point, with `default` if it panics.
pub(crate) fn guard_val<T>(default: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(default)
}

/// Borrows a handle.
pub(crate) fn get<'a, T>(p: *const T) -> Result<&'a T, p2pswarm_result> {
    // SAFETY: the caller passes NULL or a live handle made by this library (documented on every
    // function); handles are only freed by their `_free`, after which the caller may not use it.
    unsafe { p.as_ref() }.ok_or_else(|| fail(P2PSWARM_ERR_NULL_ARGUMENT, "NULL handle"))
}

/// Borrows a mutable handle.
pub(crate) fn get_mut<'a, T>(p: *mut T) -> Result<&'a mut T, p2pswarm_result> {
    // SAFETY: as `get`; the caller must not use one handle from two threads at once when calling
    // a function that takes it mutably (documented: options and events).
    unsafe { p.as_mut() }.ok_or_else(|| fail(P2PSWARM_ERR_NULL_ARGUMENT, "NULL handle"))
}

/// Borrows `len` bytes (NULL is allowed only when `len` is 0).
pub(crate) fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], p2pswarm_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(fail(P2PSWARM_ERR_NULL_ARGUMENT, "NULL buffer"));
    }
    // SAFETY: the caller guarantees `p` points to `len` readable bytes for the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Borrows exactly `N` bytes.
pub(crate) fn array<const N: usize>(p: *const u8, len: usize) -> Result<[u8; N], p2pswarm_result> {
    if p.is_null() {
        return Err(fail(P2PSWARM_ERR_NULL_ARGUMENT, "NULL buffer"));
    }
    if len != N {
        return Err(fail(
            P2PSWARM_ERR_INVALID_ARGUMENT,
            &format!("expected {N} bytes, got {len}"),
        ));
    }
    bytes(p, len)?
        .try_into()
        .map_err(|_| fail(P2PSWARM_ERR_INVALID_ARGUMENT, "length"))
}

/// Borrows a NUL-terminated UTF-8 string.
pub(crate) fn string<'a>(p: *const c_char) -> Result<&'a str, p2pswarm_result> {
    if p.is_null() {
        return Err(fail(P2PSWARM_ERR_NULL_ARGUMENT, "NULL string"));
    }
    // SAFETY: the caller guarantees a NUL-terminated string readable for the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| fail(P2PSWARM_ERR_INVALID_ARGUMENT, "string is not UTF-8"))
}

/// Checks an out-pointer before the work is done.
pub(crate) fn out<T>(p: *mut T) -> R {
    if p.is_null() {
        return Err(fail(P2PSWARM_ERR_NULL_ARGUMENT, "NULL out-parameter"));
    }
    Ok(())
}

/// Writes an out-parameter (checked with `out` before).
pub(crate) fn put<T>(p: *mut T, v: T) {
    // SAFETY: `p` was checked non-NULL and the caller guarantees it is writable and aligned.
    unsafe { p.write(v) }
}

/// Writes bytes to an out-buffer of exactly `src.len()` bytes.
pub(crate) fn put_bytes(p: *mut u8, src: &[u8]) {
    // SAFETY: `p` was checked non-NULL; the caller guarantees `src.len()` writable bytes
    // (the size is part of each function's contract: 32 or 64).
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) }
}

/// Moves a value into a new handle.
pub(crate) fn boxed<T>(v: T) -> *mut T {
    Box::into_raw(Box::new(v))
}

/// Frees a handle made by `boxed`.
pub(crate) fn unbox<T>(p: *mut T) -> Option<Box<T>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` came from `Box::into_raw` in this library and the caller frees it once.
    Some(unsafe { Box::from_raw(p) })
}

/// A C pointer that the caller promises may be used from the runtime thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);
// SAFETY: userdata is only handed back to the caller's own callbacks; the documentation of each
// callback requires it to be usable from the runtime thread.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

/// A context: one runtime thread, one event queue. Every swarm, DHT node and testnet is made
/// from a context and reports its events to it.
pub struct p2pswarm_context {
    pub(crate) rt: Runtime,
    pub(crate) queue: EventQueue,
    /// The last error value returned by a callback (0: none pending).
    pub(crate) callback_error: Arc<AtomicI32>,
}

impl std::fmt::Debug for p2pswarm_context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("p2pswarm_context").finish_non_exhaustive()
    }
}

/// The library version, a static NUL-terminated string (never free it).
#[no_mangle]
pub extern "C" fn p2pswarm_version() -> *const c_char {
    c"p2pswarm 0.1.0 (hyperswarm 4.17 / hyperdht 6.34 compatible)".as_ptr()
}

/// A static NUL-terminated description of a result code (never free it); unknown codes give
/// "unknown error". Thread-safe.
#[no_mangle]
pub extern "C" fn p2pswarm_error_message(result: c_int) -> *const c_char {
    let s: &'static CStr = match result {
        0 => c"ok",
        1 => c"a required pointer argument was NULL",
        2 => c"invalid argument",
        3 => c"timed out",
        4 => c"closed",
        5 => c"blocking call on the runtime thread (from a callback) would deadlock",
        6 => c"internal panic",
        7 => c"buffer too small",
        8 => c"unsupported",
        9 => c"a callback returned an error",
        10 => c"not found",
        11 => c"write queue full (wait for the DRAIN event)",
        20 => c"could not bind UDP sockets",
        21 => c"DHT bootstrap timed out",
        22 => c"i/o error",
        30 => c"peer not found",
        31 => c"peer connection failed",
        32 => c"connection rejected by the server",
        33 => c"handshake failed",
        34 => c"server incompatible",
        40 => c"DHT query failed (no nodes)",
        41 => c"no DHT node stored the value",
        42 => c"key pair already used by a server on this node",
        43 => c"mutable put refused (seq)",
        99 => c"internal error",
        _ => c"unknown error",
    };
    s.as_ptr()
}

/// Copies the calling thread's last error detail (set by the last failing call on this thread)
/// into `buf` as a NUL-terminated string, truncated to `buf_len` bytes. Returns the length of
/// the full message without the NUL (like snprintf). `buf` may be NULL when `buf_len` is 0.
#[no_mangle]
pub extern "C" fn p2pswarm_last_error_detail(buf: *mut c_char, buf_len: usize) -> usize {
    guard_val(0, || {
        LAST_ERROR.with(|l| {
            let l = l.borrow();
            if !buf.is_null() && buf_len > 0 {
                let n = l.len().min(buf_len - 1);
                let mut b = l.as_bytes()[..n].to_vec();
                b.push(0);
                put_bytes(buf.cast::<u8>(), &b);
            }
            l.len()
        })
    })
}

/// Creates a context: starts its runtime thread. On success `*out` owns the context: release it
/// with `p2pswarm_context_free`. Any thread.
#[no_mangle]
pub extern "C" fn p2pswarm_context_new(out_ctx: *mut *mut p2pswarm_context) -> p2pswarm_result {
    guard(|| {
        out(out_ctx)?;
        let rt = Runtime::new().map_err(code)?;
        let queue = rt.event_queue().map_err(code)?;
        put(
            out_ctx,
            boxed(p2pswarm_context {
                rt,
                queue,
                callback_error: Arc::new(AtomicI32::new(0)),
            }),
        );
        Ok(())
    })
}

/// Shuts the context down (idempotent): stops the runtime thread, which closes every swarm, DHT
/// node, server and connection made from it; the event queue closes (queued events can still be
/// taken, then `p2pswarm_next_event` returns `P2PSWARM_ERR_CLOSED`) and calls on its objects
/// return `P2PSWARM_ERR_CLOSED`. Blocks until the runtime thread has exited, except when called
/// on the runtime thread (from a callback), where it only signals it. Handles stay valid and must
/// still be freed.
#[no_mangle]
pub extern "C" fn p2pswarm_context_shutdown(ctx: *const p2pswarm_context) -> p2pswarm_result {
    guard(|| {
        let c = get(ctx)?;
        c.rt.shutdown();
        c.queue.close();
        Ok(())
    })
}

/// Shuts the context down (as `p2pswarm_context_shutdown`) and frees it. NULL is a no-op. Must
/// not be called on the runtime thread (from a callback): the handle would be freed while the
/// callback's caller still uses it; use `p2pswarm_context_shutdown` there.
#[no_mangle]
pub extern "C" fn p2pswarm_context_free(ctx: *mut p2pswarm_context) {
    guard_val((), || {
        if let Some(c) = unbox(ctx) {
            c.rt.shutdown();
            c.queue.close();
        }
    });
}

/// Reports and clears a pending callback error: if an event callback or a firewall callback
/// returned a negative value since the last call, returns `P2PSWARM_ERR_CALLBACK` and writes
/// that value to `*out_value`; otherwise returns `P2PSWARM_OK` and writes 0. Any thread.
#[no_mangle]
pub extern "C" fn p2pswarm_context_callback_error(
    ctx: *const p2pswarm_context,
    out_value: *mut c_int,
) -> p2pswarm_result {
    let mut value = 0;
    let r = guard(|| {
        let c = get(ctx)?;
        out(out_value)?;
        value = c.callback_error.swap(0, Ordering::SeqCst);
        Ok(())
    });
    if r != P2PSWARM_OK {
        return r;
    }
    put(out_value, value);
    if value == 0 {
        P2PSWARM_OK
    } else {
        fail(P2PSWARM_ERR_CALLBACK, "a callback returned an error")
    }
}

/// Derives the 32-byte public key of the key pair made from a 32-byte seed (as the swarm `seed`
/// option does) into `out_public_key` (32 writable bytes). Any thread.
#[no_mangle]
pub extern "C" fn p2pswarm_public_key_from_seed(
    seed: *const u8,
    seed_len: usize,
    out_public_key: *mut u8,
) -> p2pswarm_result {
    guard(|| {
        let s = array::<32>(seed, seed_len)?;
        out(out_public_key)?;
        put_bytes(out_public_key, &KeyPair::from_seed(&s).public_key().0);
        Ok(())
    })
}

/// Options of a swarm or a DHT node.
#[derive(Clone)]
pub struct p2pswarm_options {
    pub(crate) key_pair: Option<KeyPair>,
    pub(crate) seed: Option<[u8; 32]>,
    pub(crate) max_peers: Option<usize>,
    pub(crate) max_parallel: Option<usize>,
    pub(crate) max_client_connections: Option<usize>,
    pub(crate) bootstrap: Option<Vec<SocketAddrV4>>,
    pub(crate) host: Option<Ipv4Addr>,
    pub(crate) port: Option<u16>,
    pub(crate) firewall: Option<(p2pswarm_firewall_callback, UserData)>,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for p2pswarm_options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("p2pswarm_options")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

/// A firewall: called on the runtime thread with `userdata` and the remote's 32-byte public key
/// (borrowed for the call). Return 0 to accept, a positive value to reject (and ban) the peer,
/// a negative value to report an error: the peer is rejected and the value is reported by
/// `p2pswarm_context_callback_error`. It must not block nor call into p2pswarm.
pub type p2pswarm_firewall_callback =
    Option<extern "C" fn(userdata: *mut c_void, public_key: *const u8) -> c_int>;

/// Creates options with the defaults: random key pair, 64 peers, 3 parallel attempts, the public
/// bootstrap nodes, bind 0.0.0.0, a 30 s bootstrap timeout, no firewall. `*out_options` is
/// owned by the caller: free it with `p2pswarm_options_free` (it may be freed right after it was
/// used: creating a swarm copies it). An options object is not thread-safe.
#[no_mangle]
pub extern "C" fn p2pswarm_options_new(out_options: *mut *mut p2pswarm_options) -> p2pswarm_result {
    guard(|| {
        out(out_options)?;
        put(
            out_options,
            boxed(p2pswarm_options {
                key_pair: None,
                seed: None,
                max_peers: None,
                max_parallel: None,
                max_client_connections: None,
                bootstrap: None,
                host: None,
                port: None,
                firewall: None,
                timeout: Duration::from_secs(30),
            }),
        );
        Ok(())
    })
}

/// Frees options. NULL is a no-op.
#[no_mangle]
pub extern "C" fn p2pswarm_options_free(options: *mut p2pswarm_options) {
    guard_val((), || drop(unbox(options)));
}

/// Sets the 32-byte seed the key pair is derived from (`seed_len` must be 32).
#[no_mangle]
pub extern "C" fn p2pswarm_options_set_seed(
    options: *mut p2pswarm_options,
    seed: *const u8,
    seed_len: usize,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        o.seed = Some(array::<32>(seed, seed_len)?);
        Ok(())
    })
}

/// Sets the key pair from its 64-byte Ed25519 secret key (seed followed by public key); it wins
/// over a seed. `P2PSWARM_ERR_INVALID_ARGUMENT` if the halves do not match.
#[no_mangle]
pub extern "C" fn p2pswarm_options_set_secret_key(
    options: *mut p2pswarm_options,
    secret_key: *const u8,
    secret_key_len: usize,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        let sk = array::<64>(secret_key, secret_key_len)?;
        let kp = KeyPair::from_secret_key(&sk)
            .map_err(|_| fail(P2PSWARM_ERR_INVALID_ARGUMENT, "invalid secret key"))?;
        o.key_pair = Some(kp);
        Ok(())
    })
}

/// Sets the maximum number of peer connections (must be > 0).
#[no_mangle]
pub extern "C" fn p2pswarm_options_set_max_peers(
    options: *mut p2pswarm_options,
    max_peers: usize,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        if max_peers == 0 {
            return Err(fail(P2PSWARM_ERR_INVALID_ARGUMENT, "max_peers must be > 0"));
        }
        o.max_peers = Some(max_peers);
        Ok(())
    })
}

/// Sets the number of concurrent outgoing connection attempts (must be > 0).
#[no_mangle]
pub extern "C" fn p2pswarm_options_set_max_parallel(
    options: *mut p2pswarm_options,
    max_parallel: usize,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        if max_parallel == 0 {
            return Err(fail(
                P2PSWARM_ERR_INVALID_ARGUMENT,
                "max_parallel must be > 0",
            ));
        }
        o.max_parallel = Some(max_parallel);
        Ok(())
    })
}

/// Sets the maximum number of outgoing (client) connections (must be > 0; default unbounded).
#[no_mangle]
pub extern "C" fn p2pswarm_options_set_max_client_connections(
    options: *mut p2pswarm_options,
    max_client_connections: usize,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        if max_client_connections == 0 {
            return Err(fail(
                P2PSWARM_ERR_INVALID_ARGUMENT,
                "max_client_connections must be > 0",
            ));
        }
        o.max_client_connections = Some(max_client_connections);
        Ok(())
    })
}

/// Adds a bootstrap node, `"A.B.C.D:PORT"` (IPv4 literal; no name resolution). Once one is
/// added, the public bootstrap nodes are no longer used.
#[no_mangle]
pub extern "C" fn p2pswarm_options_add_bootstrap(
    options: *mut p2pswarm_options,
    address: *const c_char,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        let a: SocketAddrV4 = string(address)?
            .parse()
            .map_err(|_| fail(P2PSWARM_ERR_INVALID_ARGUMENT, "expected A.B.C.D:PORT"))?;
        o.bootstrap.get_or_insert_with(Vec::new).push(a);
        Ok(())
    })
}

/// Sets the local IPv4 address to bind, e.g. `"127.0.0.1"` (default `"0.0.0.0"`).
#[no_mangle]
pub extern "C" fn p2pswarm_options_set_host(
    options: *mut p2pswarm_options,
    host: *const c_char,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        let h: Ipv4Addr = string(host)?
            .parse()
            .map_err(|_| fail(P2PSWARM_ERR_INVALID_ARGUMENT, "expected an IPv4 address"))?;
        o.host = Some(h);
        Ok(())
    })
}

/// Sets the preferred UDP port (it and the next four are tried, else any port; default any).
#[no_mangle]
pub extern "C" fn p2pswarm_options_set_port(
    options: *mut p2pswarm_options,
    port: u16,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        o.port = (port != 0).then_some(port);
        Ok(())
    })
}

/// Sets how long creating a swarm or DHT node waits for bootstrapping (milliseconds, > 0).
#[no_mangle]
pub extern "C" fn p2pswarm_options_set_bootstrap_timeout_ms(
    options: *mut p2pswarm_options,
    timeout_ms: u32,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        if timeout_ms == 0 {
            return Err(fail(P2PSWARM_ERR_INVALID_ARGUMENT, "timeout must be > 0"));
        }
        o.timeout = Duration::from_millis(timeout_ms.into());
        Ok(())
    })
}

/// Sets (or with a NULL `callback` removes) the swarm firewall; see
/// `p2pswarm_firewall_callback`. `userdata` must stay valid until the swarm is destroyed and be
/// usable from the runtime thread.
#[no_mangle]
pub extern "C" fn p2pswarm_options_set_firewall(
    options: *mut p2pswarm_options,
    callback: p2pswarm_firewall_callback,
    userdata: *mut c_void,
) -> p2pswarm_result {
    guard(|| {
        let o = get_mut(options)?;
        o.firewall = callback.map(|cb| (Some(cb), UserData(userdata)));
        Ok(())
    })
}

/// A loopback testnet of DHT nodes (for tests and examples).
pub struct p2pswarm_testnet {
    pub(crate) net: swarm_core::runtime::Testnet,
}

impl std::fmt::Debug for p2pswarm_testnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("p2pswarm_testnet").finish_non_exhaustive()
    }
}

/// Starts a testnet of `nodes` (1..=64) persistent DHT nodes on 127.0.0.1 in the context's
/// runtime. Blocking (refused on the runtime thread). `*out_testnet` is owned by the caller:
/// free it with `p2pswarm_testnet_free`, which stops the nodes.
#[no_mangle]
pub extern "C" fn p2pswarm_testnet_new(
    ctx: *const p2pswarm_context,
    nodes: usize,
    out_testnet: *mut *mut p2pswarm_testnet,
) -> p2pswarm_result {
    guard(|| {
        let c = get(ctx)?;
        out(out_testnet)?;
        if !(1..=64).contains(&nodes) {
            return Err(fail(P2PSWARM_ERR_INVALID_ARGUMENT, "nodes must be 1..=64"));
        }
        let net = c.rt.testnet(nodes).wait().map_err(code)?.map_err(code)?;
        put(out_testnet, boxed(p2pswarm_testnet { net }));
        Ok(())
    })
}

/// Writes the testnet's bootstrap address (`"127.0.0.1:PORT"`, NUL-terminated) to `buf`
/// (`buf_len` bytes; 22 always suffice). `P2PSWARM_ERR_BUFFER_TOO_SMALL` if it does not fit.
#[no_mangle]
pub extern "C" fn p2pswarm_testnet_bootstrap(
    testnet: *const p2pswarm_testnet,
    buf: *mut c_char,
    buf_len: usize,
) -> p2pswarm_result {
    guard(|| {
        let t = get(testnet)?;
        out(buf)?;
        let s = t.net.bootstrap().to_string();
        if s.len() + 1 > buf_len {
            return Err(fail(P2PSWARM_ERR_BUFFER_TOO_SMALL, "buffer too small"));
        }
        let mut b = s.into_bytes();
        b.push(0);
        put_bytes(buf.cast::<u8>(), &b);
        Ok(())
    })
}

/// Stops the testnet's nodes and frees it. NULL is a no-op. Non-blocking.
#[no_mangle]
pub extern "C" fn p2pswarm_testnet_free(testnet: *mut p2pswarm_testnet) {
    guard_val((), || drop(unbox(testnet)));
}

/// A byte buffer returned by the library (`p2pswarm_buffer_data`, `p2pswarm_buffer_len`);
/// free it with `p2pswarm_buffer_free`.
#[derive(Debug)]
pub struct p2pswarm_buffer {
    pub(crate) data: Vec<u8>,
}

/// The buffer's bytes (valid until `p2pswarm_buffer_free`); NULL for a NULL buffer.
#[no_mangle]
pub extern "C" fn p2pswarm_buffer_data(buffer: *const p2pswarm_buffer) -> *const u8 {
    guard_val(std::ptr::null(), || {
        get(buffer).map_or(std::ptr::null(), |b| b.data.as_ptr())
    })
}

/// The buffer's length in bytes; 0 for a NULL buffer.
#[no_mangle]
pub extern "C" fn p2pswarm_buffer_len(buffer: *const p2pswarm_buffer) -> usize {
    guard_val(0, || get(buffer).map_or(0, |b| b.data.len()))
}

/// Frees a buffer. NULL is a no-op.
#[no_mangle]
pub extern "C" fn p2pswarm_buffer_free(buffer: *mut p2pswarm_buffer) {
    guard_val((), || drop(unbox(buffer)));
}
