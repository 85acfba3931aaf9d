//! Demultiplexes one runtime [`EventQueue`] into what the foreign API exposes: per-connection
//! read channels, per-server accept channels, and the swarm's event stream (pulled with
//! `next_event()` or pushed to listeners on their own threads).
//!
//! The dispatcher is a task on the runtime thread. Flow control is kept: while more than
//! [`DATA_HIGH_WATER`] received bytes wait unread in connections, it stops taking events, so
//! the core queue fills and the connections stop reading (the transport then holds the
//! senders back). As with the core queue, an unread connection eventually stalls the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use swarm_core::runtime::{Conn, Event, EventQueue, SwarmHandle, DATA_HIGH_WATER};
use tokio::sync::{mpsc, watch, Notify};

use crate::error::{P2pswarmError, Result};
use crate::{PeerInfo, SwarmEvent, SwarmListener};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a connection's reader sees.
#[derive(Debug)]
pub(crate) enum ReadItem {
    Data(Vec<u8>),
    End,
    Close(Option<String>),
}

/// A connection's receive side (fed by the dispatcher).
#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) tx: mpsc::UnboundedSender<ReadItem>,
    pub(crate) rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<ReadItem>>,
    pub(crate) eof: AtomicBool,
    /// `None` while open, then `Some(error)`.
    #[allow(clippy::option_option)] // open / closed cleanly / closed with an error
    pub(crate) closed: watch::Sender<Option<Option<String>>>,
}

/// An encrypted connection (swarm or DHT).
#[derive(Debug, uniffi::Object)]
pub struct Connection {
    pub(crate) conn: Conn,
    pub(crate) state: ConnState,
    pub(crate) hub: Weak<Hub>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Unread bytes leave the flow-control budget.
        let mut n = 0;
        if let Ok(mut rx) = self.state.rx.try_lock() {
            while let Ok(item) = rx.try_recv() {
                if let ReadItem::Data(d) = item {
                    n += d.len();
                }
            }
        }
        if let Some(hub) = self.hub.upgrade() {
            hub.release(n);
        }
    }
}

/// A registered listener: its event channel and the flag its thread checks before each call.
struct ListenerSlot {
    id: u64,
    tx: std::sync::mpsc::Sender<SwarmEvent>,
    active: Arc<AtomicBool>,
}

/// How long `close` waits for a listener thread to finish its current callback.
const LISTENER_JOIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Default)]
struct Routes {
    conns: HashMap<u64, Arc<Connection>>,
    /// Events of connections not registered yet (a DHT connect still returning).
    pending: HashMap<u64, Vec<ReadItem>>,
    servers: HashMap<u64, mpsc::UnboundedSender<Arc<Connection>>>,
    /// Accepted connections of servers not registered yet.
    pending_accept: HashMap<u64, Vec<Arc<Connection>>>,
    listeners: Vec<ListenerSlot>,
    events: Option<mpsc::UnboundedSender<SwarmEvent>>,
}

/// The routing state of one runtime.
pub struct Hub {
    queue: EventQueue,
    routes: Mutex<Routes>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<SwarmEvent>>,
    /// The swarm (dropped on close, so that un-released handles keep no socket open).
    swarm: Mutex<Option<Arc<SwarmHandle>>>,
    swarm_id: AtomicU64,
    buffered: AtomicUsize,
    room: Notify,
    next_listener: AtomicU64,
    /// Listener threads: each drops its sender when it ends.
    listener_threads: Mutex<Vec<(std::thread::ThreadId, std::sync::mpsc::Receiver<()>)>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("buffered", &self.buffered)
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub(crate) fn new(queue: EventQueue) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            queue,
            routes: Mutex::new(Routes {
                events: Some(tx),
                ..Routes::default()
            }),
            events_rx: tokio::sync::Mutex::new(rx),
            swarm: Mutex::new(None),
            swarm_id: AtomicU64::new(0),
            buffered: AtomicUsize::new(0),
            room: Notify::new(),
            next_listener: AtomicU64::new(1),
            listener_threads: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn queue(&self) -> &EventQueue {
        &self.queue
    }

