//! A loopback hyperdht testnet of Rust nodes for tests: one bootstrapper plus persistent nodes
//! (which pass the firewall check), all on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use p2pswarm::dht::Dht;
use p2pswarm::rpc::driver::DhtConfig;

/// `n` persistent Rust hyperdht nodes on loopback and the bootstrap address.
pub async fn rust_testnet(n: usize) -> (Vec<Dht>, SocketAddrV4) {
    let host = Ipv4Addr::LOCALHOST;
    let boot = Dht::bind(DhtConfig {
        bootstrap: Vec::new(),
        host,
        ephemeral: Some(false),
        firewalled: false,
        public_addr: Some(SocketAddrV4::new(host, 0)),
        ..DhtConfig::default()
    })
    .await
    .expect("bootstrapper");
    let addr = match boot.rpc().local_addr() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("the testnet binds IPv4"),
    };
    let mut all = vec![boot];
    for _ in 1..n {
        let d = Dht::bind(DhtConfig {
            bootstrap: vec![addr],
            host,
            ephemeral: Some(false),
            ..DhtConfig::default()
        })
        .await
        .expect("testnet node");
        tokio::time::timeout(Duration::from_secs(20), d.ready())
            .await
            .expect("testnet node bootstraps");
        all.push(d);
    }
    (all, addr)
}
