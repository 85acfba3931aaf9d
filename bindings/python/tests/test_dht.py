"""p2pswarm.dht: nodes, servers, connect, lookup/announce, immutable and mutable values."""

import asyncio

import pytest

import p2pswarm
from p2pswarm.dht import DHT, LookupReply, MutableValue, PeerRecord, Server, key_pair

TOPIC = b"\x42" * 32


async def test_key_pair():
    kp = key_pair(b"\x05" * 32)
    assert kp == key_pair(b"\x05" * 32)
    assert kp != key_pair()
    assert len(kp.public_key) == 32 and len(kp.secret_key) == 64
    assert kp.secret_key[32:] == kp.public_key


async def test_server_connect_and_exchange(net):
    async with DHT(bootstrap=net.bootstrap) as a, DHT(bootstrap=net.bootstrap) as b:
        server = a.create_server()
        assert isinstance(server, Server)
        seen = []

        def on_conn(conn, info):
            assert info is None
            seen.append(conn)
            conn.write(b"hi from server")

        server.on("connection", on_conn)
        kp = key_pair()
        await server.listen(kp)
        assert server.public_key == kp.public_key
        conn = await b.connect(kp.public_key)
        assert conn.remote_public_key == kp.public_key
        assert conn.is_initiator
        assert await asyncio.wait_for(conn.read(), 10) == b"hi from server"
        conn.write(b"hi from client")
        assert await asyncio.wait_for(seen[0].read(), 10) == b"hi from client"
        assert seen[0].handshake_hash == conn.handshake_hash
        await server.close()
        await server.close()


async def test_server_async_iteration_default_key(net):
    async with DHT(bootstrap=net.bootstrap) as a, DHT(bootstrap=net.bootstrap, seed=b"\x09" * 32) as b:
        server = a.create_server()
        await server.listen()
        assert server.public_key == a.public_key
        it = server.__aiter__()
        c = await b.connect(a.public_key, key_pair=key_pair(b"\x0a" * 32))
        s_conn, info = await asyncio.wait_for(it.__anext__(), 10)
        assert s_conn.remote_public_key == key_pair(b"\x0a" * 32).public_key
        assert b.public_key == key_pair(b"\x09" * 32).public_key
        c.end()
        assert await asyncio.wait_for(s_conn.read(), 10) == b""


async def test_announce_lookup_unannounce(net):
    async with DHT(bootstrap=net.bootstrap) as a, DHT(bootstrap=net.bootstrap) as b:
        kp = key_pair()
        assert await a.announce(TOPIC, kp) > 0
        replies = await b.lookup(TOPIC)
        assert replies and all(isinstance(r, LookupReply) for r in replies)
        keys = {p.public_key for r in replies for p in r.peers}
        assert kp.public_key in keys
        assert all(isinstance(p, PeerRecord) for r in replies for p in r.peers)
        await a.unannounce(TOPIC, kp)
        replies = await b.lookup(TOPIC)
        assert kp.public_key not in {p.public_key for r in replies for p in r.peers}


async def test_immutable_put_get(net):
    async with DHT(bootstrap=net.bootstrap) as a, DHT(bootstrap=net.bootstrap) as b:
        h = await a.immutable_put(b"immutable value")
        assert len(h) == 32
        assert await b.immutable_get(h) == b"immutable value"
        with pytest.raises(p2pswarm.NotFoundError):
            await b.immutable_get(b"\x00" * 32)


async def test_mutable_put_get(net):
    async with DHT(bootstrap=net.bootstrap) as a, DHT(bootstrap=net.bootstrap) as b:
        kp = key_pair()
        await a.mutable_put(kp, b"v1", seq=1)
        v = await b.mutable_get(kp.public_key)
        assert isinstance(v, MutableValue)
        assert (v.seq, v.value, len(v.signature)) == (1, b"v1", 64)
        await a.mutable_put(kp, b"v2", seq=2)
        assert (await b.mutable_get(kp.public_key, seq=2)).value == b"v2"
        with pytest.raises(p2pswarm.DHTError):
            await a.mutable_put(kp, b"older", seq=1)
        with pytest.raises(p2pswarm.NotFoundError):
            await b.mutable_get(key_pair().public_key)


async def test_connect_to_nobody_fails(net):
    async with DHT(bootstrap=net.bootstrap) as a:
        with pytest.raises(p2pswarm.ConnectError):
            await asyncio.wait_for(a.connect(key_pair().public_key), 60)


async def test_dht_bad_input(net):
    async with DHT(bootstrap=net.bootstrap) as a:
        with pytest.raises(ValueError, match="topic must be 32 bytes, got 3"):
            await a.lookup(b"abc")
        with pytest.raises(TypeError, match="topic must be bytes"):
            await a.lookup("x" * 32)
        with pytest.raises(ValueError, match="secret_key must be 64 bytes"):
            await a.announce(TOPIC, (b"\x00" * 32, b"\x00" * 10))
        with pytest.raises(TypeError):
            await a.mutable_put(key_pair(), b"v", seq="1")
        with pytest.raises(ValueError):
            await a.mutable_put(key_pair(), b"v", seq=-1)
        with pytest.raises(ValueError, match="public_key must be 32 bytes"):
            await a.connect(b"\x00" * 31)
