#![doc = include_str!("../../README.md")]
#![forbid(unsafe_code)]

pub mod crypto;
pub mod dht;
pub mod encoding;
pub mod noise;
pub mod protomux;
pub mod rpc;
pub mod runtime;
pub mod secret_stream;
pub mod swarm;
pub mod testing;
pub mod udx;