    pub(crate) fn set_swarm(&self, swarm: Arc<SwarmHandle>) {
        self.swarm_id.store(swarm.id(), Ordering::SeqCst);
        *lock(&self.swarm) = Some(swarm);
    }

    /// The dispatcher (spawned on the runtime thread).
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            self.wait_room().await;
            let Some(ev) = self.queue.next_event().await else {
                break;
            };
            self.route(ev);
        }
        self.close();
    }

    async fn wait_room(&self) {
        loop {
            let room = self.room.notified();
            if self.buffered.load(Ordering::SeqCst) <= DATA_HIGH_WATER {
                return;
            }
            room.await;
        }
    }

    pub(crate) fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self.buffered.fetch_sub(n, Ordering::SeqCst);
        if before > DATA_HIGH_WATER && before - n <= DATA_HIGH_WATER {
            self.room.notify_waiters();
        }
    }

    pub(crate) fn peer_info(&self, info: swarm_core::runtime::PeerInfo) -> Option<Arc<PeerInfo>> {
        lock(&self.swarm).as_ref().map(|s| {
            Arc::new(PeerInfo {
                swarm: Arc::downgrade(s),
                snapshot: Mutex::new(info),
            })
        })
    }

    fn new_connection(self: &Arc<Self>, conn: Conn) -> Arc<Connection> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (closed, _) = watch::channel(None);
        Arc::new(Connection {
            conn,
            state: ConnState {
                tx,
                rx: tokio::sync::Mutex::new(rx),
                eof: AtomicBool::new(false),
                closed,
            },
            hub: Arc::downgrade(self),
        })
    }

    /// Registers a connection made by a DHT connect (its events may already be pending).
    pub(crate) fn register(self: &Arc<Self>, conn: Conn) -> Arc<Connection> {
        let c = self.new_connection(conn);
        let id = c.conn.id();
        let mut r = lock(&self.routes);
        let mut open = true;
        for item in r.pending.remove(&id).unwrap_or_default() {
            if let ReadItem::Close(e) = &item {
                c.state.closed.send_replace(Some(e.clone()));
                open = false;
            }
            let _ = c.state.tx.send(item);
        }
        if open {
            r.conns.insert(id, c.clone());
        }
        c
    }

    /// Registers a DHT server's accept channel.
    pub(crate) fn register_server(&self, id: u64) -> mpsc::UnboundedReceiver<Arc<Connection>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut r = lock(&self.routes);
        for c in r.pending_accept.remove(&id).unwrap_or_default() {
            let _ = tx.send(c);
        }
        r.servers.insert(id, tx);
        rx
    }

    pub(crate) fn unregister_server(&self, id: u64) {
        lock(&self.routes).servers.remove(&id);
    }

    fn route(self: &Arc<Self>, ev: Event) {
        match ev {
            Event::Connection { source, conn, peer } => {
                let c = self.new_connection(conn);
                let is_swarm = self.swarm_id.load(Ordering::SeqCst) == source;
                let mut r = lock(&self.routes);
                r.conns.insert(c.conn.id(), c.clone());
                if is_swarm {
                    let peer = peer.and_then(|p| self.peer_info(p));
                    drop(r);
                    if let Some(peer) = peer {
                        self.emit(&SwarmEvent::Connection {
                            connection: c,
                            peer,
                        });
                    }
                } else if let Some(tx) = r.servers.get(&source) {
                    let _ = tx.send(c);
                } else {
                    r.pending_accept.entry(source).or_default().push(c);
                }
            }
            Event::Data { conn, data } => {
                self.buffered.fetch_add(data.len(), Ordering::SeqCst);
                self.deliver(conn, ReadItem::Data(data), false);
            }
            Event::End { conn } => self.deliver(conn, ReadItem::End, false),
            Event::Close { conn, error } => {
                self.deliver(conn, ReadItem::Close(error), true);
            }
            Event::Update { .. } => self.emit(&SwarmEvent::Update),
            Event::Ban { peer, .. } => {
                if let Some(peer) = self.peer_info(peer) {
                    self.emit(&SwarmEvent::Ban { peer });
                }
            }
            _ => {} // Drain: `write` awaits each write.
        }
    }

    fn deliver(&self, id: u64, item: ReadItem, close: bool) {
        let mut r = lock(&self.routes);
        let c = if close {
            r.conns.remove(&id)
        } else {
            r.conns.get(&id).cloned()
        };
        match c {
            Some(c) => {
                drop(r);
                if let ReadItem::Close(e) = &item {
                    c.state.closed.send_replace(Some(e.clone()));
                }
                let _ = c.state.tx.send(item);
            }
            None => r.pending.entry(id).or_default().push(item),
        }
    }

    fn emit(&self, ev: &SwarmEvent) {
        let mut r = lock(&self.routes);
        if r.listeners.is_empty() {
            if let Some(tx) = &r.events {
                let _ = tx.send(ev.clone());
            }
        } else {
            r.listeners.retain(|l| l.tx.send(ev.clone()).is_ok());
        }
    }

    /// The next swarm event; `None` once closed.
    pub(crate) async fn next_event(&self) -> Option<SwarmEvent> {
        self.events_rx.lock().await.recv().await
    }

    /// Starts a listener thread; events go to listeners (instead of `next_event`) while any
    /// is registered.
    pub(crate) fn add_listener(self: &Arc<Self>, listener: Arc<dyn SwarmListener>) -> Result<u64> {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::channel::<SwarmEvent>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let active = Arc::new(AtomicBool::new(true));
        let mut r = lock(&self.routes);
        if r.events.is_none() {
            return Err(P2pswarmError::closed());
        }
        let flag = active.clone();
        let thread = std::thread::Builder::new()
            .name("p2pswarm-listener".into())
            .spawn(move || {
                let _done = done_tx; // dropped when the thread ends
                while let Ok(ev) = rx.recv() {
                    if !flag.load(Ordering::SeqCst) {
                        break;
                    }
                    // A listener that throws loses that event, not the following ones.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        listener.on_event(ev);
                    }));
                }
                drop(listener);
            })
            .map_err(|e| P2pswarmError::Internal {
                detail: e.to_string(),
            })?;
        lock(&self.listener_threads).push((thread.thread().id(), done_rx));
        r.listeners.push(ListenerSlot { id, tx, active });
        Ok(id)
    }

    /// Removes a listener: no call starts after this returns (one in progress may finish).
    pub(crate) fn remove_listener(&self, id: u64) {
        lock(&self.routes).listeners.retain(|l| {
            if l.id == id {
                l.active.store(false, Ordering::SeqCst);
            }
            l.id != id
        });
    }

    /// Live connections (open, not yet closed).
    pub(crate) fn connections(&self) -> Vec<Arc<Connection>> {
        lock(&self.routes).conns.values().cloned().collect()
    }

    /// Ends every stream: `next_event` returns `None`, reads end, listeners stop.
    pub(crate) fn close(&self) {
        let mut r = lock(&self.routes);
        r.events = None;
        for l in r.listeners.drain(..) {
            l.active.store(false, Ordering::SeqCst);
        }
        r.servers.clear();
        r.pending.clear();
        r.pending_accept.clear();
        let conns: Vec<_> = r.conns.drain().map(|(_, c)| c).collect();
        drop(r);
        for c in conns {
            c.state.closed.send_if_modified(|v| {
                if v.is_none() {
                    *v = Some(Some("closed".into()));
                    true
                } else {
                    false
                }
            });
            let _ = c.state.tx.send(ReadItem::Close(None));
        }
        self.queue.close();
        self.room.notify_waiters();
        lock(&self.swarm).take();
        // Wait (bounded) until the listener threads have ended and released their listeners,
        // so that no callback runs after `destroy` returns (unless called from a callback).
        let threads = std::mem::take(&mut *lock(&self.listener_threads));
        let me = std::thread::current().id();
        for (id, done) in threads {
            if id != me {
                let _ = done.recv_timeout(LISTENER_JOIN_TIMEOUT);
            }
        }
    }
}
