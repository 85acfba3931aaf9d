"""Two Python swarms on a local testnet: the P2Pswarm API."""

import asyncio
import threading

import pytest

import p2pswarm
from p2pswarm import P2Pswarm, PeerDiscovery, PeerInfo, TopicStatus
from conftest import pair, wait_for

TOPIC = bytes(range(32))


async def test_two_swarms_connect_and_exchange(net):
    loop_thread = threading.get_ident()
    seen = []
    async with P2Pswarm(bootstrap=net.bootstrap) as a, P2Pswarm(bootstrap=net.bootstrap) as b:

        def on_conn(conn, info):
            seen.append(threading.get_ident())
            assert isinstance(info, PeerInfo)
            conn.write(b"hello from a")

        a.on("connection", on_conn)
        d = a.join(TOPIC, server=True, client=False)
        assert isinstance(d, PeerDiscovery) and d.topic == TOPIC
        assert await d.flushed() is True
        b.join(TOPIC, server=False, client=True)
        await b.flush()
        async for conn, info in b.connections():
            assert info.public_key == a.public_key
            assert TOPIC in info.topics
            assert conn.remote_public_key == a.public_key
            assert len(conn.handshake_hash) == 64
            assert await conn.read() == b"hello from a"
            break
        await wait_for(lambda: len(a.connections) == 1 and len(b.connections) == 1)
        (ca,) = list(a.connections)
        (cb,) = list(b.connections)
        assert ca.handshake_hash == cb.handshake_hash
        assert cb in b.connections
        assert a.public_key in b.peers
        assert b.peer(a.public_key).public_key == a.public_key
        assert b.connecting == 0
        cb.write(b"pong")
        assert await ca.read() == b"pong"
    # callbacks ran on the asyncio loop's thread, never the runtime thread
    assert seen == [loop_thread]
    assert a.destroyed and b.destroyed


async def test_status_refresh_leave_destroy_discovery(net):
    async with P2Pswarm(bootstrap=net.bootstrap) as a:
        assert a.status(TOPIC) is None
        d = a.join(TOPIC, server=True, client=False)
        await d.flushed()
        st = a.status(TOPIC)
        assert isinstance(st, TopicStatus)
        assert st.server and not st.client and st.sessions == 1 and not st.suspended
        assert await d.refresh(client=True) in (True, False)
        st = a.status(TOPIC)
        assert st.server and st.client
        await d.destroy()
        assert a.status(TOPIC) is None
        a.join(TOPIC)
        assert a.status(TOPIC) is not None
        await a.leave(TOPIC)
        assert a.status(TOPIC) is None


async def test_update_event_and_decorator(net):
    async with P2Pswarm(bootstrap=net.bootstrap) as a, P2Pswarm(bootstrap=net.bootstrap) as b:
        updates = []

        @b.on("update")
        def _u():
            updates.append(b.connections)

        await a.join(TOPIC, server=True, client=False).flushed()
        b.join(TOPIC, server=False, client=True)
        await b.flush()
        await wait_for(lambda: updates, what="update event")


async def test_join_peer_and_listen(net):
    async with P2Pswarm(bootstrap=net.bootstrap) as a, P2Pswarm(bootstrap=net.bootstrap) as b:
        await a.listen()
        got = asyncio.get_running_loop().create_future()
        a.once("connection", lambda c, i: got.set_result(i))
        b.join_peer(a.public_key)
        info = await asyncio.wait_for(got, 20)
        assert info.public_key == b.public_key
        await wait_for(lambda: b.peer(a.public_key) is not None and b.peer(a.public_key).explicit)
        b.leave_peer(a.public_key)
        await wait_for(lambda: not b.peer(a.public_key) or not b.peer(a.public_key).explicit)


async def test_peerinfo_ban(net):
    a, b, ca, cb = await pair(net)
    try:
        info = b.peer(a.public_key)
        assert not info.banned
        info.ban()
        assert info.banned
        await wait_for(lambda: b.peer(a.public_key) is None or b.peer(a.public_key).banned)
        info.ban(False)
        with pytest.raises(TypeError):
            info.ban("yes")
    finally:
        await a.destroy()
        await b.destroy()


async def test_seed_and_key_pair_identity(net):
    seed = b"\x01" * 32
    kp = p2pswarm.key_pair(seed)
    assert kp == p2pswarm.key_pair(seed)
    assert len(kp.public_key) == 32 and len(kp.secret_key) == 64
    async with P2Pswarm(seed=seed, bootstrap=net.bootstrap) as s1:
        assert s1.public_key == kp.public_key
    async with P2Pswarm(key_pair=kp, bootstrap=net.bootstrap) as s2:
        assert s2.public_key == kp.public_key


async def test_firewall_rejects(net):
    calls = []

    def firewall(pk):
        calls.append(pk)
        return True  # reject everyone

    a = P2Pswarm(bootstrap=net.bootstrap, firewall=firewall)
    b = P2Pswarm(bootstrap=net.bootstrap)
    try:
        await a.join(TOPIC, server=True, client=False).flushed()
        b.join(TOPIC, server=False, client=True)
        await b.flush()
        await asyncio.sleep(0.3)
        assert calls and calls[0] == b.public_key
        assert len(a.connections) == 0
    finally:
        await a.destroy()
        await b.destroy()


async def test_suspend_resume_and_max_peers(net):
    async with P2Pswarm(bootstrap=net.bootstrap, max_peers=2) as a:
        a.join(TOPIC)
        await a.suspend()
        assert a.status(TOPIC).suspended
        await a.resume()
        assert not a.status(TOPIC).suspended


async def test_destroy_is_idempotent_and_ends_iterators(net):
    a = P2Pswarm(bootstrap=net.bootstrap)
    it = a.connections()
    nxt = asyncio.ensure_future(it.__anext__())
    await a.destroy()
    await a.destroy()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(nxt, 5)
    with pytest.raises(p2pswarm.ClosedError):
        a.join(TOPIC)


async def test_dht_of_swarm(net):
    async with P2Pswarm(bootstrap=net.bootstrap) as a:
        d = a.dht
        assert d.public_key == a.public_key
        h = await d.immutable_put(b"from the swarm's node")
        assert await d.immutable_get(h) == b"from the swarm's node"


def test_sync_construction_outside_loop(net):
    """A swarm can be made without a running loop; sync methods wait for bootstrap."""
    s = P2Pswarm(bootstrap=net.bootstrap)
    assert len(s.public_key) == 32
    d = s.join(TOPIC)
    assert s.status(TOPIC) is not None

    async def finish():
        assert await d.flushed()
        await s.destroy()

    asyncio.run(finish())
