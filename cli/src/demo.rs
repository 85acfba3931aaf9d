//! `p2pswarm demo`: an embedded loopback testnet, N swarms joining one topic, and a timeline of
//! what happens (announce, discovery, connections with their path, messages, round trips).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use p2pswarm::crypto::{blake2b256, KeyPair};
use p2pswarm::dht::Dht;
use p2pswarm::rpc::driver::DhtConfig;
use p2pswarm::swarm::{JoinOptions, Swarm, SwarmEvent, SwarmOptions};

const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
const DHT_NODES: usize = 8;

struct Timeline {
    start: Instant,
}

impl Timeline {
    fn say(&self, msg: &str) {
        println!(
            "[{:>7.1} ms] {msg}",
            self.start.elapsed().as_secs_f64() * 1000.0
        );
    }
}

fn short(k: &p2pswarm::crypto::PublicKey) -> String {
    k.to_hex()[..8].to_string()
}

async fn dht_node(bootstrap: Option<SocketAddrV4>) -> Result<Dht, String> {
    let cfg = match bootstrap {
        None => DhtConfig {
            bootstrap: Vec::new(),
            host: HOST,
            ephemeral: Some(false),
            firewalled: false,
            public_addr: Some(SocketAddrV4::new(HOST, 0)),
            ..DhtConfig::default()
        },
        Some(b) => DhtConfig {
            bootstrap: vec![b],
            host: HOST,
            ephemeral: Some(false),
            ..DhtConfig::default()
        },
    };
    let d = Dht::bind(cfg).await.map_err(|e| format!("bind: {e}"))?;
    tokio::time::timeout(Duration::from_secs(10), d.ready())
        .await
        .map_err(|_| "testnet bootstrap timed out")?;
    Ok(d)
}

type Shared<T> = Arc<Mutex<T>>;

/// Prints each connection and runs one message round trip on it.
fn spawn_events(
    mut events: p2pswarm::swarm::SwarmEvents,
    me: String,
    tl: Arc<Timeline>,
    rtts: Shared<Vec<f64>>,
    msgs: Shared<usize>,
) {
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            let SwarmEvent::Connection(mut conn, info) = ev else {
                continue;
            };
            let peer = short(&info.public_key);
            if conn.is_initiator() {
                let path = conn
                    .stream()
                    .get_ref()
                    .remote()
                    .map_or("?".to_string(), |r| r.addr.to_string());
                tl.say(&format!("{me} connected to {peer}: handshake routed by the DHT, then a direct UDX path to {path} (same host: no hole punch needed)"));
            } else {
                tl.say(&format!("{me} accepted {peer} (Noise IK checked its key; its first UDX packet fixes the path)"));
            }
            let (tl, rtts, msgs, me) = (tl.clone(), rtts.clone(), msgs.clone(), me.clone());
            tokio::spawn(async move {
                let s = conn.stream();
                if s.is_initiator() {
                    let t0 = Instant::now();
                    if s.send(b"hello over p2pswarm").await.is_err() {
                        return;
                    }
                    if let Ok(Some(reply)) = s.recv().await {
                        let ms = t0.elapsed().as_secs_f64() * 1000.0;
                        if let Ok(mut v) = rtts.lock() {
                            v.push(ms);
                        }
                        *msgs
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) += 2;
                        tl.say(&format!(
                            "{me} got {:?} back; round trip {ms:.2} ms",
                            String::from_utf8_lossy(&reply)
                        ));
                    }
                } else if let Ok(Some(msg)) = s.recv().await {
                    let _ = s
                        .send(format!("echo: {}", String::from_utf8_lossy(&msg)).as_bytes())
                        .await;
                }
                // Keep the connection open until the demo ends.
                std::future::pending::<()>().await;
            });
        }
    });
}

/// Runs the demo with `peers` swarms.
pub async fn run(peers: usize) -> Result<(), String> {
    if peers < 2 {
        return Err("--peers must be at least 2".into());
    }
    let tl = Arc::new(Timeline {
        start: Instant::now(),
    });
    let boot = dht_node(None).await?;
    let boot_addr = match boot.rpc().local_addr() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => return Err("ipv6".into()),
    };
    let mut testnet = vec![boot];
    for _ in 1..DHT_NODES {
        testnet.push(dht_node(Some(boot_addr)).await?);
    }
    tl.say(&format!("local testnet of {DHT_NODES} DHT nodes is up (bootstrap {boot_addr}); nothing leaves this machine"));
    let topic = blake2b256(b"p2pswarm demo");
    tl.say(&format!(
        "topic = BLAKE2b-256(\"p2pswarm demo\") = {}…",
        &p2pswarm::crypto::to_hex(&topic)[..16]
    ));

    let rtts: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let messages = Arc::new(Mutex::new(0usize));
    let mut swarms = Vec::new();
    for i in 0..peers {
        let kp = KeyPair::generate();
        let dht = Dht::bind_with_key_pair(
            DhtConfig {
                bootstrap: vec![boot_addr],
                host: HOST,
                ..DhtConfig::default()
            },
            kp,
        )
        .await
        .map_err(|e| format!("bind: {e}"))?;
        tokio::time::timeout(Duration::from_secs(10), dht.ready())
            .await
            .map_err(|_| "peer bootstrap timed out")?;
        let (swarm, events) =
            Swarm::with_dht(dht.clone(), dht.key_pair().clone(), SwarmOptions::default());
        let name = format!("peer{} ({})", i + 1, short(swarm.public_key()));
        spawn_events(
            events,
            name.clone(),
            tl.clone(),
            rtts.clone(),
            messages.clone(),
        );
        swarm
            .join(
                topic,
                JoinOptions {
                    server: true,
                    client: true,
                    limit: None,
                },
            )
            .expect("join");
        swarm.flush().await;
        tl.say(&format!(
            "{name} joined the topic (announced as server, looked up as client)"
        ));
        swarms.push(swarm);
    }
    let want = peers * (peers - 1) / 2;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let total: usize = swarms.iter().map(Swarm::connections).sum::<usize>() / 2;
        let done = rtts.lock().map_or(0, |v| v.len());
        if total >= want && done >= want {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {total} of {want} connections after 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut v = rtts.lock().map_or_else(|_| Vec::new(), |v| v.clone());
    v.sort_by(f64::total_cmp);
    let msgs = *messages
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tl.say(&format!(
        "summary: {peers} peers, {want} connections (one per pair), {msgs} messages, round trip median {:.2} ms, max {:.2} ms",
        v[v.len() / 2],
        v[v.len() - 1]
    ));
    for s in &swarms {
        s.destroy().await;
    }
    for d in &testnet {
        d.destroy();
    }
    Ok(())
}
