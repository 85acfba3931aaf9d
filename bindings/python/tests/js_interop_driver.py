"""Run inside a private network namespace (tests/interop/netns.sh): a Python swarm talks to a
JS hyperswarm 4.17 peer (tests/interop/js/hyperswarm-peer.js) over a Python loopback testnet,
once with JS as server and once with JS as client.  Exit 0 on success."""

import asyncio
import os
import sys

import p2pswarm
from p2pswarm import P2Pswarm

JS_DIR = sys.argv[1]


async def readline_until(proc, prefix, timeout=30.0):
    async def go():
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError(f"JS peer exited while waiting for {prefix!r}")
            text = line.decode().rstrip("\n")
            print("js:", text, flush=True)
            if text.startswith("error"):
                raise AssertionError(text)
            if text.startswith(prefix):
                return text

    return await asyncio.wait_for(go(), timeout)


async def round_trip(net, js_role, py_server, py_client):
    topic = os.urandom(32)
    js_seed = os.urandom(32)
    js_pk = p2pswarm.key_pair(js_seed).public_key
    proc = await asyncio.create_subprocess_exec(
        "node", os.path.join(JS_DIR, "hyperswarm-peer.js"),
        "--bootstrap", net.bootstrap[0], "--topic", topic.hex(), "--seed", js_seed.hex(), js_role,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with P2Pswarm(bootstrap=net.bootstrap) as swarm:
            if js_role == "--server":
                await readline_until(proc, "joined")
            swarm.join(topic, server=py_server, client=py_client)
            await swarm.flush()
            it = swarm.connections()
            conn, info = await asyncio.wait_for(it.__anext__(), 30)
            assert conn.remote_public_key == js_pk, "wrong remote key"
            assert info.public_key == js_pk
            got = await asyncio.wait_for(conn.read(), 30)
            assert got == b"hello from js", got
            conn.write(b"hello from python")
            await conn.drain()
            await readline_until(proc, f"data {swarm.public_key.hex()} hello from python")
            proc.stdin.write(b"count\n")
            await proc.stdin.drain()
            line = await readline_until(proc, "connections")
            assert line == "connections 1", line
            proc.stdin.write(b"exit\n")
            await proc.stdin.drain()
            await readline_until(proc, "bye")
        print(f"ok: python <-> js ({js_role[2:]} side js)", flush=True)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def main():
    with p2pswarm.testnet(3) as net:
        await round_trip(net, "--server", py_server=False, py_client=True)
        await round_trip(net, "--client", py_server=True, py_client=False)


asyncio.run(main())
