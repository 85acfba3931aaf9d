//! `p2pswarm`: the command-line tool.
//!
//! * `p2pswarm dht-node [--host H] [--port P] [--bootstrap H:P,...]` runs one persistent DHT node
//!   (a bootstrap node when given no bootstrap list) and prints `listening HOST:PORT`.
//! * `p2pswarm testnet [--nodes N] [--host H] [--port P]` runs a local testnet and prints
//!   `bootstrap HOST:PORT[,...]`.
//!
//! `--bootstrap` also reads `P2PSWARM_BOOTSTRAP`. Logs go to stderr (`RUST_LOG`, default info).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod demo;
mod join;
use p2pswarm::crypto::{KeyPair, PublicKey};
use p2pswarm::dht::{Connection, Dht};
use p2pswarm::rpc::driver::DhtConfig;
use tokio::io::AsyncWriteExt;

#[derive(Parser, Debug)]
#[command(
    name = "p2pswarm",
    version,
    about = "Hyperswarm-compatible peer-to-peer networking"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A comma-separated bootstrap list.
#[derive(Debug, Clone)]
struct BootstrapList(Vec<SocketAddrV4>);

fn parse_bootstrap(s: &str) -> Result<BootstrapList, String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<SocketAddrV4>()
                .map_err(|e| format!("bad bootstrap address {x:?}: {e} (expected IPv4 HOST:PORT)"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(BootstrapList)
}

fn parse_seed(s: &str) -> Result<[u8; 32], String> {
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| format!("seed {s:?} is not hex"))?;
    bytes.try_into().map_err(|_| {
        format!(
            "seed must be 32 bytes (64 hex characters), got {}",
            s.len() / 2
        )
    })
}

fn key_pair(seed: Option<[u8; 32]>) -> KeyPair {
    if let Some(s) = seed {
        return KeyPair::from_seed(&s);
    }
    let kp = KeyPair::generate();
    eprintln!("seed {}", p2pswarm::crypto::to_hex(&kp.seed()));
    kp
}

fn dht_config(bootstrap: Option<BootstrapList>) -> DhtConfig {
    match bootstrap {
        Some(b) => DhtConfig {
            bootstrap: b.0,
            ..DhtConfig::default()
        },
        None => DhtConfig::default(),
    }
}

