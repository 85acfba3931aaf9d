//! The one error type of the bindings: each variant is a stable kind (a sealed class in Kotlin,
//! an enum in Swift, an exception subclass in Python), with a human-readable `detail`.

use swarm_core::dht::{ConnectError, DhtError};
use swarm_core::runtime::Error;

/// Why a call failed. The variant is the stable kind; `detail` is for humans.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum P2pswarmError {
    /// The swarm, node, connection or runtime is closed.
    #[error("closed: {detail}")]
    Closed { detail: String },
    /// A blocking call was made on the runtime thread (e.g. from a firewall callback).
    #[error("would deadlock: {detail}")]
    WouldDeadlock { detail: String },
    /// An argument was invalid (a key of the wrong length, a bad address, ...).
    #[error("invalid argument: {detail}")]
    InvalidArgument { detail: String },
    /// The UDP sockets could not be bound.
    #[error("bind failed: {detail}")]
    Bind { detail: String },
    /// The node did not finish bootstrapping in time.
    #[error("bootstrap timed out: {detail}")]
    BootstrapTimeout { detail: String },
    /// No node knows a server for the key.
    #[error("peer not found: {detail}")]
    PeerNotFound { detail: String },
    /// The server was found but no handshake completed.
    #[error("connection failed: {detail}")]
    ConnectionFailed { detail: String },
    /// The server rejected us (its firewall).
    #[error("rejected: {detail}")]
    Rejected { detail: String },
    /// The handshake did not authenticate.
    #[error("handshake failed: {detail}")]
    Handshake { detail: String },
    /// The server is not compatible (no UDX stream data).
    #[error("incompatible server: {detail}")]
    Incompatible { detail: String },
    /// A DHT query found no node.
    #[error("query failed: {detail}")]
    QueryFailed { detail: String },
    /// No storage node accepted a put.
    #[error("not stored: {detail}")]
    NotStored { detail: String },
    /// No value was found.
    #[error("not found: {detail}")]
    NotFound { detail: String },
    /// A server on this node already listens on the key pair.
    #[error("key pair in use: {detail}")]
    KeyPairInUse { detail: String },
    /// A mutable put was refused (seq reused or too low).
    #[error("mutable put refused: {detail}")]
    MutableRefused { detail: String },
    /// Not supported.
    #[error("unsupported: {detail}")]
    Unsupported { detail: String },
    /// A stream failed.
    #[error("i/o: {detail}")]
    Io { detail: String },
    /// A connection's write queue is full.
    #[error("would block: {detail}")]
    WouldBlock { detail: String },
    /// Anything else (the runtime thread could not start, ...).
    #[error("internal: {detail}")]
    Internal { detail: String },
}

impl P2pswarmError {
    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        Self::InvalidArgument {
            detail: detail.into(),
        }
    }

    pub(crate) fn closed() -> Self {
        Self::Closed {
            detail: "closed".into(),
        }
    }
}

impl From<Error> for P2pswarmError {
    fn from(e: Error) -> Self {
        let detail = e.to_string();
        match e {
            Error::Closed => Self::Closed { detail },
            Error::WouldDeadlock => Self::WouldDeadlock { detail },
            Error::InvalidArgument(_) => Self::InvalidArgument { detail },
            Error::Bind(_) => Self::Bind { detail },
            Error::BootstrapTimeout => Self::BootstrapTimeout { detail },
            Error::Unsupported(_) => Self::Unsupported { detail },
            Error::Io(_) => Self::Io { detail },
            Error::WouldBlock => Self::WouldBlock { detail },
            Error::Connect(c) => match c {
                ConnectError::PeerNotFound => Self::PeerNotFound { detail },
                ConnectError::ConnectionFailed => Self::ConnectionFailed { detail },
                ConnectError::Rejected(_) => Self::Rejected { detail },
                ConnectError::Handshake(_) => Self::Handshake { detail },
                ConnectError::ServerIncompatible => Self::Incompatible { detail },
                ConnectError::Destroyed => Self::Closed { detail },
                _ => Self::Internal { detail },
            },
            Error::Dht(d) => match d {
                DhtError::Query(_) => Self::QueryFailed { detail },
                DhtError::NotStored => Self::NotStored { detail },
                DhtError::NotFound => Self::NotFound { detail },
                DhtError::KeyPairInUse => Self::KeyPairInUse { detail },
                DhtError::MutableRefused(_) => Self::MutableRefused { detail },
                _ => Self::Internal { detail },
            },
            _ => Self::Internal { detail },
        }
    }
}

/// Result of the bindings.
pub type Result<T, E = P2pswarmError> = std::result::Result<T, E>;
