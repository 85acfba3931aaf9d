//! The `p2pswarm testnet` and `p2pswarm dht-node` subcommands on loopback: the testnet prints its
//! bootstrap address, a dht-node joins it (through `--bootstrap` and through
//! `P2PSWARM_BOOTSTRAP`) and prints `listening HOST:PORT`; bad arguments fail with a clear message.
//! Every process is stopped by PID at the end.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_p2pswarm"))
}

/// First stdout line of a child, within a deadline.
fn first_line(child: &mut Child) -> String {
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("no output within 30 s")
        .trim()
        .to_string()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn testnet_then_dht_node_joins() {
    let mut testnet = Killed(
        bin()
            .args(["testnet", "--nodes", "5"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn testnet"),
    );
    let line = first_line(&mut testnet.0);
    let boot = line
        .strip_prefix("bootstrap ")
        .unwrap_or_else(|| panic!("unexpected testnet output {line:?}"));
    assert!(boot.parse::<std::net::SocketAddrV4>().is_ok(), "{boot}");

    let mut node = Killed(
        bin()
            .args(["dht-node", "--bootstrap", boot])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node"),
    );
    let line = first_line(&mut node.0);
    assert!(line.starts_with("listening 127.0.0.1:"), "{line}");

    let mut via_env = Killed(
        bin()
            .arg("dht-node")
            .env("P2PSWARM_BOOTSTRAP", boot)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node"),
    );
    let line = first_line(&mut via_env.0);
    assert!(line.starts_with("listening "), "{line}");
}

#[test]
fn bad_bootstrap_is_a_clear_error() {
    let out = bin()
        .args(["dht-node", "--bootstrap", "nonsense"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad bootstrap address"), "{err}");
}
