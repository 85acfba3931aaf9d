"""Fixtures: a loopback testnet per test (never the public bootstrap nodes) and helpers."""

import asyncio
import os
import sys

import pytest

import p2pswarm
from p2pswarm import P2Pswarm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


@pytest.fixture
def net():
    with p2pswarm.testnet(3) as n:
        yield n


@pytest.fixture
async def errors_reported():
    """Collects what the running loop's exception handler receives."""
    seen = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    yield seen
    loop.set_exception_handler(None)


async def wait_for(pred, timeout=10.0, what="condition"):
    """Polls `pred` until true (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def pair(net, topic=b"\x07" * 32, **kw):
    """Two swarms on `net`, connected on `topic`: returns (a, b, conn_a, conn_b)."""
    a = P2Pswarm(bootstrap=net.bootstrap, **kw)
    b = P2Pswarm(bootstrap=net.bootstrap, **kw)
    await a.ready()
    await b.ready()
    await a.join(topic, server=True, client=False).flushed()
    b.join(topic, server=False, client=True)
    ca = asyncio.ensure_future(a.connections().__anext__())
    cb = asyncio.ensure_future(b.connections().__anext__())
    await b.flush()
    (conn_a, _), (conn_b, _) = await asyncio.wait_for(asyncio.gather(ca, cb), 20)
    return a, b, conn_a, conn_b
