//! The NAT lab (`tests/nat/lab.sh`) from Rust tests: a Rust peer with the interface of
//! `tests/nat/js/nat-peer.js` (run by `tests/nat/rust-peer.sh` through the test binary's own
//! `nat_peer` test), and a runner for one lab cell.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use p2pswarm::crypto::{KeyPair, PublicKey};
use p2pswarm::dht::{ConnectError, Connection, Dht};
use p2pswarm::rpc::driver::DhtConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Arguments of the peer role, set by `rust-peer.sh`.
pub const PEER_ENV: &str = "P2PSWARM_NAT_PEER_ARGS";
/// The two-thread runtime each lab role (peer, relay) runs on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Arguments of the relay role (set by `tests/nat/relay-cell.sh`).
pub const RELAY_ENV: &str = "P2PSWARM_NAT_RELAY_ARGS";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The hyperdht error name of a connect error (as the JS fixture prints `e.code`).
pub fn code(e: &ConnectError) -> &'static str {
    match e {
        ConnectError::PeerNotFound => "PEER_NOT_FOUND",
        ConnectError::ConnectionFailed => "PEER_CONNECTION_FAILED",
        ConnectError::Rejected(_) => "SERVER_ERROR",
        ConnectError::Handshake(_) => "HANDSHAKE_INVALID",
        ConnectError::ServerIncompatible => "SERVER_INCOMPATIBLE",
        ConnectError::HolepunchAborted => "HOLEPUNCH_ABORTED",
        ConnectError::HolepunchProbeTimeout => "HOLEPUNCH_PROBE_TIMEOUT",
        ConnectError::HolepunchDoubleRandomizedNats => "HOLEPUNCH_DOUBLE_RANDOMIZED_NATS",
        ConnectError::CannotHolepunch => "CANNOT_HOLEPUNCH",
        ConnectError::RemoteNotHolepunchable => "REMOTE_NOT_HOLEPUNCHABLE",
        ConnectError::RemoteNotHolepunching => "REMOTE_NOT_HOLEPUNCHING",
        ConnectError::RemoteAborted(_) => "REMOTE_ABORTED",
        ConnectError::HolepunchInvalid => "HOLEPUNCH_INVALID",
        ConnectError::BadHolepunchReply => "BAD_HOLEPUNCH_REPLY",
        ConnectError::RequestTimeout => "REQUEST_TIMEOUT",
        ConnectError::RelayAborted => "RELAY_ABORTED",
        _ => "ERR",
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + (i >> 11)) & 0xff) as u8).collect()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn path_of(dht: &Dht, conn: &Connection) -> &'static str {
    let local = conn.get_ref().local_addr().port();
    let own = [
        dht.rpc().server_socket().local_addr().port(),
        dht.rpc().client_socket().local_addr().port(),
    ];
    if own.contains(&local) {
        "direct"
    } else {
        "punched"
    }
}

async fn exchange(conn: Connection, n: usize) -> Result<usize, String> {
    let want = pattern(n);
    let (mut r, mut w) = tokio::io::split(conn);
    let data = want.clone();
    let writer = async move {
        w.write_all(&data).await.map_err(|e| e.to_string())?;
        w.shutdown().await.map_err(|e| e.to_string())
    };
    let reader = async move {
        let mut got = Vec::with_capacity(n);
        r.read_to_end(&mut got).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(got)
    };
    let (wr, got) = tokio::join!(writer, reader);
    wr?;
    let got = got?;
    if got.len() != n {
        return Err(format!("received {} of {n}", got.len()));
    }
    if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
        return Err(format!("mismatch at {i}"));
    }
    Ok(n)
}

