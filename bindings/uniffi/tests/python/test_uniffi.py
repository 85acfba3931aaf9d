"""uniffi's generated Python as a test harness of the uniffi crate (the shipped Python package
is the pyo3 one): the same scenarios as the Kotlin tests, on a loopback testnet.

Run by bindings/uniffi/tests/run.sh (which puts libp2pswarm_uniffi.so next to the module).
"""

import asyncio
import atexit
import os
import shutil
import subprocess
import weakref

import pytest

import p2pswarm_uniffi as p

T = 30  # seconds: bound of every wait

_live = weakref.WeakSet()


@atexit.register
def _close_all():
    # Stop every runtime thread before the interpreter tears down (listener callbacks).
    for o in list(_live):
        try:
            if isinstance(o, p.Testnet):
                o.destroy()
            elif isinstance(o, p.Dht):
                o.destroy()
        except Exception:
            pass


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def topic(n):
    return bytes([n]) * 32


async def make_testnet():
    net = await p.Testnet.create(3)
    _live.add(net)
    return net


async def swarm(net, **kw):
    s = await p.P2pswarm.create(p.SwarmOptions(bootstrap=net.bootstrap(), **kw))
    return s


async def next_connection(s):
    while True:
        ev = await asyncio.wait_for(s.next_event(), T)
        assert ev is not None, "swarm closed"
        if ev.is_connection():
            return ev.connection, ev.peer


async def read_exactly(conn, n):
    buf = b""
    while len(buf) < n:
        d = await asyncio.wait_for(conn.read(), T)
        assert d is not None, "end of stream"
        buf += d
    return buf


async def pair(net, t=1, **kw):
    a = await swarm(net, **kw)
    b = await swarm(net)
    d = await a.join(topic(t), server=True, client=False)
    await asyncio.wait_for(d.flushed(), T)
    await b.join(topic(t), server=False, client=True)
    await asyncio.wait_for(b.flush(), T)
    ca, pa = await next_connection(a)
    cb, pb = await next_connection(b)
    return a, b, d, (ca, pa), (cb, pb)


def test_key_pairs_and_error_kinds():
    kp = p.KeyPair.from_seed(bytes(32))
    assert len(kp.public_key()) == 32 and len(kp.secret_key()) == 64
    assert p.KeyPair.from_secret_key(kp.secret_key()).public_key() == kp.public_key()
    assert p.KeyPair.generate().public_key() != kp.public_key()
    with pytest.raises(p.P2pswarmError.InvalidArgument):
        p.KeyPair.from_seed(b"short")
    with pytest.raises(p.P2pswarmError.InvalidArgument):
        p.P2pswarm(p.SwarmOptions(bootstrap=["not an address"]))
    with pytest.raises(p.P2pswarmError.InvalidArgument):
        p.P2pswarm(p.SwarmOptions(host="::1"))


def test_two_swarms_exchange_data_and_every_swarm_function():
    async def main():
        net = await make_testnet()
        assert net.size() == 3
        a, b, d, (ca, pa), (cb, pb) = await pair(net, seed=bytes([7]) * 32)
        assert a.public_key() == p.KeyPair.from_seed(bytes([7]) * 32).public_key()
        assert d.topic() == topic(1)
        assert cb.remote_public_key() == a.public_key()
        assert ca.remote_public_key() == b.public_key()
        assert cb.is_initiator() and not ca.is_initiator()
        assert ca.handshake_hash() == cb.handshake_hash() and len(ca.handshake_hash()) == 64
        assert pb.public_key() == a.public_key() and topic(1) in pb.topics()
        assert isinstance(pb.prioritized(), bool) and not pb.banned()
        # data both ways, 1 MiB from b to a
        await cb.write(b"hello")
        assert await read_exactly(ca, 5) == b"hello"
        ca.try_write(b"world")
        assert await read_exactly(cb, 5) == b"world"
        big = os.urandom(1 << 20)
        w = asyncio.ensure_future(cb.write(big))
        assert await read_exactly(ca, len(big)) == big
        await w
        assert cb.queued_bytes() == 0
        assert len(a.connections()) == 1 and len(b.connections()) == 1
        # end: the remote reads end of stream, then both close
        cb.end()
        assert await asyncio.wait_for(ca.read(), T) is None
        ca.end()
        assert await asyncio.wait_for(cb.read(), T) is None
        await asyncio.wait_for(ca.closed(), T)
        assert ca.is_closed()
        # swarm state
        assert a.connecting() == 0
        assert any(x.public_key() == a.public_key() for x in b.peers())
        assert b.peer(a.public_key()).public_key() == a.public_key()
        assert b.peer(bytes(32)) is None
        st = a.status(topic(1))
        assert st.server and not st.client and st.sessions >= 1
        assert a.status(topic(9)) is None
        assert await d.refresh(True, False) in (True, False)
        assert await a.flush()
        await a.listen()
        await b.suspend()
        assert b.status(topic(1)).suspended
        await b.resume()
        assert not b.status(topic(1)).suspended
        b.join_peer(a.public_key())
        assert b.peer(a.public_key()).explicit()
        b.leave_peer(a.public_key())
        await d.destroy()
        await a.leave(topic(1))
        await b.leave(topic(1))
        # ban: the swarm reports it and the peer says so
        pb.ban(True)
        assert b.peer(a.public_key()).banned()
        pb.ban(False)
        await a.destroy()
        await b.destroy()
        net.destroy()

    run(main())


