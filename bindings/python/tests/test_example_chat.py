"""examples/python/chat.py end to end: two chat processes on a local testnet."""

import asyncio
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CHAT = os.path.join(ROOT, "examples", "python", "chat.py")


async def _line(proc, prefix, timeout=20.0):
    async def go():
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError(f"chat exited while waiting for {prefix!r}")
            text = line.decode().rstrip("\n")
            if text.startswith(prefix):
                return text

    return await asyncio.wait_for(go(), timeout)


async def test_two_chats_relay_lines():
    if not os.path.exists(CHAT):
        pytest.skip("examples/python/chat.py not found (run from a source checkout)")
    spawn = lambda *a: asyncio.create_subprocess_exec(  # noqa: E731
        sys.executable, CHAT, *a, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    one = await spawn("--testnet", "--topic", "chat-test")
    two = None
    try:
        bootstrap = (await _line(one, "bootstrap")).split()[1]
        await _line(one, "joined")
        two = await spawn("--bootstrap", bootstrap, "--topic", "chat-test")
        await _line(two, "joined")
        await _line(one, "* ")
        await _line(two, "* ")
        one.stdin.write(b"hello from one\n")
        await one.stdin.drain()
        assert (await _line(two, "<")).endswith("hello from one")
        two.stdin.write(b"hi back\n")
        await two.stdin.drain()
        assert (await _line(one, "<")).endswith("hi back")
        for p in (two, one):
            p.stdin.close()
            assert await asyncio.wait_for(p.wait(), 20) == 0
    finally:
        for p in (one, two):
            if p is not None and p.returncode is None:
                p.kill()
                await p.wait()
