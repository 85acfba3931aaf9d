"""Python side of the binding throughput benchmark (bench/run-python.sh); the Rust side is
bench/src/bin/transfer-bench.rs with the same modes and output:

    python transfer_bench.py recv|send --bootstrap B --topic HEX --seed HEX --bytes N
"""

import argparse
import asyncio
import glob
import sys
import time

from p2pswarm import P2Pswarm


def cpu_secs() -> float:
    """CPU time of all threads of this process (the runtime thread too); Linux only, else 0."""
    ns = 0
    for f in glob.glob("/proc/self/task/*/schedstat"):
        try:
            with open(f) as fh:
                ns += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just exited
    return ns / 1e9


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["recv", "send"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--bytes", type=int, required=True)
    a = ap.parse_args()
    topic = bytes.fromhex(a.topic)
    async with P2Pswarm(seed=bytes.fromhex(a.seed), bootstrap=[a.bootstrap]) as swarm:
        conns = swarm.connections()
        if a.mode == "recv":
            await swarm.join(topic, server=True, client=False).flushed()
            print("joined", flush=True)
            conn, _ = await conns.__anext__()
            t0 = time.perf_counter()
            cpu0 = cpu_secs()
            got = 0
            while got < a.bytes:
                b = await conn.read()
                if not b:
                    break
                got += len(b)
            secs = time.perf_counter() - t0
            cpu = cpu_secs() - cpu0
            print(f"received {got} secs {secs:.3f} mib_per_s {got / secs / 1048576:.1f} cpu {cpu:.3f}", flush=True)
            conn.close()
        else:
            swarm.join(topic, server=False, client=True)
            conn, _ = await conns.__anext__()
            cpu0 = cpu_secs()
            block = b"\x5a" * (1024 * 1024)
            left = a.bytes
            while left > 0:
                n = min(left, len(block))
                if not conn.write(block if n == len(block) else block[:n]):
                    await conn.drain()
                left -= n
            await conn.drain()
            conn.end()
            await conn.wait_closed()
            print(f"sent {a.bytes} cpu {cpu_secs() - cpu0:.3f}", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 300))
    except Exception as e:  # noqa: BLE001
        print(f"error {e!r}", flush=True)
        sys.exit(1)
