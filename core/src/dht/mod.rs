//! hyperdht: the peer-discovery and connection layer on top of dht-rpc, wire-compatible with
//! npm `hyperdht` 6.34.0 (spec `hyperdht.md`).
//!
//! * [`messages`]: command numbers, error codes and every message encoding (§2, §3, §11);
//! * [`sign`]: hashes, targets and the announce / unannounce / mutable signatures (§1.2, §5).

pub mod messages;
pub mod sign;

pub use messages::{commands, errors};

pub mod blind_relay;
pub mod client;
pub mod connect;
pub mod holepunch;
pub mod nat;
mod punch;
pub mod storage;
pub mod testnet;

pub use blind_relay::BlindRelayServer;
pub use client::{Dht, DhtError, LookupReply, MutableValue, Server};
pub use connect::{ConnectError, ConnectOptions, Connection};
pub use testnet::Testnet;
