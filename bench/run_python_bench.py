"""Orchestrates bench/run-python.sh: a loopback testnet in this process, then for each run a
256 MiB transfer Rust -> Rust (bench/src/bin/transfer-bench.rs) and Python -> Python
(bench/transfer_bench.py), each a pair of processes. Prints the median throughputs and the
ratio Python / Rust, and the CPU time each side spent on the transfer (all threads of the
process, from its connection event to the end): unlike throughput, that hardly depends on what
else runs on the machine."""

import os
import statistics
import subprocess
import sys
import time

import p2pswarm

RUST_BIN, MIB, RUNS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
HERE = os.path.dirname(os.path.abspath(__file__))
PY = [sys.executable, os.path.join(HERE, "transfer_bench.py")]


def one(cmd, net, nbytes):
    topic, s1, s2 = os.urandom(32).hex(), os.urandom(32).hex(), os.urandom(32).hex()
    common = ["--bootstrap", net.bootstrap[0], "--topic", topic, "--bytes", str(nbytes)]
    recv = subprocess.Popen(cmd + ["recv", "--seed", s1] + common, stdout=subprocess.PIPE, text=True)
    try:
        line = recv.stdout.readline().strip()
        if line != "joined":
            raise RuntimeError(f"receiver: {line!r}")
        send = subprocess.Popen(cmd + ["send", "--seed", s2] + common, stdout=subprocess.PIPE, text=True)
        try:
            out = recv.stdout.readline().split()
            if not out or out[0] != "received" or int(out[1]) != nbytes:
                raise RuntimeError(f"receiver: {' '.join(out)!r}")
            sent = send.communicate(timeout=120)[0].split()
            recv.wait(timeout=60)
            if not sent or sent[0] != "sent":
                raise RuntimeError(f"sender: {' '.join(sent)!r}")
            cpu = lambda words: float(words[words.index("cpu") + 1]) if "cpu" in words else float("nan")  # noqa: E731
            return float(out[5]), cpu(out), cpu(sent)
        finally:
            if send.poll() is None:
                send.kill()
                send.wait()
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()


def main():
    nbytes = MIB * 1024 * 1024
    rust, py = [], []
    cpu = {"rust": [], "python": []}  # (receiver, sender) CPU seconds per run
    with p2pswarm.testnet(3) as net:
        for i in range(RUNS):
            # alternate the order so that neither side always runs second
            order = [("rust", [RUST_BIN], rust), ("python", PY, py)]
            if i % 2:
                order.reverse()
            for name, cmd, out in order:
                mibps, rcpu, scpu = one(cmd, net, nbytes)
                out.append(mibps)
                cpu[name].append((rcpu, scpu))
            print(
                f"run {i + 1}: rust {rust[-1]:.1f} MiB/s  python {py[-1]:.1f} MiB/s   cpu s (recv+send): "
                f"rust {cpu['rust'][-1][0]:.2f}+{cpu['rust'][-1][1]:.2f}  "
                f"python {cpu['python'][-1][0]:.2f}+{cpu['python'][-1][1]:.2f}  load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    r, p = statistics.median(rust), statistics.median(py)
    # the ratio of each run's adjacent pair (same machine load), then their median
    ratio = statistics.median(b / a for a, b in zip(rust, py))
    print(f"\n{MIB} MiB transfer, median of {RUNS}: rust {r:.1f} MiB/s, python {p:.1f} MiB/s")
    print(f"python / rust: median of per-run ratios {ratio:.2f}, ratio of medians {p / r:.2f}")
    print(f"target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'}")
    med = {k: [statistics.median(x[j] for x in v) for j in (0, 1)] for k, v in cpu.items()}
    print(
        f"cpu s per transfer (median; receiver, sender): rust {med['rust'][0]:.3f}, {med['rust'][1]:.3f}; "
        f"python {med['python'][0]:.3f}, {med['python'][1]:.3f}; rust / python total "
        f"{sum(med['rust']) / sum(med['python']):.2f}"
    )


main()
