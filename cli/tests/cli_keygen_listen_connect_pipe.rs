//! `p2pswarm keygen`, `listen` and `connect` on a loopback testnet: the listener prints
//! `listening <KEY>` first, then both pipes carry binary data intact in both directions and
//! both processes exit 0 once both directions ended; connecting to a key nobody listens on exits
//! non-zero with the error kind on stderr. Processes are stopped by PID at the end.

use std::io::{BufRead, BufReader, Read, Write};
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

fn data(n: usize, salt: u64) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ salt;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn keygen_is_deterministic_and_hex() {
    let seed = "11".repeat(32);
    let out = bin()
        .args(["keygen", "--seed", &seed])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737"
    );
    let out = bin().arg("keygen").output().expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 64);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("seed "));
    let bad = bin()
        .args(["keygen", "--seed", "abc"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
}

#[test]
fn listen_and_connect_pipe_binary_data_both_ways() {
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
        .expect("bootstrap line")
        .to_string();

    let seed = "42".repeat(32);
    let (to_client, to_server) = (data(3 << 20, 1), data(2 << 20, 2));
    let mut listener = Killed(
        bin()
            .args(["listen", "--seed", &seed, "--bootstrap", &boot])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("listen"),
    );
    let mut lstdin = listener.0.stdin.take().expect("stdin");
    let mut lstdout = BufReader::new(listener.0.stdout.take().expect("stdout"));
    let mut first = String::new();
    lstdout.read_line(&mut first).expect("listening line");
    let key = first
        .trim()
        .strip_prefix("listening ")
        .expect("listening line")
        .to_string();
    assert_eq!(key.len(), 64);
    let payload = to_client.clone();
    let writer = std::thread::spawn(move || {
        lstdin.write_all(&payload).expect("feed listener");
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let _ = lstdout.read_to_end(&mut got);
        let _ = tx.send(got);
    });

    let mut client = Killed(
        bin()
            .args(["connect", &key, "--bootstrap", &boot])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("connect"),
    );
    let mut cstdin = client.0.stdin.take().expect("stdin");
    let payload = to_server.clone();
    std::thread::spawn(move || {
        cstdin.write_all(&payload).expect("feed client");
    });
    let mut cstdout = client.0.stdout.take().expect("stdout");
    let (ctx, crx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let _ = cstdout.read_to_end(&mut got);
        let _ = ctx.send(got);
    });
    let got_client = crx
        .recv_timeout(Duration::from_secs(120))
        .expect("client output");
    let got_server = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("listener output");
    writer.join().expect("writer");
    assert!(
        got_client == to_client,
        "server→client data corrupted ({} bytes)",
        got_client.len()
    );
    assert!(
        got_server == to_server,
        "client→server data corrupted ({} bytes)",
        got_server.len()
    );
    assert!(client.0.wait().expect("wait").success());
    assert!(listener.0.wait().expect("wait").success());
}

#[test]
fn connect_to_nobody_fails_with_the_error_kind() {
    let mut testnet = Killed(
        bin()
            .args(["testnet", "--nodes", "4"])
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
        .expect("bootstrap line")
        .to_string();
    let nobody = "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce";
    let out = bin()
        .args(["connect", nobody, "--bootstrap", &boot])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connect failed: peer not found"), "{err}");
}
