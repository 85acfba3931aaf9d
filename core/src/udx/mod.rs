//! UDX: reliable, congestion-controlled streams over UDP, wire-compatible with udx-native
//! 1.21.3 (spec `udx.md`). Sans-IO: [`Stream`] and [`Socket`] never touch sockets, clocks or
//! randomness; a driver feeds them datagrams and time and sends what they produce.

pub mod cc;
mod driver;
pub mod packet;
mod socket;
mod stream;

pub use driver::{UdxCloseWatch, UdxSocket, UdxStream};
pub use packet::{Header, Packet};
pub use socket::{Datagram, Socket, SocketEvent, SocketTransmit};
pub use stream::{Remote, Stream, StreamConfig, StreamEvent, Transmit, DEFAULT_RECV_WINDOW};

/// Why a stream failed (the errno-like reasons of udx-native).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdxError {
    /// Seven consecutive retransmission timeouts without progress (ETIMEDOUT).
    #[error("stream timed out")]
    TimedOut,
    /// The peer destroyed the stream (ECONNRESET).
    #[error("stream reset by peer")]
    Reset,
    /// Destroyed locally.
    #[error("stream destroyed")]
    Destroyed,
    /// A write or end after the stream ended or closed.
    #[error("stream ended")]
    Ended,
    /// The stream has no remote yet.
    #[error("stream not connected")]
    NotConnected,
    /// A message larger than one datagram can carry.
    #[error("message of {0} bytes does not fit one UDX datagram")]
    MessageTooLarge(usize),
    /// The stream id is already in use on this socket.
    #[error("stream id {0} already in use")]
    IdInUse(u32),
    /// No stream with this id.
    #[error("no stream with id {0}")]
    UnknownStream(u32),
}
