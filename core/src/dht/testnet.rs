//! A local HyperDHT testnet (as `hyperdht/testnet` in JS): one bootstrapper plus persistent
//! nodes on one host, for tests, examples and demos that must not touch the public network.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use super::Dht;
use crate::rpc::driver::DhtConfig;

/// A running testnet; dropping it (or [`Testnet::destroy`]) stops its nodes.
#[derive(Debug)]
pub struct Testnet {
    /// The nodes; the first is the bootstrapper.
    pub nodes: Vec<Dht>,
    /// The bootstrap address to pass to peers.
    pub bootstrap: SocketAddrV4,
}

impl Testnet {
    /// Starts `n` (at least 1) persistent nodes on `host` (e.g. 127.0.0.1) and waits until
    /// each has bootstrapped (20 s bound per node).
    pub async fn new(n: usize, host: Ipv4Addr) -> std::io::Result<Self> {
        let boot = Dht::bind(DhtConfig {
            bootstrap: Vec::new(),
            host,
            ephemeral: Some(false),
            firewalled: false,
            public_addr: Some(SocketAddrV4::new(host, 0)),
            ..DhtConfig::default()
        })
        .await?;
        let bootstrap = match boot.rpc().local_addr() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => {
                return Err(std::io::Error::other("the testnet binds IPv4"));
            }
        };
        let mut nodes = vec![boot];
        for _ in 1..n {
            let d = Dht::bind(DhtConfig {
                bootstrap: vec![bootstrap],
                host,
                ephemeral: Some(false),
                ..DhtConfig::default()
            })
            .await?;
            tokio::time::timeout(Duration::from_secs(20), d.ready())
                .await
                .map_err(|_| std::io::Error::other("testnet node did not bootstrap in 20 s"))?;
            nodes.push(d);
        }
        Ok(Self { nodes, bootstrap })
    }

    /// Hands the nodes and the bootstrap address to the caller, who then owns their lifetime
    /// (dropping a [`Dht`] clone does not stop it: call [`Dht::destroy`]).
    pub fn into_parts(mut self) -> (Vec<Dht>, SocketAddrV4) {
        (std::mem::take(&mut self.nodes), self.bootstrap)
    }

    /// Stops every node.
    pub fn destroy(&self) {
        for n in &self.nodes {
            n.destroy();
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        self.destroy();
    }
}
