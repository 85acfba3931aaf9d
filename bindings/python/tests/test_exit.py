"""Interpreter exit with live swarms and busy connections: no hang, no crash."""

import os
import subprocess
import sys
import time

import pytest

SCRIPT = r'''
import asyncio, sys, p2pswarm
from p2pswarm import P2Pswarm

MODE = sys.argv[1]

async def main():
    net = p2pswarm.testnet(3)
    topic = b"\x33" * 32
    a = P2Pswarm(bootstrap=net.bootstrap)
    b = P2Pswarm(bootstrap=net.bootstrap)
    def flood(conn, info):
        async def pump():
            while True:  # ends with the process
                conn.write(b"\x00" * 65536)
                await conn.drain()
        asyncio.ensure_future(pump())
    a.on("connection", flood)
    b.on("connection", lambda c, i: b.on("update", lambda: None))
    await a.join(topic, server=True, client=False).flushed()
    b.join(topic, server=False, client=True)
    await b.flush()
    await asyncio.sleep(0.3)
    print("live", len(a.connections), len(b.connections), flush=True)
    if MODE == "exit-in-loop":
        sys.exit(0)  # with a pending drain and events firing
    if MODE == "os-exit-like":
        raise SystemExit(0)

if MODE == "no-loop":
    # swarms made outside any loop, never destroyed
    net = p2pswarm.testnet(2)
    s = P2Pswarm(bootstrap=net.bootstrap)
    s.join(b"\x01" * 32)
    print("live", s.public_key.hex()[:8], flush=True)
elif MODE == "loop-left-running":
    loop = asyncio.new_event_loop()
    loop.run_until_complete(main())
    print("leaving with loop not closed", flush=True)
else:
    asyncio.run(main())
print("end of script", flush=True)
'''


@pytest.mark.parametrize("mode", ["after-run", "exit-in-loop", "no-loop", "loop-left-running"])
def test_exit_with_live_swarms(mode, tmp_path):
    script = tmp_path / "live.py"
    script.write_text(SCRIPT)
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, str(script), mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, f"exit code {p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}"
    assert "live" in p.stdout
    assert elapsed < 20, f"exit took {elapsed:.1f}s"
    assert "Fatal Python error" not in p.stderr
    assert "panicked" not in p.stderr


def test_explicit_shutdown_then_calls_raise(tmp_path):
    script = tmp_path / "shut.py"
    script.write_text(
        "import asyncio, p2pswarm\n"
        "net = p2pswarm.testnet(2)\n"
        "s = p2pswarm.P2Pswarm(bootstrap=net.bootstrap)\n"
        "s.join(b'\\x02' * 32)\n"
        "p2pswarm.shutdown()\n"
        "p2pswarm.shutdown()\n"
        "try:\n"
        "    p2pswarm.P2Pswarm(bootstrap=net.bootstrap)\n"
        "except p2pswarm.ClosedError:\n"
        "    print('closed ok')\n"
        "async def f():\n"
        "    try:\n"
        "        await s.flush()\n"
        "    except p2pswarm.ClosedError:\n"
        "        print('flush closed ok')\n"
        "asyncio.run(f())\n"
    )
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "closed ok" in p.stdout and "flush closed ok" in p.stdout
