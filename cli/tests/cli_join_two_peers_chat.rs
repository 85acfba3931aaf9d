//! `p2pswarm join <TOPIC>` twice on a loopback testnet: each peer's stdin lines reach the other's
//! stdout, and `--json` reports the connection as a JSON line. Processes are stopped by PID.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_p2pswarm"))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a pipe, delivered through a channel (so reads can time out).
fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_for(rx: &mpsc::Receiver<String>, pred: impl Fn(&str) -> bool) -> String {
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("expected output in time");
        if pred(&l) {
            return l;
        }
    }
}

#[test]
fn two_peers_exchange_lines() {
    let mut testnet = Killed(
        bin()
            .args(["testnet", "--nodes", "6"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("testnet"),
    );
    let mut line = String::new();
    BufReader::new(testnet.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let boot = line
        .trim()
        .strip_prefix("bootstrap ")
        .expect("bootstrap")
        .to_string();
    let spawn = |json: bool| {
        let mut c = bin();
        c.args(["join", "a chat topic", "--bootstrap", &boot]);
        if json {
            c.arg("--json");
        }
        Killed(
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("join"),
        )
    };
    let mut a = spawn(true);
    let a_events = lines(a.0.stderr.take().expect("stderr"));
    wait_for(&a_events, |l| l.contains("\"event\":\"joined\""));
    let mut b = spawn(false);
    let b_out = lines(b.0.stdout.take().expect("stdout"));
    let b_events = lines(b.0.stderr.take().expect("stderr"));
    let a_out = lines(a.0.stdout.take().expect("stdout"));
    let conn = wait_for(&a_events, |l| l.contains("\"event\":\"connection\""));
    assert!(conn.contains("\"publicKey\":\""), "{conn}");
    // Lines typed before a peer is connected go nowhere: wait for both sides.
    wait_for(&b_events, |l| l.contains("connected to"));
    let mut a_in = a.0.stdin.take().expect("stdin");
    let mut b_in = b.0.stdin.take().expect("stdin");
    a_in.write_all(b"hello from a\n").expect("write a");
    b_in.write_all(b"hello from b\n").expect("write b");
    assert_eq!(wait_for(&b_out, |_| true), "hello from a");
    assert_eq!(wait_for(&a_out, |_| true), "hello from b");
}
