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
use p2pswarm::rpc::driver::{DhtConfig, DhtNode};

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

#[derive(Subcommand, Debug)]
enum Command {
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

/// A node reachable at `host`: persistent at once, id derived from its bound address.
async fn open_node(
    host: Ipv4Addr,
    port: u16,
    bootstrap: Vec<SocketAddrV4>,
) -> std::io::Result<DhtNode> {
    let cfg = DhtConfig {
        bootstrap,
        host,
        port,
        ephemeral: Some(false),
        firewalled: false,
        public_addr: Some(SocketAddrV4::new(host, port)),
    };
    DhtNode::bind(cfg).await
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
            println!("listening {}", node.local_addr());
            tokio::select! {
                () = node.ready() => tracing::info!(table = node.table_size(), "bootstrapped"),
                _ = tokio::signal::ctrl_c() => { node.destroy(); return Ok(()); }
            }
            let _ = tokio::signal::ctrl_c().await;
            node.destroy();
            Ok(())
        }
        Command::Testnet { nodes, host, port } => {
            if nodes == 0 {
                return Err("--nodes must be at least 1".into());
            }
            let first = open_node(host, port, Vec::new())
                .await
                .map_err(|e| format!("bind {host}:{port}: {e}"))?;
            let boot = match first.local_addr() {
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
