//! The one way events leave the runtime: an [`EventQueue`] that any number of swarms, DHT
//! servers and connections feed, read by `next_event().await`, a blocking pull with timeout, a
//! readiness file descriptor, or a handler run on the runtime thread.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{Conn, PeerInfo};

/// An event of the runtime. Sources are identified by the `id()` of the swarm or DHT server
/// handle that produced them; connections by [`Conn::id`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A new connection: from a swarm (`peer` is set) or a DHT server (`peer` is `None`).
    Connection {
        /// The swarm or server handle id.
        source: u64,
        /// The connection.
        conn: Conn,
        /// The swarm's peer info.
        peer: Option<PeerInfo>,
    },
    /// Bytes received on a connection.
    Data {
        /// The connection id.
        conn: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The remote end finished writing (no more `Data` for this connection).
    End {
        /// The connection id.
        conn: u64,
    },
    /// The connection closed; the last event for this connection id.
    Close {
        /// The connection id.
        conn: u64,
        /// Why, when it failed.
        error: Option<String>,
    },
    /// A swarm's counts changed.
    Update {
        /// The swarm handle id.
        source: u64,
    },
    /// A connection's write queue, which refused a write with [`super::Error::WouldBlock`],
    /// has room again: at most [`super::WRITE_LOW_WATER`] bytes are queued.
    Drain {
        /// The connection id.
        conn: u64,
    },
    /// A swarm banned a peer.
    Ban {
        /// The swarm handle id.
        source: u64,
        /// The peer.
        peer: PeerInfo,
    },
}

/// A handler of events on the runtime thread: `Err(event)` declines the event, which then
/// goes to the queue, and removes the handler.
pub type Handler = Box<dyn FnMut(Event) -> Result<(), Event> + Send>;

/// Result of a blocking pull.
#[derive(Debug)]
pub enum Next {
    /// An event.
    Event(Event),
    /// Nothing arrived in time.
    Timeout,
    /// The queue is closed and empty.
    Closed,
}

struct State {
    events: VecDeque<Event>,
    closed: bool,
    /// Bytes of the queued `Data` events.
    data_bytes: usize,
}

/// While more received bytes than this wait in a queue, connections stop reading (the
/// transport's receive window then holds the sender back).
pub const DATA_HIGH_WATER: usize = 4 * 1024 * 1024;

/// Buffers handed back with [`EventQueue::recycle`] that a queue keeps for its connections'
/// next reads (at most this many; 4 MiB with 256 KiB buffers).
const SPARE_BUFFERS: usize = 16;

fn data_len(ev: &Event) -> usize {
    match ev {
        Event::Data { data, .. } => data.len(),
        _ => 0,
    }
}

struct Inner {
    state: Mutex<State>,
    cond: Condvar,
    notify: Notify,
    room: Notify,
    handler: Mutex<(u64, Option<Handler>)>,
    /// Read buffers of capacity `READ_CHUNK` waiting for a read (recycled ones, and the
    /// buffer a read that found nothing or copied its bytes out put back).
    spare: Mutex<Vec<Vec<u8>>>,
    /// Whether the consumer hands data buffers back ([`EventQueue::recycle`] was called): reads
    /// then give the read buffer itself as the event's data instead of an exact-size copy.
    recycles: std::sync::atomic::AtomicBool,
    #[cfg(unix)]
    pipe: (
        std::os::unix::net::UnixStream,
        std::os::unix::net::UnixStream,
    ),
}

