//! dht-rpc: the Kademlia RPC layer hyperdht runs on, wire-compatible with npm `dht-rpc` 6.27
//! (spec `dht-rpc.md`).

pub mod driver;
pub mod message;
pub mod nat;
pub mod node;
pub mod query;
pub mod table;
pub mod token;
