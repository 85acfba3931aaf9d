//! A loopback hyperdht testnet of Rust nodes for tests: one bootstrapper plus persistent nodes
//! (which pass the firewall check), all on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddrV4};

use p2pswarm::dht::{Dht, Testnet};

/// `n` persistent Rust hyperdht nodes on loopback and the bootstrap address
/// ([`p2pswarm::dht::Testnet`]).
pub async fn rust_testnet(n: usize) -> (Vec<Dht>, SocketAddrV4) {
    Testnet::new(n.max(1), Ipv4Addr::LOCALHOST)
        .await
        .expect("testnet")
        .into_parts()
}
