//! The C ABI of p2pswarm (`libp2pswarm.so`, `libp2pswarm.a`, header `include/p2pswarm.h`).
//!
//! Conventions (as rustls-ffi):
//! * Objects are opaque handles made by `_new` (or another call with an `out` parameter) and
//!   released by the matching `_free`; `_free(NULL)` is a no-op.
//! * Every fallible call returns a `p2pswarm_result`; `P2PSWARM_OK` is 0. Out-parameters come
//!   last and are written only on success. `p2pswarm_error_message` names a code and
//!   `p2pswarm_last_error_detail` gives the calling thread's last detailed message.
//! * Borrowed inputs (byte slices, strings) are only read during the call.
//! * One internal thread (the runtime thread, named `p2pswarm-rt`) per context owns all network
//!   state. Calls may be made from any thread. Calls documented as blocking wait for the runtime
//!   thread and fail with `P2PSWARM_ERR_WOULD_DEADLOCK` when made on it (from a callback).
//! * Callbacks take their `userdata` first, run on the runtime thread and must not block.
//! * No panic crosses the ABI: each entry point catches it and returns `P2PSWARM_ERR_PANIC`.

#![allow(non_camel_case_types)]

mod api;
mod dht;
mod events;
mod swarm;

pub use api::*;
pub use dht::*;
pub use events::*;
pub use swarm::*;
