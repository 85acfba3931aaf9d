"""Connections: read/write/drain/end, iteration, flow control, a 64 MiB transfer, cancellation."""

import asyncio
import hashlib
import os

import pytest

import p2pswarm
from p2pswarm import READ_HIGH_WATER, ClosedError
from conftest import pair, wait_for


async def test_read_write_end_iterate(net):
    a, b, ca, cb = await pair(net)
    try:
        assert ca.write(b"one") is True
        ca.write(bytearray(b"two"))
        ca.write(memoryview(b"three"))
        await ca.drain()
        ca.end()
        ca.end()  # idempotent
        with pytest.raises(ClosedError):
            ca.write(b"after end")
        got = b""
        async for chunk in cb:
            got += chunk
        assert got == b"onetwothree"
        assert await cb.read() == b""  # EOF stays EOF
        # the other direction still works after our end
        cb.write(b"reply")
        cb.end()
        assert await ca.read_exactly(5) == b"reply"
        await asyncio.wait_for(ca.wait_closed(), 10)
        await asyncio.wait_for(cb.wait_closed(), 10)
        assert ca.closed and cb.closed and ca.error is None
        with pytest.raises(ClosedError):
            ca.write(b"x")
    finally:
        await a.destroy()
        await b.destroy()


async def test_read_n_and_read_exactly(net):
    a, b, ca, cb = await pair(net)
    try:
        ca.write(b"abcdefgh")
        assert await cb.read(3) == b"abc"
        assert await cb.read_exactly(5) == b"defgh"
        assert await cb.read(0) == b""
        ca.end()
        with pytest.raises(asyncio.IncompleteReadError):
            await cb.read_exactly(1)
    finally:
        await a.destroy()
        await b.destroy()


async def test_small_reads_across_chunks_and_written_buffers(net):
    """Reads of any size across (joined) chunks see every byte once, in order; a ``bytes``
    object may be written many times (it is not copied), a ``bytearray`` changed right after
    ``write`` is sent as it was (it is copied)."""
    a, b, ca, cb = await pair(net)
    try:
        block = os.urandom(300_000)
        ba = bytearray(os.urandom(300_000))
        want = bytearray()
        for i in range(9):
            if i % 3 == 0:
                assert ca.write(block)
                want += block
            elif i % 3 == 1:
                assert ca.write(ba)
                want += ba
                ba[:] = bytes(len(ba))  # after write: not what was sent
            else:
                mv = memoryview(block)[i * 1000 :]
                assert ca.write(mv)
                want += mv
        ca.end()
        got = bytearray()
        sizes = [1, 7, 4096, 100_000, -1, 3, 250_000]
        for i in range(100_000):
            n = sizes[i % len(sizes)]
            chunk = await asyncio.wait_for(cb.read(n), 10)
            if not chunk:
                break
            assert isinstance(chunk, bytes)
            assert n < 0 or len(chunk) <= n
            got += chunk
        assert got == want
    finally:
        await a.destroy()
        await b.destroy()


async def test_close_wakes_reader(net):
    a, b, ca, cb = await pair(net)
    try:
        r = asyncio.ensure_future(cb.read())
        await asyncio.sleep(0.05)
        ca.close()
        try:  # a remote destroy reads as a reset (like JS) or end of stream
            assert await asyncio.wait_for(r, 10) == b""
        except p2pswarm.StreamError as e:
            assert "reset" in str(e)
        await wait_for(lambda: ca.closed and cb.closed)
    finally:
        await a.destroy()
        await b.destroy()


async def test_64mib_transfer_checked(net):
    a, b, ca, cb = await pair(net)
    try:
        size = 64 * 1024 * 1024
        block = os.urandom(1024 * 1024)
        want = hashlib.sha256()

        async def send():
            for i in range(size // len(block)):
                chunk = block[i % 7 :] + block[: i % 7]  # vary the blocks
                want.update(chunk)
                if not ca.write(chunk):
                    await ca.drain()
            await ca.drain()
            ca.end()

        async def recv():
            h = hashlib.sha256()
            n = 0
            async for chunk in cb:
                h.update(chunk)
                n += len(chunk)
            return n, h

        _, (n, h) = await asyncio.wait_for(asyncio.gather(send(), recv()), 120)
        assert n == size
        assert h.digest() == want.digest()
    finally:
        await a.destroy()
        await b.destroy()


async def test_reading_is_bounded(net):
    """A receiver that does not read buffers at most the high-water mark (+ one chunk)."""
    a, b, ca, cb = await pair(net)
    try:
        block = b"\xab" * (1024 * 1024)
        for _ in range(16):
            ca.write(block)
        await asyncio.sleep(1.0)
        assert 0 < cb._buffered <= READ_HIGH_WATER + 256 * 1024
        # then everything arrives once read
        got = 0
        while got < 16 * len(block):
            got += len(await asyncio.wait_for(cb.read(), 10))
        assert got == 16 * len(block)
    finally:
        await a.destroy()
        await b.destroy()


async def test_cancel_pending_read(net):
    a, b, ca, cb = await pair(net)
    try:
        r = asyncio.ensure_future(cb.read())
        await asyncio.sleep(0.05)
        r.cancel()
        with pytest.raises(asyncio.CancelledError):
            await r
        # the connection is still usable after the cancelled read
        ca.write(b"still here")
        assert await asyncio.wait_for(cb.read(), 10) == b"still here"
    finally:
        await a.destroy()
        await b.destroy()


async def test_cancel_pending_native_await(net):
    """Cancelling an await on a runtime reply (bootstrap against a silent address) is clean."""
    silent = p2pswarm.dht.DHT(bootstrap=["127.0.0.1:9"], ready_timeout=30)
    t = asyncio.ensure_future(silent.ready())
    await asyncio.sleep(0.1)
    assert not t.done()
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(silent.ready(), 0.05)
    await silent.destroy()
    # the runtime still works
    async with p2pswarm.dht.DHT(bootstrap=net.bootstrap) as d:
        h = await d.immutable_put(b"after cancel")
        assert await d.immutable_get(h) == b"after cancel"


async def test_drain_without_writes_and_write_types(net):
    a, b, ca, cb = await pair(net)
    try:
        await ca.drain()
        with pytest.raises(TypeError):
            ca.write("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ca.write(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await cb.read("3")  # type: ignore[arg-type]
    finally:
        await a.destroy()
        await b.destroy()


async def test_writes_past_every_high_water_mark_are_kept(net):
    """Ignoring write()'s False: bytes beyond the runtime's write queue wait in Python until
    its drain event; nothing is lost, and end() comes after them."""
    a, b, ca, cb = await pair(net)
    try:
        block = os.urandom(1024 * 1024)
        results = [ca.write(block) for _ in range(32)]
        assert results[0] is True and results[-1] is False
        ca.end()

        async def recv():
            h = hashlib.sha256()
            n = 0
            async for chunk in cb:
                h.update(chunk)
                n += len(chunk)
            return n, h.digest()

        r = asyncio.ensure_future(recv())
        await asyncio.wait_for(ca.drain(), 60)
        n, digest = await asyncio.wait_for(r, 60)
        assert n == 32 * len(block)
        assert digest == hashlib.sha256(block * 32).digest()
    finally:
        await a.destroy()
        await b.destroy()
