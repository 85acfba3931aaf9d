//! [`SecretStream`]: the engine driven over an `AsyncRead + AsyncWrite` transport.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll, Wake, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::{Config, Engine, Error, Event, MAX_MESSAGE_LEN};
use crate::crypto::PublicKey;
use crate::noise::HandshakeResult;

/// Size of the buffer raw bytes are read into (one per thread, shared by all streams).
const READ_CHUNK: usize = 64 * 1024;
/// Encrypted bytes allowed to wait for the transport before writes are refused with `Pending`.
const HIGH_WATER: usize = 256 * 1024;

thread_local! {
    /// The raw read buffer, shared by every stream polled on this thread: bytes read are handed
    /// to the engine within the same poll, so a stream needs no buffer of its own while it
    /// waits (64 KiB per idle connection before).
    static READ_SCRATCH: std::cell::Cell<Option<Box<[u8]>>> = const { std::cell::Cell::new(None) };
}

fn take_scratch() -> Box<[u8]> {
    READ_SCRATCH
        .try_with(std::cell::Cell::take)
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0u8; READ_CHUNK].into_boxed_slice())
}

fn put_scratch(buf: Box<[u8]>) {
    let _ = READ_SCRATCH.try_with(|c| c.set(Some(buf)));
}

/// The wakers of the last task that polled the stream for reading and for writing. The stream
/// polls its transport (and timer) with one waker that wakes both: `poll_read` also flushes
/// queued output and `poll_write` may wait on the transport, so with two tasks on the halves of
/// `tokio::io::split` the transport's single write (or read) waker would otherwise belong to
/// whichever task polled last, and the other task could sleep forever (a writer waiting for
/// room after the reader took the transport's wake-up). A spurious wake-up costs one poll.
#[derive(Default)]
struct Wakers {
    read: Mutex<Option<Waker>>,
    write: Mutex<Option<Waker>>,
}

impl Wakers {
    fn set(slot: &Mutex<Option<Waker>>, waker: &Waker) {
        let mut w = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if !w.as_ref().is_some_and(|x| x.will_wake(waker)) {
            *w = Some(waker.clone());
        }
    }
}

