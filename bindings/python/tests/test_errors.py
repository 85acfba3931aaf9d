"""Bad input raises TypeError / ValueError; failing callbacks are reported, never fatal."""

import asyncio
import warnings

import pytest

import p2pswarm
from p2pswarm import P2Pswarm
from conftest import pair, wait_for

TOPIC = b"\x11" * 32


def test_exception_hierarchy():
    for name in p2pswarm.errors.__all__:
        cls = getattr(p2pswarm, name)
        assert issubclass(cls, p2pswarm.P2PSwarmError)
    assert issubclass(p2pswarm.PeerNotFoundError, p2pswarm.ConnectError)
    assert issubclass(p2pswarm.NotFoundError, p2pswarm.DHTError)


def test_constructor_bad_input():
    with pytest.raises(ValueError, match="seed must be 32 bytes, got 5"):
        P2Pswarm(seed=b"short", bootstrap=["127.0.0.1:1"])
    with pytest.raises(TypeError, match="seed must be bytes, not str"):
        P2Pswarm(seed="x" * 32, bootstrap=["127.0.0.1:1"])
    with pytest.raises(TypeError, match="bootstrap"):
        P2Pswarm(bootstrap="127.0.0.1:1")
    with pytest.raises(TypeError, match="bootstrap"):
        P2Pswarm(bootstrap=[("127.0.0.1", 1)])
    with pytest.raises(ValueError, match="A.B.C.D:PORT"):
        P2Pswarm(bootstrap=["localhost"])
    with pytest.raises(TypeError, match="max_peers"):
        P2Pswarm(max_peers="64", bootstrap=["127.0.0.1:1"])
    with pytest.raises(TypeError, match="firewall"):
        P2Pswarm(firewall=42, bootstrap=["127.0.0.1:1"])
    with pytest.raises(TypeError, match="key_pair"):
        P2Pswarm(key_pair=object(), bootstrap=["127.0.0.1:1"])
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        p2pswarm.key_pair(b"")
    with pytest.raises(TypeError):
        p2pswarm.testnet("3")
    with pytest.raises(ValueError):
        p2pswarm.testnet(0)


async def test_method_bad_input(net):
    async with P2Pswarm(bootstrap=net.bootstrap) as s:
        with pytest.raises(ValueError, match="topic must be 32 bytes, got 31"):
            s.join(b"\x00" * 31)
        with pytest.raises(TypeError, match="topic must be bytes, not str"):
            s.join("t" * 32)
        with pytest.raises(TypeError, match="server must be a bool"):
            s.join(TOPIC, server=1)
        with pytest.raises(ValueError):
            await s.leave(b"\x00" * 33)
        with pytest.raises(TypeError):
            await s.leave(None)
        with pytest.raises(ValueError, match="public_key must be 32 bytes"):
            s.join_peer(b"\x00")
        with pytest.raises(TypeError):
            s.leave_peer(12)
        with pytest.raises(ValueError):
            s.status(b"")
        with pytest.raises(ValueError):
            s.peer(b"\x00" * 64)
        with pytest.raises(TypeError):
            s.on(1, print)
        with pytest.raises(TypeError):
            s.on("connection", "not callable")


async def test_bootstrap_timeout_raises():
    # a bootstrap address where nothing answers (loopback, closed port)
    s = P2Pswarm(bootstrap=["127.0.0.1:9"], ready_timeout=0.3)
    with pytest.raises(p2pswarm.P2PSwarmError):
        await s.ready()
    await s.destroy()


async def test_raising_callbacks_are_reported_not_fatal(net, errors_reported):
    a = P2Pswarm(bootstrap=net.bootstrap)
    b = P2Pswarm(bootstrap=net.bootstrap)
    good = []

    def bad(conn, info):
        raise RuntimeError("boom in handler")

    async def bad_coro(conn, info):
        raise KeyError("boom in coroutine handler")

    a.on("connection", bad)
    a.on("connection", bad_coro)
    a.on("connection", lambda c, i: good.append(c))
    try:
        await a.join(TOPIC, server=True, client=False).flushed()
        b.join(TOPIC, server=False, client=True)
        await b.flush()
        await wait_for(lambda: good and len(errors_reported) >= 2, what="reports")
        excs = [type(c["exception"]) for c in errors_reported]
        assert RuntimeError in excs and KeyError in excs
        # the swarm still works after the failing handlers
        await wait_for(lambda: len(b.connections) == 1)
        (cb,) = list(b.connections)
        cb.write(b"still alive")
        assert await asyncio.wait_for(good[0].read(), 10) == b"still alive"
    finally:
        await a.destroy()
        await b.destroy()


async def test_raising_firewall_is_reported_and_rejects(net):
    reported = []
    import sys

    old = sys.unraisablehook
    sys.unraisablehook = lambda u: reported.append(u.exc_value)

    def fw(pk):
        raise ValueError("firewall bug")

    a = P2Pswarm(bootstrap=net.bootstrap, firewall=fw)
    b = P2Pswarm(bootstrap=net.bootstrap)
    try:
        await a.join(TOPIC, server=True, client=False).flushed()
        b.join(TOPIC, server=False, client=True)
        await b.flush()
        await wait_for(lambda: reported, what="firewall error report")
        assert isinstance(reported[0], ValueError)
        assert len(a.connections) == 0
        assert a.status(TOPIC) is not None  # the swarm is alive
    finally:
        sys.unraisablehook = old
        await a.destroy()
        await b.destroy()


async def test_closed_connection_and_destroyed_swarm(net):
    a, b, ca, cb = await pair(net)
    ca.close()
    await asyncio.wait_for(ca.wait_closed(), 10)
    with pytest.raises(p2pswarm.ClosedError):
        ca.write(b"x")
    await a.destroy()
    await b.destroy()
    with pytest.raises(p2pswarm.ClosedError):
        b.join(TOPIC)
