//! Hands memory freed after a burst back to the OS (Linux with glibc only).
//!
//! glibc's malloc keeps what a thread frees in that thread's arena for later reuse and returns
//! it to the OS only when the free space is at the top of the heap. The runtime thread's arena
//! therefore keeps the transient peak of a burst (many handshakes at once, data in flight,
//! data events waiting for JS) long after the memory is freed: the process's RSS stays at the
//! peak. A helper thread (`p2pswarm-trim`) waits for activity (a promise of the addon settled:
//! events handed to JS, calls answered; a write), and once the addon has been quiet for
//! [`QUIET`] after it, calls `malloc_trim(0)`, which releases the free pages of every arena.
//! No trim while the addon is busy or after it has stayed idle; at most one per [`MIN_INTERVAL`],
//! or per 100 times the last trim's duration if that is longer. The trim runs on its own
//! thread: neither the JS thread nor the runtime thread waits for it, except for an allocation
//! that needs an arena while the trim holds that arena's lock (0.1–1 ms with the benchmark's
//! heaps; a trim of a heap with 128 MiB free in 16 KiB holes took 13–54 ms).
//! `P2PSWARM_MALLOC_TRIM=0` in the environment turns it off.
//!
//! Cost otherwise: one relaxed atomic increment per settled promise / write, plus a futex wake
//! for the first one after an idle period. Measurements: bindings/node/STATUS.md,
//! "2026-12-07 (night)".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long the addon must stay quiet after activity before a trim.
const QUIET: Duration = Duration::from_millis(200);
/// The least time between two trims (more after a slow trim: 100 times its duration).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// `malloc_trim` exists (glibc).
const SUPPORTED: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

static ACTIVITY: AtomicU64 = AtomicU64::new(0);
static TRIMS: AtomicU64 = AtomicU64::new(0);
static TRIMMER: OnceLock<Option<Thread>> = OnceLock::new();

/// Starts the helper thread (once; not when turned off or unsupported).
pub(crate) fn start() {
    TRIMMER.get_or_init(spawn);
}

/// Records activity: a trim follows once the addon has been quiet for [`QUIET`].
pub(crate) fn note_activity() {
    ACTIVITY.fetch_add(1, Ordering::Relaxed);
    if let Some(Some(t)) = TRIMMER.get() {
        t.unpark();
    }
}

/// How many trims ran; `None` when turned off, unsupported, or not started yet.
pub(crate) fn trims() -> Option<u64> {
    match TRIMMER.get() {
        Some(Some(_)) => Some(TRIMS.load(Ordering::Relaxed)),
        _ => None,
    }
}

fn spawn() -> Option<Thread> {
    if !SUPPORTED || std::env::var_os("P2PSWARM_MALLOC_TRIM").is_some_and(|v| v == "0") {
        return None;
    }
    std::thread::Builder::new()
        .name("p2pswarm-trim".into())
        .stack_size(64 * 1024)
        .spawn(run)
        .ok()
        .map(|j| j.thread().clone())
}

fn run() {
    let mut seen = ACTIVITY.load(Ordering::Relaxed);
    loop {
        // park() may return spuriously or for an old unpark: the counter decides
        while ACTIVITY.load(Ordering::Relaxed) == seen {
            std::thread::park();
        }
        loop {
            let before = ACTIVITY.load(Ordering::Relaxed);
            std::thread::sleep(QUIET);
            if ACTIVITY.load(Ordering::Relaxed) == before {
                break;
            }
        }
        seen = ACTIVITY.load(Ordering::Relaxed);
        let started = Instant::now();
        release_free_memory();
        TRIMS.fetch_add(1, Ordering::Relaxed);
        // a large fragmented heap makes a trim slow (it walks every free chunk, and holds each
        // arena's lock while it walks that arena): keep trimming under 1 % of the time
        std::thread::sleep(MIN_INTERVAL.max(started.elapsed() * 100));
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    extern "C" {
        /// glibc (malloc.h): releases free memory at the top of the main heap and every free
        /// whole page inside all arenas (madvise MADV_DONTNEED); returns 1 if any was released.
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena in turn);
    // it only changes which free pages are backed by memory, never live allocations.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}