/// Which half of the stream a poll serves.
#[derive(Clone, Copy)]
enum Half {
    Read,
    Write,
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        for slot in [&self.read, &self.write] {
            let w = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// An encrypted, authenticated, message-preserving duplex stream over a raw transport.
///
/// It is `AsyncRead + AsyncWrite` (each `poll_write` sends one message; reads return message
/// bytes in order; end of stream when the peer ends), and offers [`SecretStream::send`] /
/// [`SecretStream::recv`] for whole messages. Use `tokio::io::split` to read and write
/// concurrently, from one task or two (no wake-up is lost between the halves). Timers
/// (keep-alive, inactivity timeout) run while the stream is polled for reading or writing, as a
/// read loop always does.
pub struct SecretStream<T> {
    raw: T,
    engine: Engine,
    reading: Option<(Vec<u8>, usize)>,
    timer: Option<Pin<Box<Sleep>>>,
    timer_at: Option<std::time::Instant>,
    raw_shut: bool,
    wakers: Arc<Wakers>,
    /// Wakes both tasks of [`Wakers`]; handed to the transport and the timer.
    waker: Waker,
}

impl<T> std::fmt::Debug for SecretStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStream")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> SecretStream<T> {
    fn wrap(raw: T, engine: Engine) -> Self {
        let wakers = Arc::new(Wakers::default());
        Self {
            raw,
            engine,
            reading: None,
            timer: None,
            timer_at: None,
            raw_shut: false,
            wakers: wakers.clone(),
            waker: Waker::from(wakers),
        }
    }

    /// Runs a Noise handshake (XX unless `config.pattern` says otherwise) on `raw` and returns
    /// once the stream is open: the initiator after sending its last handshake message, the
    /// responder after receiving it.
    pub async fn handshake(raw: T, config: Config) -> Result<Self, Error> {
        Self::handshake_with_engine(raw, Engine::new(&config)?).await
    }

    /// As [`SecretStream::handshake`] with a prepared engine (for injected randomness).
    pub async fn handshake_with_engine(raw: T, engine: Engine) -> Result<Self, Error> {
        let mut s = Self::wrap(raw, engine);
        s.engine.start(now());
        poll_fn(|cx| s.poll_open(cx)).await?;
        Ok(s)
    }

    /// Starts from a finished handshake (as hyperdht does): the stream is open at once and
    /// sends its header frame first.
    pub fn from_handshake(raw: T, handshake: HandshakeResult, config: &Config) -> Self {
        Self::from_engine(raw, Engine::from_handshake(handshake, config))
    }

    /// Drives an engine built from a finished handshake. The header frame is handed to the
    /// transport at once, as the JS stream writes it on start, not at the first poll: the peer
    /// learns of the stream even while the application has not touched it yet (a hyperdht
    /// server binds its stream to the client's first packet and drops it unseen after 10 s).
    /// A transport that is not ready keeps the header for the next poll.
    pub fn from_engine(raw: T, engine: Engine) -> Self {
        let mut s = Self::wrap(raw, engine);
        s.engine.start(now());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // An error here is recorded in the engine and reported by the next call.
        let _ = s.poll_flush_out(&mut cx);
        s
    }

    /// The state machine, for inspection.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The raw transport.
    pub fn get_ref(&self) -> &T {
        &self.raw
    }

    /// Gives back the raw transport, dropping the stream state (bytes not yet written are lost).
    pub fn into_inner(self) -> T {
        self.raw
    }

    /// The peer's proven static public key.
    pub fn remote_public_key(&self) -> Option<&PublicKey> {
        self.engine.remote_public_key()
    }

    /// This side's static public key.
    pub fn public_key(&self) -> Option<&PublicKey> {
        self.engine.handshake().map(|h| &h.public_key)
    }

    /// The 64-byte handshake hash (channel binding).
    pub fn handshake_hash(&self) -> Option<&[u8; 64]> {
        self.engine.handshake().map(|h| &h.hash)
    }

    /// Whether this side initiated the handshake.
    pub fn is_initiator(&self) -> bool {
        self.engine.is_initiator()
    }

    /// Sends one message and waits until it is handed to the transport.
    pub async fn send(&mut self, msg: &[u8]) -> Result<(), Error> {
        poll_fn(|cx| self.poll_room(cx)).await?;
        self.engine.write(now(), msg)?;
        poll_fn(|cx| self.poll_flush_out(cx)).await
    }

    /// The next message, or `None` once the peer ended its side.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if let Some((msg, pos)) = self.reading.take() {
            return Ok(Some(msg[pos..].to_vec()));
        }
        poll_fn(|cx| self.poll_next_message(cx)).await
    }

    /// Ends this side after everything written so far, half-closing the transport.
    pub async fn end(&mut self) -> Result<(), Error> {
        self.engine.end();
        poll_fn(|cx| self.poll_flush_out(cx)).await
    }

    /// Destroys the stream; later calls fail with [`Error::Destroyed`].
    pub fn destroy(&mut self) {
        self.engine.destroy(None);
    }

    /// Runs `f` with a context whose waker wakes the tasks of both halves, after recording the
    /// caller's waker as the `half`'s (see [`Wakers`]).
    fn poll_as<R>(
        &mut self,
        half: Half,
        cx: &Context<'_>,
        f: impl FnOnce(&mut Self, &mut Context<'_>) -> R,
    ) -> R {
        let slot = match half {
            Half::Read => &self.wakers.read,
            Half::Write => &self.wakers.write,
        };
        Wakers::set(slot, cx.waker());
        let waker = self.waker.clone();
        f(self, &mut Context::from_waker(&waker))
    }

    fn check(&self) -> Result<(), Error> {
        self.engine.error().map_or(Ok(()), |e| Err(e.clone()))
    }

    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            self.check()?;
            if self.engine.is_open() {
                if let Poll::Ready(Err(e)) = self.poll_flush_out(cx) {
                    return Poll::Ready(Err(e));
                }
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_flush_out(cx))?;
            if self.poll_timer(cx) {
                continue;
            }
            ready!(self.poll_read_raw(cx))?;
        }
    }

    /// Writes out pending bytes, then half-closes the transport if the stream ended.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            let buf = self.engine.transmit_buf();
            if buf.is_empty() {
                break;
            }
            match Pin::new(&mut self.raw).poll_write(cx, buf) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(self.io_failed(io::ErrorKind::WriteZero.into())))
                }
                Poll::Ready(Ok(n)) => self.engine.advance_transmit(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.io_failed(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.engine.wants_raw_end() && !self.raw_shut {
            match Pin::new(&mut self.raw).poll_shutdown(cx) {
                Poll::Ready(Ok(())) => self.raw_shut = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.io_failed(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(self.check())
    }

    fn io_failed(&mut self, e: io::Error) -> Error {
        let err = Error::from(e);
        self.engine.destroy(Some(err.clone()));
        err
    }

    /// Waits until the outgoing buffer is below the high-water mark.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.check()?;
        if self.engine.transmit_buf().len() >= HIGH_WATER {
            ready!(self.poll_flush_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Runs due timers; returns whether one fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.engine.poll_timeout() else {
            self.timer_at = None;
            return false;
        };
        let deadline = tokio::time::Instant::from_std(at);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if self.timer_at != Some(at) {
            timer.as_mut().reset(deadline);
            self.timer_at = Some(at);
        }
        if timer.as_mut().poll(cx).is_ready() {
            self.timer_at = None;
            self.engine.handle_timeout(now());
            return true;
        }
        false
    }

    fn poll_read_raw(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Taken for this poll only (a nested stream polled meanwhile allocates its own).
        let mut scratch = take_scratch();
        let mut buf = ReadBuf::new(&mut scratch);
        let r = match Pin::new(&mut self.raw).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                if n == 0 {
                    self.engine.handle_input_end(now());
                } else {
                    self.engine.handle_input(now(), &scratch[..n]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.io_failed(e))),
            Poll::Pending => Poll::Pending,
        };
        put_scratch(scratch);
        r
    }

    fn poll_next_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Vec<u8>>, Error>> {
        loop {
            while let Some(ev) = self.engine.poll_event() {
                match ev {
                    Event::Message(m) => return Poll::Ready(Ok(Some(m))),
                    Event::Destroyed(e) => return Poll::Ready(Err(e)),
                    _ => {}
                }
            }
            self.check()?;
            if self.engine.is_remote_ended() {
                return Poll::Ready(Ok(None));
            }
            if let Poll::Ready(Err(e)) = self.poll_flush_out(cx) {
                return Poll::Ready(Err(e));
            }
            if self.poll_timer(cx) {
                continue;
            }
            ready!(self.poll_read_raw(cx))?;
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> SecretStream<T> {
    /// Fills `buf` with as many messages as are ready (one read, not one per message).
    fn poll_read_ready(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut filled = false;
        loop {
            if let Some((msg, pos)) = &mut self.reading {
                let n = (msg.len() - *pos).min(buf.remaining());
                buf.put_slice(&msg[*pos..*pos + n]);
                *pos += n;
                if *pos == msg.len() {
                    self.reading = None;
                }
                filled = true;
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            match self.poll_next_message(cx) {
                Poll::Ready(Ok(Some(m))) if m.is_empty() => {}
                Poll::Ready(Ok(Some(m))) => self.reading = Some((m, 0)),
                // End of stream or an error after some data: the data first, the end or the
                // error (kept by the engine) on the next read.
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) | Poll::Pending if filled => return Poll::Ready(Ok(())),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Sends one message of at most [`MAX_MESSAGE_LEN`] bytes of `buf`.
    fn poll_write_message(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_room(cx))?;
        let n = buf.len().min(MAX_MESSAGE_LEN);
        self.engine.write(now(), &buf[..n])?;
        if let Poll::Ready(Err(e)) = self.poll_flush_out(cx) {
            return Poll::Ready(Err(e.into()));
        }
        Poll::Ready(Ok(n))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for SecretStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        self.poll_as(Half::Read, cx, |s, cx| s.poll_read_ready(cx, buf))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SecretStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_as(Half::Write, cx, |s, cx| s.poll_write_message(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_as(Half::Write, cx, |s, cx| {
            ready!(s.poll_flush_out(cx))?;
            Pin::new(&mut s.raw).poll_flush(cx)
        })
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_as(Half::Write, cx, |s, cx| {
            s.engine.end();
            ready!(s.poll_flush_out(cx))?;
            Poll::Ready(Ok(()))
        })
    }
}
