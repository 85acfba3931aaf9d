//! p2pswarm: a Rust implementation of the Hyperswarm networking stack.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod encoding;
pub mod noise;
pub mod secret_stream;