/// Runs the peer role described by `args` (the arguments of `js/nat-peer.js`).
pub fn run_peer(args: &str) {
    let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    let rt = runtime();
    let timeout = Duration::from_millis(
        arg(&args, "--timeout-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60_000),
    );
    rt.block_on(async move {
        if tokio::time::timeout(timeout, peer(&args)).await.is_err() {
            println!("error TIMEOUT overall timeout");
        }
    });
    rt.shutdown_timeout(Duration::from_millis(100));
}

async fn peer(args: &[String]) {
    let boot: SocketAddrV4 = arg(args, "--bootstrap")
        .and_then(|b| b.parse().ok())
        .expect("--bootstrap HOST:PORT");
    let seed: [u8; 32] = hex::decode(arg(args, "--seed").unwrap_or_default())
        .ok()
        .and_then(|v| v.try_into().ok())
        .unwrap_or([0x11; 32]);
    let n: usize = arg(args, "--bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(65536);
    let dht = Dht::bind(DhtConfig {
        bootstrap: vec![boot],
        host: Ipv4Addr::UNSPECIFIED,
        ..DhtConfig::default()
    })
    .await
    .expect("bind");
    dht.ready().await;
    let kp = KeyPair::from_seed(&seed);
    // `--relay PKHEX`: a blind relay to fall back on (hyperdht's relayThrough)
    let relay: Option<PublicKey> = arg(args, "--relay")
        .and_then(|h| hex::decode(h).ok())
        .and_then(|v| v.try_into().ok())
        .map(PublicKey);
    if args.iter().any(|a| a == "server") {
        let mut server = dht.listen(kp.clone(), None).await.expect("listen");
        server.set_relay_through(relay);
        println!(
            "listening {} firewalled={}",
            kp.public_key().to_hex(),
            dht.rpc().is_firewalled()
        );
        let count: usize = arg(args, "--connections")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        for _ in 0..count {
            let Some(conn) = server.accept().await else {
                println!("error no connection");
                return;
            };
            let remote = conn.remote_public_key().map(PublicKey::to_hex);
            println!(
                "connection {} path={}",
                remote.unwrap_or_default(),
                path_of(&dht, &conn)
            );
            match exchange(conn, n).await {
                Ok(got) => println!("done received={got}"),
                Err(e) => println!("error {e}"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    } else {
        println!("bootstrapped firewalled={}", dht.rpc().is_firewalled());
        let remote: [u8; 32] = hex::decode(arg(args, "--connect").unwrap_or_default())
            .ok()
            .and_then(|v| v.try_into().ok())
            .expect("--connect PK");
        let remote = PublicKey(remote);
        let t0 = Instant::now();
        let opts = p2pswarm::dht::ConnectOptions {
            relay_through: relay,
            ..p2pswarm::dht::ConnectOptions::default()
        };
        match dht.connect_with_options(Some(&kp), &remote, &opts).await {
            Ok(conn) => {
                let r = conn
                    .get_ref()
                    .remote()
                    .map_or_else(|| "?".to_owned(), |r| r.addr.to_string());
                println!(
                    "open ms={} path={} remote={r}",
                    t0.elapsed().as_millis(),
                    path_of(&dht, &conn)
                );
                match exchange(conn, n).await {
                    Ok(got) => println!("done received={got}"),
                    Err(e) => println!("error ERR {e} ms={}", t0.elapsed().as_millis()),
                }
            }
            Err(e) => println!("error {} {e} ms={}", code(&e), t0.elapsed().as_millis()),
        }
    }
    dht.destroy();
}

/// Which implementation runs a side of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// `tests/nat/js/nat-peer.js`.
    Js,
    /// This test binary (`tests/nat/rust-peer.sh`).
    Rust,
}

/// One cell's outcome: (`direct` | `punched` | `failed:CODE`, ms to open, the raw line).
#[derive(Debug, Clone)]
pub struct CellResult {
    pub outcome: String,
    pub ms: u64,
    pub line: String,
}

/// Outcome of running a lab: `None` when the lab cannot run here (SKIPPED).
pub fn run_cell(
    client: Impl,
    server: Impl,
    client_nat: &str,
    server_nat: &str,
    router: &str,
    bytes: usize,
) -> Option<CellResult> {
    run_cell_in(client, server, client_nat, server_nat, router, 0, bytes)
}

/// [`run_cell`] in a lab with `transit` forwarding routers between each site and the public
/// segment (`lab.sh --transit`).
pub fn run_cell_in(
    client: Impl,
    server: Impl,
    client_nat: &str,
    server_nat: &str,
    router: &str,
    transit: u8,
    bytes: usize,
) -> Option<CellResult> {
    let root = repo();
    let exe = std::env::current_exe().expect("test binary");
    let cmd = |i: Impl| match i {
        Impl::Js => format!("node {}", root.join("tests/nat/js/nat-peer.js").display()),
        Impl::Rust => root.join("tests/nat/rust-peer.sh").display().to_string(),
    };
    let out = Command::new("bash")
        .arg(root.join("tests/nat/lab.sh"))
        .args([
            "--client",
            client_nat,
            "--server",
            server_nat,
            "--router",
            router,
            "--transit",
            &transit.to_string(),
            "--",
        ])
        .arg(root.join("tests/nat/cell.sh"))
        .env("NAT_CLIENT_CMD", cmd(client))
        .env("NAT_SERVER_CMD", cmd(server))
        .env("NAT_CELL_BYTES", bytes.to_string())
        .env("P2PSWARM_NAT_EXE", &exe)
        .env_remove(PEER_ENV)
        .output()
        .expect("run lab.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(77) {
        eprintln!("SKIPPED: {}", String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with("RESULT "))
        .map_or_else(
            || {
                format!(
                    "RESULT failed:LAB 0 exit {:?} {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                )
            },
            str::to_owned,
        );
    let mut parts = line.split_whitespace().skip(1);
    let outcome = parts.next().unwrap_or("failed:LAB").to_owned();
    let ms = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    Some(CellResult { outcome, ms, line })
}

/// Runs `tests/nat/<script>` in a lab and returns its stdout (`None` when SKIPPED).
pub fn run_lab_script(
    client: Impl,
    server: Impl,
    client_nat: &str,
    server_nat: &str,
    router: &str,
    script: &str,
) -> Option<String> {
    let root = repo();
    let exe = std::env::current_exe().expect("test binary");
    let cmd = |i: Impl| match i {
        Impl::Js => format!("node {}", root.join("tests/nat/js/nat-peer.js").display()),
        Impl::Rust => root.join("tests/nat/rust-peer.sh").display().to_string(),
    };
    let out = Command::new("bash")
        .arg(root.join("tests/nat/lab.sh"))
        .args([
            "--client", client_nat, "--server", server_nat, "--router", router, "--",
        ])
        .arg(root.join("tests/nat").join(script))
        .env("NAT_CLIENT_CMD", cmd(client))
        .env("NAT_SERVER_CMD", cmd(server))
        .env("P2PSWARM_NAT_EXE", &exe)
        .env_remove(PEER_ENV)
        .output()
        .expect("run lab.sh");
    if out.status.code() == Some(77) {
        eprintln!("SKIPPED: {}", String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Checks the output of `tests/nat/relay-cell.sh` (a pair behind random NATs with a blind relay
/// on the public segment): the pair connected, the client's stream runs to the relay's address,
/// the relay matched the pairing, and 64 KiB arrived on each side. `what` names the pair in
/// failure messages.
pub fn assert_relayed_cell(out: &str, what: &str) {
    let relay_line = out
        .lines()
        .find_map(|l| l.strip_prefix("RELAY relay "))
        .unwrap_or_else(|| panic!("no relay line: {out}"));
    let relay_addr = relay_line.split_whitespace().nth(1).expect("relay addr");
    let result = out
        .lines()
        .rfind(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no result: {out}"));
    assert!(
        !result.starts_with("RESULT failed"),
        "{what} did not connect: {result}"
    );
    assert!(
        result.contains(&format!("remote={relay_addr}")),
        "the client's stream runs to the relay {relay_addr}: {result}"
    );
    assert!(
        result.contains("| done received=65536 |"),
        "client got all: {result}"
    );
    assert!(
        result.contains("server: ") && result.contains("done received=65536"),
        "server got all: {result}"
    );
    assert!(out.contains("paired 1"), "the relay matched: {out}");
}

/// The blind-relay role of `tests/nat/relay-cell.sh` (a test binary's `nat_relay` test calls
/// this): a Rust `BlindRelayServer` on a persistent, unfirewalled DHT node in the public
/// namespace. Prints `relay PKHEX HOST:PORT`, then `paired N` whenever its matched count grows,
/// until `--timeout-ms`. Does nothing unless [`RELAY_ENV`] is set.
pub fn run_relay() {
    let Ok(args) = std::env::var(RELAY_ENV) else {
        return;
    };
    let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    let boot: SocketAddrV4 = arg(&args, "--bootstrap")
        .and_then(|b| b.parse().ok())
        .expect("--bootstrap");
    let host: Ipv4Addr = arg(&args, "--host")
        .and_then(|h| h.parse().ok())
        .expect("--host");
    let timeout = Duration::from_millis(
        arg(&args, "--timeout-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(120_000),
    );
    let rt = runtime();
    rt.block_on(async move {
        let dht = Dht::bind(DhtConfig {
            bootstrap: vec![boot],
            host,
            ephemeral: Some(false),
            firewalled: false,
            ..DhtConfig::default()
        })
        .await
        .expect("bind");
        let _ = tokio::time::timeout(Duration::from_secs(20), dht.ready()).await;
        let relay = p2pswarm::dht::BlindRelayServer::listen(&dht, KeyPair::from_seed(&[0xee; 32]))
            .await
            .expect("relay");
        println!(
            "relay {} {}",
            relay.public_key().to_hex(),
            dht.rpc().local_addr()
        );
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = 0;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let m = relay.stats().matched;
            if m != seen {
                seen = m;
                println!("paired {m}");
            }
        }
    });
}
