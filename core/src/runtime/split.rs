//! A read/write split of one stream for two tasks that never loses a wake-up.
//!
//! `tokio::io::split` hands each half's waker straight to the stream. The secret stream (like
//! many protocol streams) drives its outgoing queue from `poll_read` too, so a reader task's
//! poll can replace the writer task's waker in the transport: the writer then sleeps forever
//! once its window closes (seen as a stalled transfer when the receiver had paused). Here
//! every poll of the stream goes through one waker that wakes *both* tasks; a spurious wake-up
//! costs one extra poll.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Default)]
struct Wakers {
    read: Mutex<Option<Waker>>,
    write: Mutex<Option<Waker>>,
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let r = lock(&self.read).take();
        let w = lock(&self.write).take();
        for w in [r, w].into_iter().flatten() {
            w.wake();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Shared<S> {
    stream: Mutex<S>,
    wakers: Arc<Wakers>,
    waker: Waker,
}

impl<S: Unpin> Shared<S> {
    fn poll<T>(
        &self,
        slot: &Mutex<Option<Waker>>,
        cx: &Context<'_>,
        f: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        *lock(slot) = Some(cx.waker().clone());
        let mut s = lock(&self.stream);
        let mut inner = Context::from_waker(&self.waker);
        f(Pin::new(&mut *s), &mut inner)
    }
}

/// The read half.
pub(super) struct ReadHalf<S>(Arc<Shared<S>>);

/// The write half.
pub(super) struct WriteHalf<S>(Arc<Shared<S>>);

/// Splits `stream` for a reader task and a writer task.
pub(super) fn split<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> (ReadHalf<S>, WriteHalf<S>) {
    let wakers = Arc::new(Wakers::default());
    let shared = Arc::new(Shared {
        stream: Mutex::new(stream),
        waker: Waker::from(wakers.clone()),
        wakers,
    });
    (ReadHalf(shared.clone()), WriteHalf(shared))
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let sh = &self.0;
        sh.poll(&sh.wakers.read, cx, |s, c| s.poll_read(c, buf))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteHalf<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let sh = &self.0;
        sh.poll(&sh.wakers.write, cx, |s, c| s.poll_write(c, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let sh = &self.0;
        sh.poll(&sh.wakers.write, cx, AsyncWrite::poll_flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let sh = &self.0;
        sh.poll(&sh.wakers.write, cx, AsyncWrite::poll_shutdown)
    }
}
