//! The tokio driver of a dht-rpc node: two UDP sockets (server and client) shared with UDX, the
//! node's timers, and an async API ([`DhtNode`]).

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, Notify};

use super::message::Response;
use super::node::{
    IncomingRequest, Node, NodeConfig, NodeEvent, QueryError, QueryId, ReplyHandle, RequestError,
    RequestId, SocketKind,
};
use super::query::Reply;
use crate::udx::UdxSocket;

/// Options for [`DhtNode::bind`].
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// Nodes to bootstrap from (default: [`PUBLIC_BOOTSTRAP`]; empty: this node starts a
    /// network).
    pub bootstrap: Vec<SocketAddrV4>,
    /// Local IPv4 address to bind (default `0.0.0.0`).
    pub host: Ipv4Addr,
    /// Server port: tries `port`..`port + 4`, then any port; 0 = any.
    pub port: u16,
    /// `Some(true)` never persistent, `Some(false)` persistent as soon as reachable, `None`
    /// adaptive.
    pub ephemeral: Option<bool>,
    /// Start firewalled (default) or trust that the server socket is reachable.
    pub firewalled: bool,
    /// Known public address of the server socket: the node is a bootstrapper (persistent at
    /// once, id derived from this address). Use with a fixed `port`.
    pub public_addr: Option<SocketAddrV4>,
}

/// The public HyperDHT bootstrap nodes (hyperdht's default list, IP part of
/// `IP@nodeN.hyperdht.org:49737`). Tests and examples always pass a local list instead.
pub const PUBLIC_BOOTSTRAP: [SocketAddrV4; 3] = [
    SocketAddrV4::new(Ipv4Addr::new(88, 99, 3, 86), 49737),
    SocketAddrV4::new(Ipv4Addr::new(142, 93, 90, 113), 49737),
    SocketAddrV4::new(Ipv4Addr::new(138, 68, 147, 8), 49737),
];

impl Default for DhtConfig {
    /// The public network's defaults: the public bootstrap nodes, any port, adaptive.
    fn default() -> Self {
        Self {
            bootstrap: PUBLIC_BOOTSTRAP.to_vec(),
            host: Ipv4Addr::UNSPECIFIED,
            port: 0,
            ephemeral: None,
            firewalled: true,
            public_addr: None,
        }
    }
}

/// Events of a [`DhtNode`] for observers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhtEvent {
    /// Bootstrapping finished.
    Ready,
    /// The node became persistent.
    Persistent,
    /// The sampled public address changed.
    NatUpdate {
        /// Host, if known.
        host: Option<Ipv4Addr>,
        /// Port (0: unknown or randomized).
        port: u16,
    },
}

/// A reply seen during a query, as streamed by [`DhtNode::query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResponse {
    /// Responder.
    pub from: SocketAddrV4,
    /// Its response.
    pub response: Response,
}

#[derive(Debug)]
enum Waiter {
    Request(oneshot::Sender<Result<(SocketAddrV4, Response), RequestError>>),
    Query(
        mpsc::UnboundedSender<QueryResponse>,
        Option<oneshot::Sender<Result<Vec<Reply>, QueryError>>>,
    ),
}