/// A multi-producer event queue (cheap to clone).
#[derive(Clone)]
pub struct EventQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventQueue {
    /// A new open, empty queue.
    pub fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        let pipe = {
            let (r, w) = std::os::unix::net::UnixStream::pair()?;
            r.set_nonblocking(true)?;
            w.set_nonblocking(true)?;
            (r, w)
        };
        Ok(Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    events: VecDeque::new(),
                    closed: false,
                    data_bytes: 0,
                }),
                cond: Condvar::new(),
                notify: Notify::new(),
                room: Notify::new(),
                handler: Mutex::new((0, None)),
                spare: Mutex::new(Vec::new()),
                recycles: std::sync::atomic::AtomicBool::new(false),
                #[cfg(unix)]
                pipe,
            }),
        })
    }

    #[cfg(unix)]
    fn signal(&self) {
        use std::io::Write;
        let _ = (&self.inner.pipe.1).write(&[1]);
    }

    #[cfg(unix)]
    fn drain_signal(&self) {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while matches!((&self.inner.pipe.0).read(&mut buf), Ok(n) if n > 0) {}
    }

    #[cfg(not(unix))]
    fn signal(&self) {}

    #[cfg(not(unix))]
    fn drain_signal(&self) {}

    /// Delivers an event: to the handler if one is set (on the calling thread), else queued.
    pub fn push(&self, ev: Event) {
        let taken = {
            let mut h = lock(&self.inner.handler);
            h.1.take().map(|f| (h.0, f))
        };
        let ev = match taken {
            Some((gen, mut f)) => match f(ev) {
                Ok(()) => {
                    let mut h = lock(&self.inner.handler);
                    if h.0 == gen && h.1.is_none() {
                        h.1 = Some(f);
                    }
                    return;
                }
                Err(ev) => ev,
            },
            None => ev,
        };
        let mut st = lock(&self.inner.state);
        if st.closed {
            return;
        }
        if st.events.is_empty() {
            self.signal();
        }
        st.data_bytes += data_len(&ev);
        st.events.push_back(ev);
        drop(st);
        self.inner.cond.notify_all();
        self.inner.notify.notify_waiters();
        self.inner.notify.notify_one();
    }

    /// Hands back the bytes of a consumed [`Event::Data`] so that a later read of a connection
    /// reporting to this queue reuses the allocation (a fresh large allocation per read costs
    /// page faults, often more than the copy into it). Optional; buffers of another size and
    /// those beyond a few megabytes in all are simply dropped.
    pub fn recycle(&self, buf: Vec<u8>) {
        self.inner
            .recycles
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.put_back(buf);
    }

    /// Whether the consumer recycles data buffers.
    pub(super) fn recycles(&self) -> bool {
        self.inner
            .recycles
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Returns a read buffer to the pool (dropped if of another size or the pool is full).
    pub(super) fn put_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() != super::READ_CHUNK {
            return;
        }
        let mut spare = lock(&self.inner.spare);
        if spare.len() < SPARE_BUFFERS {
            buf.clear();
            spare.push(buf);
        }
    }

    /// An empty buffer of capacity [`super::READ_CHUNK`] for a read: a recycled one if any.
    pub(super) fn read_buffer(&self) -> Vec<u8> {
        lock(&self.inner.spare)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(super::READ_CHUNK))
    }

    /// Sets (or with `None` removes) the handler that receives events instead of the queue.
    pub fn set_handler(&self, handler: Option<Handler>) {
        let mut h = lock(&self.inner.handler);
        h.0 += 1;
        h.1 = handler;
    }

    /// Whether a handler is set (a declining handler removes itself).
    pub fn has_handler(&self) -> bool {
        lock(&self.inner.handler).1.is_some()
    }

    fn pop(&self, st: &mut State) -> Option<Event> {
        let ev = st.events.pop_front();
        if let Some(e) = &ev {
            let before = st.data_bytes;
            st.data_bytes -= data_len(e);
            if before > DATA_HIGH_WATER && st.data_bytes <= DATA_HIGH_WATER {
                self.inner.room.notify_waiters();
            }
        }
        if st.events.is_empty() && !st.closed {
            self.drain_signal();
        }
        ev
    }

    /// Waits while more than [`DATA_HIGH_WATER`] received bytes are queued (returns at once
    /// when closed or a handler takes the events).
    pub async fn wait_room(&self) {
        loop {
            let room = self.inner.room.notified();
            {
                let st = lock(&self.inner.state);
                if st.closed || st.data_bytes <= DATA_HIGH_WATER {
                    return;
                }
            }
            room.await;
        }
    }

    /// The next event without waiting.
    pub fn try_next(&self) -> Next {
        let mut st = lock(&self.inner.state);
        match self.pop(&mut st) {
            Some(ev) => Next::Event(ev),
            None if st.closed => Next::Closed,
            None => Next::Timeout,
        }
    }

    /// The next event, waiting up to `timeout` (`None`: forever). Blocks the calling thread:
    /// never call it on the runtime thread.
    pub fn next_blocking(&self, timeout: Option<Duration>) -> Next {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = lock(&self.inner.state);
        loop {
            if let Some(ev) = self.pop(&mut st) {
                return Next::Event(ev);
            }
            if st.closed {
                return Next::Closed;
            }
            match deadline {
                None => {
                    st = self
                        .inner
                        .cond
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Next::Timeout;
                    }
                    st = self
                        .inner
                        .cond
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    /// The next event; `None` once the queue is closed and drained.
    pub async fn next_event(&self) -> Option<Event> {
        loop {
            let notified = self.inner.notify.notified();
            match self.try_next() {
                Next::Event(ev) => return Some(ev),
                Next::Closed => return None,
                Next::Timeout => notified.await,
            }
        }
    }

    /// A file descriptor that is readable while events are queued (or the queue is closed).
    /// Poll it for readability only; never read from it.
    #[cfg(unix)]
    pub fn readiness_fd(&self) -> std::os::unix::io::RawFd {
        use std::os::unix::io::AsRawFd;
        self.inner.pipe.0.as_raw_fd()
    }

    /// Closes the queue: queued events can still be taken, then pulls report `Closed`.
    pub fn close(&self) {
        let mut st = lock(&self.inner.state);
        if !st.closed {
            st.closed = true;
            self.signal();
        }
        drop(st);
        self.set_handler(None);
        self.inner.room.notify_waiters();
        self.inner.cond.notify_all();
        self.inner.notify.notify_waiters();
        self.inner.notify.notify_one();
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner.state).closed
    }
}