/// Pipes stdin into the connection (then ends it) and the connection into stdout, until both
/// directions have ended.
async fn pipe(conn: Connection) -> Result<(), String> {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let up = async {
        let mut stdin = tokio::io::stdin();
        tokio::io::copy(&mut stdin, &mut wr)
            .await
            .map_err(|e| format!("sending: {e}"))?;
        wr.shutdown().await.map_err(|e| format!("ending: {e}"))
    };
    let down = async {
        let mut stdout = tokio::io::stdout();
        tokio::io::copy(&mut rd, &mut stdout)
            .await
            .map_err(|e| format!("receiving: {e}"))?;
        stdout.flush().await.map_err(|e| format!("stdout: {e}"))
    };
    let (a, b) = tokio::join!(up, down);
    a.and(b)?;
    // Our END and data must be acknowledged before the process (and its sockets) go away.
    let conn = rd.unsplit(wr);
    let _ = tokio::time::timeout(Duration::from_secs(30), conn.get_ref().closed()).await;
    Ok(())
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start an embedded local testnet and N swarms on one topic, and show what happens.
    Demo {
        /// Number of swarms.
        #[arg(long, default_value_t = 4)]
        peers: usize,
    },
    /// Run one persistent DHT node (a bootstrap node when no bootstrap list is given).
    DhtNode {
        /// IPv4 address to bind and announce.
        #[arg(long, default_value = "127.0.0.1")]
        host: Ipv4Addr,
        /// Port (0 = any).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Comma-separated HOST:PORT list of nodes to join.
        #[arg(long, env = "P2PSWARM_BOOTSTRAP", value_parser = parse_bootstrap)]
        bootstrap: Option<BootstrapList>,
    },
    /// Join a topic: stdin lines go to every connected peer, peer data to stdout, events to
    /// stderr (JSON lines with --json).
    Join {
        /// 64 hex characters, or any string (hashed with BLAKE2b-256).
        topic: String,
        /// Announce and accept connections (default: both roles).
        #[arg(long)]
        server: bool,
        /// Look up and connect (default: both roles).
        #[arg(long)]
        client: bool,
        /// 32-byte seed as 64 hex characters (default: random).
        #[arg(long, value_parser = parse_seed)]
        seed: Option<[u8; 32]>,
        /// Comma-separated HOST:PORT list of DHT nodes (default: the public HyperDHT nodes).
        #[arg(long, env = "P2PSWARM_BOOTSTRAP", value_parser = parse_bootstrap)]
        bootstrap: Option<BootstrapList>,
        /// Events as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Print the public key of a key pair (from --seed, else a new random one; its seed goes
    /// to stderr).
    Keygen {
        /// 32-byte seed as 64 hex characters.
        #[arg(long, value_parser = parse_seed)]
        seed: Option<[u8; 32]>,
    },
    /// Listen on a key pair and pipe the first incoming connection to stdin/stdout.
    Listen {
        /// 32-byte seed as 64 hex characters (default: a new random key pair).
        #[arg(long, value_parser = parse_seed)]
        seed: Option<[u8; 32]>,
        /// Comma-separated HOST:PORT list of DHT nodes (default: the public HyperDHT nodes).
        #[arg(long, env = "P2PSWARM_BOOTSTRAP", value_parser = parse_bootstrap)]
        bootstrap: Option<BootstrapList>,
    },
    /// Connect to a public key and pipe stdin/stdout over the encrypted connection.
    Connect {
        /// The server's public key (64 hex characters or z-base-32).
        public_key: String,
        /// 32-byte seed of our key pair (default: random).
        #[arg(long, value_parser = parse_seed)]
        seed: Option<[u8; 32]>,
        /// Comma-separated HOST:PORT list of DHT nodes (default: the public HyperDHT nodes).
        #[arg(long, env = "P2PSWARM_BOOTSTRAP", value_parser = parse_bootstrap)]
        bootstrap: Option<BootstrapList>,
    },
    /// Run a local testnet of N nodes until interrupted.
    Testnet {
        /// Number of nodes.
        #[arg(long, default_value_t = 10)]
        nodes: usize,
        /// IPv4 address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: Ipv4Addr,
        /// Port of the first (bootstrap) node (0 = any).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

/// `p2pswarm listen`.
async fn listen_cmd(
    seed: Option<[u8; 32]>,
    bootstrap: Option<BootstrapList>,
) -> Result<(), String> {
    let kp = key_pair(seed);
    let dht = Dht::bind(dht_config(bootstrap))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    tokio::time::timeout(Duration::from_secs(30), dht.ready())
        .await
        .map_err(|_| "bootstrap timed out".to_string())?;
    let mut server = dht
        .listen(kp.clone(), None)
        .await
        .map_err(|e| format!("listen: {e}"))?;
    println!("listening {}", kp.public_key().to_hex());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let conn = server.accept().await.ok_or("server closed")?;
    tracing::info!(remote = %conn.remote_public_key().map(PublicKey::to_hex).unwrap_or_default(), "connection");
    let r = pipe(conn).await;
    dht.destroy();
    r
}

/// `p2pswarm connect`.
async fn connect_cmd(
    public_key: &str,
    seed: Option<[u8; 32]>,
    bootstrap: Option<BootstrapList>,
) -> Result<(), String> {
    let remote = p2pswarm::dht::messages::parse_key(public_key)
        .map_err(|e| format!("bad public key: {e}"))?;
    let remote = p2pswarm::crypto::PublicKey(remote);
    let kp = key_pair(seed);
    let dht = Dht::bind_with_key_pair(dht_config(bootstrap), kp)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    tokio::time::timeout(Duration::from_secs(30), dht.ready())
        .await
        .map_err(|_| "bootstrap timed out".to_string())?;
    let conn = tokio::time::timeout(Duration::from_secs(60), dht.connect(&remote))
        .await
        .map_err(|_| "connect failed: timed out".to_string())?
        .map_err(|e| format!("connect failed: {e}"))?;
    let r = pipe(conn).await;
    dht.destroy();
    r
}

/// A node reachable at `host`: persistent at once, id derived from its bound address.
async fn open_node(
    host: Ipv4Addr,
    port: u16,
    bootstrap: Vec<SocketAddrV4>,
) -> std::io::Result<Dht> {
    let cfg = DhtConfig {
        bootstrap,
        host,
        port,
        ephemeral: Some(false),
        firewalled: false,
        public_addr: Some(SocketAddrV4::new(host, port)),
    };
    Dht::bind(cfg).await
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::DhtNode {
            host,
            port,
            bootstrap,
        } => {
            if host.is_unspecified() {
                return Err("--host must be the IPv4 address peers reach this node at".into());
            }
            let bootstrap = bootstrap.map(|b| b.0).unwrap_or_default();
            let node = open_node(host, port, bootstrap)
                .await
                .map_err(|e| format!("bind {host}:{port}: {e}"))?;
            println!("listening {}", node.rpc().local_addr());
            tokio::select! {
                () = node.ready() => tracing::info!(table = node.rpc().table_size(), "bootstrapped"),
                _ = tokio::signal::ctrl_c() => { node.destroy(); return Ok(()); }
            }
            let _ = tokio::signal::ctrl_c().await;
            node.destroy();
            Ok(())
        }
        Command::Demo { peers } => demo::run(peers).await,
        Command::Join {
            topic,
            server,
            client,
            seed,
            bootstrap,
            json,
        } => join::run(&topic, server, client, seed, dht_config(bootstrap), json).await,
        Command::Keygen { seed } => {
            println!("{}", key_pair(seed).public_key().to_hex());
            Ok(())
        }
        Command::Listen { seed, bootstrap } => listen_cmd(seed, bootstrap).await,
        Command::Connect {
            public_key,
            seed,
            bootstrap,
        } => connect_cmd(&public_key, seed, bootstrap).await,
        Command::Testnet { nodes, host, port } => {
            if nodes == 0 {
                return Err("--nodes must be at least 1".into());
            }
            let first = open_node(host, port, Vec::new())
                .await
                .map_err(|e| format!("bind {host}:{port}: {e}"))?;
            let boot = match first.rpc().local_addr() {
                std::net::SocketAddr::V4(a) => a,
                std::net::SocketAddr::V6(_) => return Err("testnet needs IPv4".into()),
            };
            let mut all = vec![first];
            for _ in 1..nodes {
                all.push(
                    open_node(host, 0, vec![boot])
                        .await
                        .map_err(|e| format!("bind: {e}"))?,
                );
            }
            for n in &all {
                tokio::time::timeout(Duration::from_secs(30), n.ready())
                    .await
                    .map_err(|_| "testnet bootstrap timed out".to_string())?;
            }
            println!("bootstrap {boot}");
            tracing::info!(nodes, "testnet running; interrupt to stop");
            let _ = tokio::signal::ctrl_c().await;
            for n in &all {
                n.destroy();
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("p2pswarm: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p2pswarm: {e}");
            ExitCode::FAILURE
        }
    }
}
