#!/usr/bin/env python3
"""A terminal chat over p2pswarm: joins a topic, relays stdin to every peer and prints what
peers send.

    # terminal 1: start a local DHT testnet in-process and chat on it
    python examples/python/chat.py --testnet --topic hello
    #   -> prints: bootstrap 127.0.0.1:PORT
    # terminal 2: join the same topic through that bootstrap node
    python examples/python/chat.py --bootstrap 127.0.0.1:PORT --topic hello

The topic is the BLAKE2b-256 hash of the given name (or 64 hex characters). This example never
uses the public bootstrap nodes: pass --bootstrap or --testnet.
"""

import argparse
import asyncio
import hashlib
import sys

import p2pswarm
from p2pswarm import P2Pswarm


def topic_of(name: str) -> bytes:
    try:
        b = bytes.fromhex(name)
        if len(b) == 32:
            return b
    except ValueError:
        pass
    return hashlib.blake2b(name.encode(), digest_size=32).digest()


async def stdin_lines():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        yield line


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topic", default="p2pswarm python chat", help="topic name (or 64 hex chars)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--bootstrap", action="append", help="DHT bootstrap node HOST:PORT (repeatable)")
    g.add_argument("--testnet", action="store_true", help="start a local testnet and print its address")
    ap.add_argument("--seed", help="32-byte hex seed of our identity")
    args = ap.parse_args()

    net = None
    bootstrap = args.bootstrap
    if args.testnet:
        net = p2pswarm.testnet(3)
        bootstrap = net.bootstrap
        print("bootstrap", bootstrap[0], flush=True)
    seed = bytes.fromhex(args.seed) if args.seed else None
    topic = topic_of(args.topic)

    async with P2Pswarm(seed=seed, bootstrap=bootstrap) as swarm:
        print("me", swarm.public_key.hex(), flush=True)

        async def serve(conn, info):
            name = conn.remote_public_key.hex()[:8]
            print(f"* {name} joined", flush=True)
            try:
                async for chunk in conn:
                    for line in chunk.decode(errors="replace").splitlines():
                        print(f"<{name}> {line}", flush=True)
            except p2pswarm.StreamError:
                pass
            print(f"* {name} left", flush=True)

        swarm.on("connection", serve)  # coroutine handlers run as tasks on the loop
        await swarm.join(topic, server=True, client=True).flushed()
        print("joined", topic.hex(), flush=True)

        async for line in stdin_lines():
            for conn in list(swarm.connections):
                if not conn.write(line):
                    await conn.drain()
        for conn in list(swarm.connections):
            conn.end()
    if net is not None:
        net.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        pass