def test_listener_and_pull_and_cancellation():
    async def main():
        net = await make_testnet()
        a = await swarm(net)
        b = await swarm(net)
        loop = asyncio.get_running_loop()
        got = asyncio.Queue()

        class L(p.SwarmListener):
            def on_event(self, event):
                loop.call_soon_threadsafe(got.put_nowait, event)

        # a suspended pull is cancelled; nothing is lost
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(b.next_event(), 0.2)
        handle = a.add_listener(L())
        d = await a.join(topic(2), server=True, client=False)
        await d.flushed()
        await b.join(topic(2), server=False, client=True)
        await b.flush()
        while True:
            ev = await asyncio.wait_for(got.get(), T)
            if ev.is_connection():
                ca = ev.connection
                break
        cb, _ = await next_connection(b)  # the pull (cancelled before) still works
        # a cancelled read loses no data
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ca.read(), 0.2)
        await cb.write(b"after cancel")
        assert await read_exactly(ca, 12) == b"after cancel"
        handle.cancel()
        handle.cancel()
        del handle
        cb.destroy()
        assert await asyncio.wait_for(ca.closed(), T) is None or True
        await a.destroy()
        await b.destroy()
        # after destroy: pulls end, calls fail with Closed
        for _ in range(1000):  # queued events, then the end
            if await asyncio.wait_for(b.next_event(), T) is None:
                break
        else:
            raise AssertionError("next_event never ended")
        with pytest.raises(p.P2pswarmError.Closed):
            await b.join(topic(3))
        with pytest.raises(p.P2pswarmError.Closed):
            await cb.write(b"x")
        net.destroy()

    run(main())


def test_firewall_rejects():
    async def main():
        net = await make_testnet()
        seen = []

        class Deny(p.Firewall):
            def reject(self, remote_public_key):
                seen.append(remote_public_key)
                return True

        a = await swarm(net, firewall=Deny())
        b = await swarm(net)
        d = await a.join(topic(4), server=True, client=False)
        await d.flushed()
        await b.join(topic(4), server=False, client=True)
        await b.flush()
        assert b.public_key() in seen
        assert len(a.connections()) == 0 and len(b.connections()) == 0
        # the rejected peer is banned: a 'ban' event
        for _ in range(1000):
            ev = await asyncio.wait_for(a.next_event(), T)
            assert ev is not None
            if ev.is_ban():
                assert ev.peer.public_key() == b.public_key() and ev.peer.banned()
                break
        else:
            raise AssertionError("no ban event")
        await a.destroy()
        await b.destroy()
        net.destroy()

    run(main())


