//! Running a test body inside a fresh network namespace (only `lo`), optionally with random
//! UDP loss injected by nftables, via `tests/interop/netns.sh`. The test binary re-executes
//! itself for one test inside the namespace.

use std::path::PathBuf;
use std::process::Command;

const INNER: &str = "P2PSWARM_IN_NETNS";

/// Returns `true` in the outer process, after the test ran (and passed) inside a fresh
/// namespace; returns `false` inside, where the caller runs the test body.
pub fn run_inside(test_name: &str, loss_percent: u8) -> bool {
    if std::env::var_os(INNER).is_some() {
        return false;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/netns.sh");
    let exe = std::env::current_exe().expect("test binary path");
    let status = Command::new("bash")
        .arg(&script)
        .args(["--loss", &loss_percent.to_string(), "--"])
        .arg(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
        .env(INNER, "1")
        .status()
        .expect("run netns.sh");
    match status.code() {
        Some(0) => true,
        Some(3) => panic!(
            "{test_name}: a tool is missing (see the message above: install iproute2/nftables)"
        ),
        Some(4) => {
            eprintln!(
                "SKIPPED {test_name}: network namespaces are not permitted here (needs root)"
            );
            true
        }
        other => panic!("{test_name} failed inside its network namespace: exit {other:?}"),
    }
}