#[derive(Debug)]
struct State {
    node: Node,
    requests: HashMap<RequestId, Waiter>,
    queries: HashMap<QueryId, Waiter>,
    ready: bool,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Arc<Notify>,
    ready: Notify,
    server: UdxSocket,
    client: UdxSocket,
    events: broadcast::Sender<DhtEvent>,
    incoming: Mutex<Option<mpsc::Receiver<IncomingRequest>>>,
    incoming_tx: mpsc::Sender<IncomingRequest>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running dht-rpc node. Cloning gives another handle to the same node.
#[derive(Debug, Clone)]
pub struct DhtNode {
    shared: Arc<Shared>,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

fn v4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

async fn bind_server(host: Ipv4Addr, port: u16) -> io::Result<UdxSocket> {
    if port != 0 {
        for p in port..port.saturating_add(5) {
            if let Ok(s) = UdxSocket::bind(SocketAddr::V4(SocketAddrV4::new(host, p))).await {
                return Ok(s);
            }
        }
    }
    UdxSocket::bind(SocketAddr::V4(SocketAddrV4::new(host, 0))).await
}

impl DhtNode {
    /// Binds the sockets, starts the node and its bootstrap. Await [`DhtNode::ready`] before
    /// relying on lookups.
    pub async fn bind(cfg: DhtConfig) -> io::Result<Self> {
        let server = if cfg.public_addr.is_some() && cfg.port != 0 {
            UdxSocket::bind(SocketAddr::V4(SocketAddrV4::new(cfg.host, cfg.port))).await?
        } else {
            bind_server(cfg.host, cfg.port).await?
        };
        let client = UdxSocket::bind(SocketAddr::V4(SocketAddrV4::new(cfg.host, 0))).await?;
        let port = server.local_addr().port();
        let public_addr = cfg.public_addr.map(|a| {
            if a.port() == 0 {
                SocketAddrV4::new(*a.ip(), port)
            } else {
                a
            }
        });
        let node_cfg = NodeConfig {
            bootstrap: cfg.bootstrap.clone(),
            ephemeral: cfg.ephemeral,
            firewalled: cfg.firewalled,
            public_addr,
            ..NodeConfig::default()
        };
        let seed = u64::from_le_bytes(crate::crypto::random_array());
        let mut node = Node::new(now(), node_cfg, port, seed);
        node.bootstrap(now());
        let (events, _) = broadcast::channel(64);
        let (incoming_tx, incoming_rx) = mpsc::channel(1024);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                node,
                requests: HashMap::new(),
                queries: HashMap::new(),
                ready: false,
                closed: false,
            }),
            wake: Arc::new(Notify::new()),
            ready: Notify::new(),
            server,
            client,
            events,
            incoming: Mutex::new(Some(incoming_rx)),
            incoming_tx,
        });
        tokio::spawn(drive(
            Arc::downgrade(&shared),
            shared.wake.clone(),
            shared.server.clone(),
            shared.client.clone(),
        ));
        tracing::info!(server = %shared.server.local_addr(), "dht node bound");
        Ok(Self { shared })
    }

    /// The server socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.server.local_addr()
    }

    /// The server socket (shared with UDX streams).
    pub fn server_socket(&self) -> &UdxSocket {
        &self.shared.server
    }

    /// The client socket.
    pub fn client_socket(&self) -> &UdxSocket {
        &self.shared.client
    }

    /// The node id.
    pub fn id(&self) -> [u8; 32] {
        *self.shared.lock().node.id()
    }

    /// Whether the node is ephemeral (not stored in others' tables).
    pub fn is_ephemeral(&self) -> bool {
        self.shared.lock().node.is_ephemeral()
    }

    /// Whether the node believes it is firewalled.
    pub fn is_firewalled(&self) -> bool {
        self.shared.lock().node.is_firewalled()
    }

    /// Nodes in the routing table.
    pub fn table_size(&self) -> usize {
        self.shared.lock().node.table().len()
    }

    /// Whether `id` is in the routing table.
    pub fn table_has(&self, id: &[u8; 32]) -> bool {
        self.shared.lock().node.table().has(id)
    }

    /// Addresses of the nodes in the routing table.
    pub fn node_addresses(&self) -> Vec<SocketAddrV4> {
        self.shared
            .lock()
            .node
            .table()
            .iter()
            .map(|(_, n)| n.addr)
            .collect()
    }

    /// Sampled public address.
    pub fn public_address(&self) -> (Option<Ipv4Addr>, u16) {
        self.shared.lock().node.public_address()
    }

    /// Subscribes to node events.
    pub fn events(&self) -> broadcast::Receiver<DhtEvent> {
        self.shared.events.subscribe()
    }

    /// Takes the stream of application requests (once); answer with [`DhtNode::reply`].
    /// Without a taker, application requests get UNKNOWN_COMMAND.
    pub fn take_incoming(&self) -> Option<mpsc::Receiver<IncomingRequest>> {
        self.shared
            .incoming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Waits until bootstrapping finished.
    pub async fn ready(&self) {
        loop {
            let notified = self.shared.ready.notified();
            if self.shared.lock().ready {
                return;
            }
            notified.await;
        }
    }

    fn poke(&self) {
        self.shared.wake.notify_one();
    }

    /// One request with retries.
    pub async fn request(
        &self,
        dest: SocketAddrV4,
        command: u64,
        internal: bool,
        target: Option<[u8; 32]>,
        value: Option<Vec<u8>>,
        token: Option<[u8; 32]>,
    ) -> Result<(SocketAddrV4, Response), RequestError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if st.closed {
                return Err(RequestError::Destroyed);
            }
            let id = st
                .node
                .request(now(), dest, command, internal, target, value, token);
            st.requests.insert(id, Waiter::Request(tx));
        }
        self.poke();
        rx.await.unwrap_or(Err(RequestError::Destroyed))
    }

    /// An iterative query; replies stream through the returned receiver, the closest replies
    /// come from the future.
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &self,
        target: [u8; 32],
        command: u64,
        internal: bool,
        value: Option<Vec<u8>>,
        commit: bool,
    ) -> (
        mpsc::UnboundedReceiver<QueryResponse>,
        oneshot::Receiver<Result<Vec<Reply>, QueryError>>,
    ) {
        let (rtx, rrx) = mpsc::unbounded_channel();
        let (dtx, drx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if st.closed {
                let _ = dtx.send(Err(QueryError::TooFewNodes));
            } else {
                let id = st
                    .node
                    .query(now(), target, command, internal, value, commit, &[]);
                st.queries.insert(id, Waiter::Query(rtx, Some(dtx)));
            }
        }
        self.poke();
        (rrx, drx)
    }

    /// FIND_NODE: the nodes closest to `target`.
    pub async fn find_node(&self, target: [u8; 32]) -> Result<Vec<Reply>, QueryError> {
        let (_replies, done) = self.query(
            target,
            super::message::commands::FIND_NODE,
            true,
            None,
            false,
        );
        done.await.unwrap_or(Err(QueryError::TooFewNodes))
    }

    /// Answers an application request.
    pub fn reply(&self, handle: ReplyHandle, value: Option<Vec<u8>>, token: bool, closer: bool) {
        self.shared.lock().node.reply(handle, value, token, closer);
        self.poke();
    }

    /// Forwards an application request (same tid) to `dest` with a new value.
    pub fn forward_request(&self, handle: ReplyHandle, dest: SocketAddrV4, value: Option<Vec<u8>>) {
        self.shared.lock().node.forward_request(handle, dest, value);
        self.poke();
    }

    /// Sends a bare response with the request's tid to a third party.
    pub fn reply_to(&self, handle: ReplyHandle, dest: SocketAddrV4, value: Option<Vec<u8>>) {
        self.shared.lock().node.reply_to(handle, dest, value);
        self.poke();
    }

    /// Answers an application request with an error code.
    pub fn reply_error(&self, handle: ReplyHandle, error: u64) {
        self.shared.lock().node.reply_error(handle, error);
        self.poke();
    }

    /// Stops the node: pending requests and queries fail, the sockets close.
    pub fn destroy(&self) {
        let mut st = self.shared.lock();
        st.closed = true;
        st.node.destroy();
        drop(st);
        self.poke();
        self.shared.server.close();
        self.shared.client.close();
    }
}