def test_dht():
    async def main():
        net = await make_testnet()
        opts = p.DhtOptions(bootstrap=net.bootstrap())
        n1 = await p.Dht.create(opts)
        n2 = p.Dht(p.DhtOptions(bootstrap=net.bootstrap(), seed=bytes([3]) * 32))
        _live.add(n1)
        _live.add(n2)
        assert n2.public_key() == p.KeyPair.from_seed(bytes([3]) * 32).public_key()
        server = await n1.listen()
        assert server.public_key() == n1.public_key()
        c = await n2.connect(n1.public_key())
        s = await asyncio.wait_for(server.accept(), T)
        await c.write(b"ping")
        assert await read_exactly(s, 4) == b"ping"
        await s.write(b"pong")
        assert await read_exactly(c, 4) == b"pong"
        with pytest.raises(p.P2pswarmError.PeerNotFound):
            await n2.connect(p.KeyPair.generate().public_key())
        kp = p.KeyPair.generate()
        assert await n1.announce(topic(5), kp) > 0
        found = await n2.lookup(topic(5))
        assert any(r.public_key == kp.public_key() for x in found for r in x.peers)
        await n1.unannounce(topic(5), kp)
        h = await n1.immutable_put(b"immutable")
        assert await n2.immutable_get(h) == b"immutable"
        assert await n1.mutable_put(kp, b"v1", 1) > 0
        v = await n2.mutable_get(kp.public_key())
        assert (v.seq, v.value, len(v.signature)) == (1, b"v1", 64)
        with pytest.raises(p.P2pswarmError.NotFound):
            await n2.mutable_get(kp.public_key(), 5)
        await server.close()
        await server.close()
        c.destroy()
        n1.destroy()
        n2.destroy()
        with pytest.raises(p.P2pswarmError.Closed):
            await n1.lookup(topic(5))
        # a swarm's DHT node
        sw = await swarm(net)
        sd = sw.dht()
        assert sd.public_key() == sw.public_key()
        assert await sd.immutable_get(h) == b"immutable"
        await sw.destroy()
        net.destroy()

    run(main())


@pytest.mark.skipif(os.environ.get("P2PSWARM_NETNS") != "1",
                    reason="needs a network namespace: run inside tests/interop/netns.sh (root)")
def test_js_hyperswarm_peer():
    js = os.environ["P2PSWARM_JS_DIR"]

    async def main():
        net = await make_testnet()
        s = await swarm(net)
        t = topic(6)
        proc = await asyncio.create_subprocess_exec(
            shutil.which("node"), os.path.join(js, "hyperswarm-peer.js"),
            "--bootstrap", net.bootstrap()[0], "--topic", t.hex(), "--seed", "11" * 32, "--server",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), T)
            assert line.strip() == b"joined", line
            await s.join(t, server=False, client=True)
            await s.flush()
            c, peer = await next_connection(s)
            assert await read_exactly(c, 13) == b"hello from js"
            await c.write(b"hello from uniffi")
            while True:
                line = (await asyncio.wait_for(proc.stdout.readline(), T)).decode()
                if line.startswith("data "):
                    assert line.split(" ", 2)[2].strip() == "hello from uniffi"
                    break
            proc.stdin.write(b"exit\n")
            await proc.stdin.drain()
            assert (await asyncio.wait_for(proc.stdout.readline(), T)).strip() in (b"bye", b"")
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
        await s.destroy()
        net.destroy()

    run(main())


def test_backpressure_holds_the_sender_while_the_receiver_does_not_read():
    async def main():
        net = await make_testnet()
        a, b, d, (ca, _), (cb, _) = await pair(net, t=7)
        chunks = [os.urandom(1 << 20) for _ in range(20)]
        sent = []

        async def send():
            for c in chunks:
                await cb.write(c)
                sent.append(len(c))

        w = asyncio.ensure_future(send())
        await asyncio.sleep(3)
        assert not w.done(), "20 MiB went out while the receiver read nothing"
        print(f"held back after {len(sent)} MiB")
        assert cb.queued_bytes() > 0
        got = await read_exactly(ca, len(chunks) << 20)
        assert got == b"".join(chunks)
        await asyncio.wait_for(w, T)
        await a.destroy()
        await b.destroy()
        net.destroy()

    run(main())


def test_throwing_listener_and_firewall():
    async def main():
        net = await make_testnet()
        got = []

        class Bad(p.SwarmListener):
            def on_event(self, event):
                got.append(event)
                raise RuntimeError("listener failure")

        class BadFirewall(p.Firewall):
            def reject(self, remote_public_key):
                raise RuntimeError("firewall failure")

        a = await swarm(net, firewall=BadFirewall())
        b = await swarm(net)
        h = b.add_listener(Bad())
        d = await a.join(topic(8), server=True, client=False)
        await d.flushed()
        await b.join(topic(8), server=False, client=True)
        await b.flush()
        # a failing firewall rejects; a failing listener keeps getting events
        assert len(a.connections()) == 0
        for _ in range(300):
            if len(got) >= 2:
                break
            await asyncio.sleep(0.01)
        assert len(got) >= 2
        await a.destroy()
        await b.destroy()  # waits for the listener thread: no callback after this
        n = len(got)
        await asyncio.sleep(0.1)
        assert len(got) == n
        h.cancel()
        net.destroy()

    run(main())
