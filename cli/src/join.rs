//! `p2pswarm join <TOPIC>`: join a topic and chat over every connection: stdin lines go to every
//! connected peer, peer data goes to stdout, events go to stderr (JSON lines with `--json`).

use std::sync::{Arc, Mutex};

use p2pswarm::crypto::{blake2b256, to_hex, KeyPair, PublicKey};
use p2pswarm::dht::Dht;
use p2pswarm::rpc::driver::DhtConfig;
use p2pswarm::swarm::{JoinOptions, Swarm, SwarmEvent, SwarmOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, WriteHalf};

type Writers = Arc<
    Mutex<
        Vec<(
            PublicKey,
            Arc<tokio::sync::Mutex<WriteHalf<Box<p2pswarm::swarm::SwarmConnection>>>>,
        )>,
    >,
>;

/// A topic: 64 hex characters, or any other string hashed with BLAKE2b-256.
pub fn parse_topic(s: &str) -> [u8; 32] {
    if s.len() == 64 {
        let bytes: Option<Vec<u8>> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect();
        if let Some(b) = bytes {
            if let Ok(t) = b.try_into() {
                return t;
            }
        }
    }
    blake2b256(s.as_bytes())
}

fn event(json: bool, text: &str, obj: &str) {
    if json {
        eprintln!("{obj}");
    } else {
        eprintln!("{text}");
    }
}

/// Prints connections and copies each peer's data to stdout.
fn spawn_events(mut events: p2pswarm::swarm::SwarmEvents, w2: Writers, swarm2: Swarm, json: bool) {
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            match ev {
                SwarmEvent::Connection(conn, info) => {
                    let pk = info.public_key;
                    let topics: Vec<String> = info
                        .topics
                        .iter()
                        .map(|t| format!("\"{}\"", to_hex(t)))
                        .collect();
                    // Register the writer before announcing the connection, so a line typed
                    // right after the announcement reaches this peer.
                    let (mut rd, wr) = tokio::io::split(conn);
                    w2.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((pk, Arc::new(tokio::sync::Mutex::new(wr))));
                    event(
                        json,
                        &format!("connected to {}", pk.to_hex()),
                        &format!(
                            "{{\"event\":\"connection\",\"publicKey\":\"{}\",\"topics\":[{}]}}",
                            pk.to_hex(),
                            topics.join(",")
                        ),
                    );
                    let w3 = w2.clone();
                    tokio::spawn(async move {
                        let mut out = tokio::io::stdout();
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = rd.read(&mut buf).await {
                            if n == 0 || out.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            let _ = out.flush().await;
                        }
                        w3.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .retain(|(k, _)| *k != pk);
                        event(
                            json,
                            &format!("closed {}", pk.to_hex()),
                            &format!("{{\"event\":\"close\",\"publicKey\":\"{}\"}}", pk.to_hex()),
                        );
                    });
                }
                SwarmEvent::Update => {
                    let n = swarm2.connections();
                    if json {
                        eprintln!(
                            "{{\"event\":\"update\",\"connections\":{n},\"connecting\":{}}}",
                            swarm2.connecting()
                        );
                    }
                }
                _ => {}
            }
        }
    });
}

/// Runs `join`.
pub async fn run(
    topic: &str,
    server: bool,
    client: bool,
    seed: Option<[u8; 32]>,
    cfg: DhtConfig,
    json: bool,
) -> Result<(), String> {
    let topic = parse_topic(topic);
    let (server, client) = if server || client {
        (server, client)
    } else {
        (true, true)
    };
    let kp = seed.map_or_else(KeyPair::generate, |s| KeyPair::from_seed(&s));
    let dht = Dht::bind_with_key_pair(cfg, kp)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    tokio::time::timeout(std::time::Duration::from_secs(30), dht.ready())
        .await
        .map_err(|_| "bootstrap timed out".to_string())?;
    let (swarm, events) =
        Swarm::with_dht(dht.clone(), dht.key_pair().clone(), SwarmOptions::default());
    let writers: Writers = Arc::new(Mutex::new(Vec::new()));
    spawn_events(events, writers.clone(), swarm.clone(), json);
    swarm
        .join(
            topic,
            JoinOptions {
                server,
                client,
                limit: None,
            },
        )
        .expect("join");
    // Announce and first lookup done: peers joining after this line will find us.
    swarm.flush().await;
    event(
        json,
        &format!(
            "joined {} as {} ({}{})",
            to_hex(&topic),
            swarm.public_key().to_hex(),
            if server { "server" } else { "" },
            if client { " client" } else { "" }
        ),
        &format!(
            "{{\"event\":\"joined\",\"topic\":\"{}\",\"publicKey\":\"{}\"}}",
            to_hex(&topic),
            swarm.public_key().to_hex()
        ),
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let targets: Vec<_> = writers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        for w in targets {
            let mut w = w.lock().await;
            let _ = w.write_all(format!("{line}\n").as_bytes()).await;
        }
    }
    let targets: Vec<_> = writers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(_, w)| w.clone())
        .collect();
    for w in targets {
        let _ = w.lock().await.shutdown().await;
    }
    swarm.flush().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    swarm.destroy().await;
    Ok(())
}