fn dispatch(shared: &Shared, st: &mut State) {
    while let Some(ev) = st.node.poll_event() {
        match ev {
            NodeEvent::Ready => {
                st.ready = true;
                shared.ready.notify_waiters();
                let _ = shared.events.send(DhtEvent::Ready);
            }
            NodeEvent::Persistent => {
                let _ = shared.events.send(DhtEvent::Persistent);
            }
            NodeEvent::NatUpdate { host, port } => {
                let _ = shared.events.send(DhtEvent::NatUpdate { host, port });
            }
            NodeEvent::Response {
                request,
                from,
                response,
            } => {
                if let Some(Waiter::Request(tx)) = st.requests.remove(&request) {
                    let _ = tx.send(Ok((from, response)));
                }
            }
            NodeEvent::RequestFailed { request, error } => {
                if let Some(Waiter::Request(tx)) = st.requests.remove(&request) {
                    let _ = tx.send(Err(error));
                }
            }
            NodeEvent::QueryReply {
                query,
                from,
                response,
            } => {
                if let Some(Waiter::Query(tx, _)) = st.queries.get(&query) {
                    let _ = tx.send(QueryResponse { from, response });
                }
            }
            NodeEvent::QueryDone { query, result, .. } => {
                if let Some(Waiter::Query(_, Some(done))) = st.queries.remove(&query) {
                    let _ = done.send(result);
                }
            }
            NodeEvent::Request(req) => {
                let handle = req.handle;
                // Nobody took the request stream: this node serves no application commands.
                let untaken = shared
                    .incoming
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_some();
                if untaken || shared.incoming_tx.try_send(req).is_err() {
                    st.node
                        .reply_error(handle, super::message::errors::UNKNOWN_COMMAND);
                }
            }
        }
    }
}

async fn drive(
    weak: std::sync::Weak<Shared>,
    wake_notify: Arc<Notify>,
    server: UdxSocket,
    client: UdxSocket,
) {
    let mut sleep = Box::pin(tokio::time::sleep(Duration::from_secs(1)));
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let timeout = {
            let mut st = shared.lock();
            if st.closed {
                return;
            }
            st.node.handle_timeout(now());
            dispatch(&shared, &mut st);
            while let Some(t) = st.node.poll_transmit() {
                let sock = if t.socket == SocketKind::Server {
                    &shared.server
                } else {
                    &shared.client
                };
                sock.send_raw(SocketAddr::V4(t.dest), &t.data, None);
            }
            st.node.poll_timeout()
        };
        if let Some(t) = timeout {
            sleep.as_mut().reset(tokio::time::Instant::from_std(t));
        }
        drop(shared);
        let wake = wake_notify.notified();
        tokio::select! {
            r = server.recv_raw() => {
                let Some((from, data)) = r else { return };
                handle(&weak, SocketKind::Server, from, &data);
            }
            r = client.recv_raw() => {
                let Some((from, data)) = r else { return };
                handle(&weak, SocketKind::Client, from, &data);
            }
            () = &mut sleep, if timeout.is_some() => {}
            () = wake => {}
        }
    }
}

fn handle(weak: &std::sync::Weak<Shared>, socket: SocketKind, from: SocketAddr, data: &[u8]) {
    let Some(shared) = weak.upgrade() else { return };
    let Some(from) = v4(from) else { return };
    let mut st = shared.lock();
    st.node.handle_datagram(now(), socket, from, data);
}
