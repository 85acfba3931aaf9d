//! The hyperswarm README's usage example, in Rust: swarm1 announces a topic and writes to every
//! client; swarm2 joins as a client and prints what it gets. Runs on a local testnet (examples
//! never use the public bootstrap nodes): `cargo run -p p2pswarm --example hello_swarm`.

use std::net::Ipv4Addr;

use p2pswarm::dht::Testnet;
use p2pswarm::swarm::{JoinOptions, Swarm, SwarmEvent, SwarmOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs the example; returns what the client received.
pub async fn run() -> std::io::Result<String> {
    let testnet = Testnet::new(3, Ipv4Addr::LOCALHOST).await?;
    let opts = || SwarmOptions {
        bootstrap: Some(vec![testnet.bootstrap]),
        ..SwarmOptions::default()
    };
    let (swarm1, mut events1) = Swarm::new(opts()).await?;
    let (swarm2, mut events2) = Swarm::new(opts()).await?;

    tokio::spawn(async move {
        while let Some(event) = events1.next().await {
            if let SwarmEvent::Connection(mut conn, _info) = event {
                // swarm1 will receive server connections
                let _ = conn.write_all(b"this is a server connection").await;
                let _ = conn.shutdown().await; // end()
                tokio::spawn(async move {
                    let mut sink = Vec::new();
                    let _ = conn.read_to_end(&mut sink).await;
                });
            }
        }
    });
    let received = tokio::spawn(async move {
        while let Some(event) = events2.next().await {
            if let SwarmEvent::Connection(mut conn, _info) = event {
                let mut data = Vec::new();
                conn.read_to_end(&mut data).await?;
                return Ok(String::from_utf8_lossy(&data).into_owned());
            }
        }
        Err(std::io::Error::other("swarm2 closed"))
    });

    let mut topic = [0u8; 32]; // a topic must be 32 bytes
    topic[..11].copy_from_slice(b"hello world");
    let discovery = swarm1
        .join(topic, JoinOptions::server())
        .map_err(std::io::Error::other)?;
    discovery.flushed().await; // waits for the topic to be announced on the DHT

    swarm2
        .join(topic, JoinOptions::client())
        .map_err(std::io::Error::other)?;
    swarm2.flush().await; // waits for the swarm to connect to pending peers
                          // After this point, both client and server have connections.

    let text = tokio::time::timeout(std::time::Duration::from_secs(20), received)
        .await
        .map_err(|_| std::io::Error::other("no data in 20 s"))?
        .map_err(std::io::Error::other)??;
    swarm1.destroy().await;
    swarm2.destroy().await;
    Ok(text)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let text = run().await?;
    println!("client got message: {text}");
    Ok(())
}
