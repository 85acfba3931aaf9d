//! The secret stream of `@hyperswarm/secret-stream` 6.9: a Noise handshake (or a pre-made one
//! from hyperdht), one header frame per direction, then `uint24`-framed
//! `crypto_secretstream_xchacha20poly1305` messages (spec `secret-stream.md`).
//!
//! * [`Engine`] is the sans-IO state machine: `handle_input(now, bytes)`, `write(now, msg)`,
//!   `handle_timeout(now)` in; `transmit_buf`, `poll_event`, `poll_timeout` out.
//! * [`SecretStream`] drives an engine over any `AsyncRead + AsyncWrite` (TCP, a UDX stream, an
//!   in-memory pipe) and is itself `AsyncRead + AsyncWrite`, with a message API beside it.
//!
//! Messages keep their boundaries: one `write` of up to [`MAX_MESSAGE_LEN`] bytes arrives as
//! one message. Every failure is an [`Error`] that also destroys the stream.

use std::io;
use std::sync::Arc;

pub mod cipher;
mod engine;
mod io_adapter;
pub mod unordered;

pub use engine::{Config, Engine, Event, Randomness, HEADER_PAYLOAD_LEN};
pub use io_adapter::SecretStream;

use crate::crypto::{blake2b256_keyed, ns};
use crate::noise::NoiseError;

/// Largest message one write may carry: 2^24 − 1 minus the 17-byte overhead.
pub const MAX_MESSAGE_LEN: usize = 16_777_215 - cipher::ABYTES;

/// `streamId(handshakeHash, isInitiator)`: `BLAKE2b-256(NS_INITIATOR | NS_RESPONDER; key = hash)`.
pub fn stream_id(handshake_hash: &[u8; 64], is_initiator: bool) -> [u8; 32] {
    let ns = if is_initiator {
        &ns::SECRET_STREAM_INITIATOR
    } else {
        &ns::SECRET_STREAM_RESPONDER
    };
    blake2b256_keyed(handshake_hash, ns)
}

/// Why a secret stream failed. Every variant but [`Error::MessageTooLarge`] and
/// [`Error::NotOpen`] destroys the stream.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Noise handshake failed (JS: `Noise handshake failed`).
    #[error("Noise handshake failed: {0}")]
    Handshake(#[from] NoiseError),
    /// The first frame after the handshake was not 56 bytes (JS: `Invalid header message received`).
    #[error("invalid header message received: {0} bytes instead of 56")]
    InvalidHeaderMessage(usize),
    /// The header's stream id does not belong to this handshake (JS: `Invalid header received`).
    #[error("invalid header received: stream id does not match the handshake")]
    InvalidHeader,
    /// A data frame shorter than 17 bytes (JS: `Invalid message received`).
    #[error("invalid message received: frame of {0} bytes is shorter than 17")]
    InvalidMessage(usize),
    /// A data frame failed to authenticate.
    #[error("message failed to decrypt")]
    Decrypt,
    /// A handshake frame longer than a Noise message can be.
    #[error("frame of {0} bytes is longer than allowed here")]
    FrameTooLarge(usize),
    /// A write longer than [`MAX_MESSAGE_LEN`]; the stream stays usable.
    #[error("message of {0} bytes is too large for an atomic write (max 16777198)")]
    MessageTooLarge(usize),
    /// No raw bytes arrived within the configured timeout (JS: `Stream timed out`).
    #[error("stream timed out")]
    TimedOut,
    /// The raw transport ended in the middle of a frame.
    #[error("raw stream ended in the middle of a frame")]
    TruncatedFrame,
    /// The raw transport ended before the handshake and header exchange completed.
    #[error("raw stream ended before the stream opened")]
    EndedBeforeOpen,
    /// A write after `end()`.
    #[error("write after end")]
    WriteAfterEnd,
    /// An unordered datagram before the handshake finished; the stream stays usable.
    #[error("stream is not open yet")]
    NotOpen,
    /// The unordered-datagram counter wrapped around.
    #[error("unordered send nonce exhausted")]
    NonceExhausted,
    /// The stream was destroyed by its owner (JS: `Stream destroyed`).
    #[error("stream destroyed")]
    Destroyed,
    /// The raw transport failed.
    #[error("raw stream I/O error: {0}")]
    Io(Arc<io::Error>),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        // Unwrap errors we wrapped ourselves on the way out.
        if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
            return inner.clone();
        }
        Error::Io(Arc::new(e))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Io(inner) => inner.kind(),
            Error::TimedOut => io::ErrorKind::TimedOut,
            Error::TruncatedFrame | Error::EndedBeforeOpen => io::ErrorKind::UnexpectedEof,
            Error::WriteAfterEnd => io::ErrorKind::BrokenPipe,
            Error::Destroyed => io::ErrorKind::ConnectionAborted,
            Error::MessageTooLarge(_) => io::ErrorKind::InvalidInput,
            Error::NotOpen => io::ErrorKind::NotConnected,
            Error::Handshake(NoiseError::UnexpectedRemoteKey { .. }) => {
                io::ErrorKind::PermissionDenied
            }
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests;
