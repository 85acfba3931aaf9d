"""Shared machinery: argument checks, the event pump, handlers, connections, key pairs."""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Deque,
    Dict,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _native
from .errors import ClosedError, StreamError

BytesLike = Union[bytes, bytearray, memoryview]
#: An event from the native queue: ``(kind, id, ...)``.
Ev = Tuple[Any, ...]

#: Received bytes buffered per connection before the runtime stops reading the stream.
READ_HIGH_WATER = 4 * 1024 * 1024
#: Bytes the runtime queues for a connection before ``write`` returns ``False`` (then
#: ``await drain()``): the runtime's ``WRITE_HIGH_WATER``.
WRITE_HIGH_WATER = 8 * 1024 * 1024
#: Read bytes are reported to the runtime's flow control in batches of this size.
_CREDIT_BATCH = 256 * 1024
#: Events handled per wake-up of the loop (the readiness fd is level-triggered).
_BATCH = 512


def check_bytes(name: str, value: Any, length: Optional[int] = 32) -> bytes:
    """Returns ``value`` as ``bytes``: ``TypeError`` unless bytes-like, ``ValueError`` on a wrong length."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    b = bytes(value)
    if length is not None and len(b) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(b)}")
    return b


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def check_bootstrap(bootstrap: Any) -> Optional[List[str]]:
    if bootstrap is None:
        return None
    if isinstance(bootstrap, (str, bytes)) or not isinstance(bootstrap, (list, tuple)):
        raise TypeError('bootstrap must be a list of "host:port" strings')
    out = []
    for b in bootstrap:
        if not isinstance(b, str):
            raise TypeError(f'bootstrap entries must be "host:port" strings, not {type(b).__name__}')
        out.append(b)
    return out


class KeyPair(NamedTuple):
    """An Ed25519 key pair: ``public_key`` (32 bytes), ``secret_key`` (64 bytes)."""

    public_key: bytes
    secret_key: bytes


def key_pair(seed: Optional[BytesLike] = None) -> KeyPair:
    """The key pair derived from a 32-byte ``seed`` (a random one without)."""
    s = None if seed is None else check_bytes("seed", seed)
    pk, sk = _native.key_pair(s)
    return KeyPair(pk, sk)


def secret_of(kp: Any) -> Optional[bytes]:
    """The 64-byte secret key of a :class:`KeyPair` (or ``(public, secret)`` tuple)."""
    if kp is None:
        return None
    if isinstance(kp, tuple) and len(kp) == 2:
        return check_bytes("key_pair.secret_key", kp[1], 64)
    sk = getattr(kp, "secret_key", None)
    if sk is None:
        raise TypeError(f"key_pair must be a KeyPair, not {type(kp).__name__}")
    return check_bytes("key_pair.secret_key", sk, 64)


def report(loop: Optional[asyncio.AbstractEventLoop], message: str, exc: BaseException) -> None:
    """Reports an exception raised by a user callback through the loop's exception handler."""
    ctx = {"message": message, "exception": exc}
    try:
        (loop or asyncio.get_running_loop()).call_exception_handler(ctx)
    except RuntimeError:  # no loop: fall back to the unraisable hook
        import sys

        args: Any = sys.UnraisableHookArgs  # a struct sequence: (type, value, tb, msg, obj)
        sys.unraisablehook(args((type(exc), exc, exc.__traceback__, message, None)))


class Emitter:
    """``on``/``off``/``once`` handlers, run on the asyncio loop's thread.

    A handler that raises (or a coroutine handler that fails) is reported through
    ``loop.call_exception_handler`` and does not affect the swarm.
    """

    def __init__(self) -> None:
        self._handlers: Dict[str, List[Callable[..., Any]]] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def on(self, event: str, handler: Optional[Callable[..., Any]] = None) -> Any:
        """Adds ``handler`` for ``event``; without a handler, returns a decorator."""
        if not isinstance(event, str):
            raise TypeError(f"event must be a str, not {type(event).__name__}")
        if handler is None:
            def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
                self.on(event, fn)
                return fn

            return deco
        if not callable(handler):
            raise TypeError("handler must be callable")
        self._handlers.setdefault(event, []).append(handler)
        self._attach()
        return handler

    def once(self, event: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Adds a handler removed after its first call."""

        def wrapper(*args: Any) -> Any:
            self.off(event, wrapper)
            return handler(*args)

        self.on(event, wrapper)
        return wrapper

    def off(self, event: str, handler: Callable[..., Any]) -> None:
        """Removes a handler (no error when absent)."""
        hs = self._handlers.get(event, [])
        if handler in hs:
            hs.remove(handler)

    def _attach(self) -> None:  # overridden
        pass

    def emit(self, event: str, *args: Any) -> None:
        for h in list(self._handlers.get(event, ())):
            try:
                r = h(*args)
                if inspect.isawaitable(r):
                    t = asyncio.ensure_future(r)
                    t.add_done_callback(functools.partial(_report_task, event=event))
            except Exception as e:  # noqa: BLE001 - reported, never fatal
                report(self._loop, f"exception in p2pswarm {event!r} handler {h!r}", e)


def _report_task(t: "asyncio.Future[Any]", event: str) -> None:
    if not t.cancelled():
        e = t.exception()
        if e is not None:
            report(None, f"exception in p2pswarm {event!r} coroutine handler", e)


class Pump:
    """Moves events from a native queue to Python on the asyncio loop's thread.

    The queue's readiness fd is registered with ``loop.add_reader``; nothing runs on the
    runtime thread. Connection events are routed to their :class:`Connection`.
    """

    def __init__(self, dispatch: Callable[[Ev], None]) -> None:
        self.queue = _native.Queue()
        self._dispatch = dispatch
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.conns: Dict[int, Connection] = {}
        self._orphans: "collections.OrderedDict[int, List[Ev]]" = collections.OrderedDict()

    def attach(self) -> None:
        """Registers with the running loop (no-op without one, or when attached)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self.loop is loop:
            return
        if self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.remove_reader(self.queue.fileno())
            except Exception:  # noqa: BLE001
                pass
        self.loop = loop
        if not self.queue.closed:
            loop.add_reader(self.queue.fileno(), self.poll)

    def poll(self) -> None:
        evs = self.queue.take(_BATCH)
        if evs is None:
            self.detach()
            return
        for ev in evs:
            kind = ev[0]
            if kind in ("data", "end", "close", "drain"):
                c = self.conns.get(ev[1])
                if c is None:
                    self._orphan(ev)
                else:
                    c._event(ev)
            else:
                self._dispatch(ev)

    def _orphan(self, ev: Ev) -> None:
        # Events of a connection not registered yet (a `connect()` whose reply is still on its
        # way to the awaiting coroutine): replayed by `register`. Bounded.
        self._orphans.setdefault(ev[1], []).append(ev)
        while len(self._orphans) > 1024:
            self._orphans.popitem(last=False)

    def register(self, conn: "Connection") -> None:
        self.conns[conn._native.id] = conn
        for ev in self._orphans.pop(conn._native.id, ()):
            conn._event(ev)

    def detach(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.remove_reader(self.queue.fileno())
            except Exception:  # noqa: BLE001
                pass
        self.loop = None

    def close(self) -> None:
        """Delivers what is queued, then closes the queue and unregisters."""
        if self.loop is not None and not self.queue.closed:
            for _ in range(64):
                evs = self.queue.take(_BATCH)
                if not evs:
                    break
                self.poll_list(evs)
        self.detach()
        self.queue.close()
        for c in list(self.conns.values()):
            c._event(("close", c._native.id, None))
        self.conns.clear()

    def poll_list(self, evs: List[Ev]) -> None:
        for ev in evs:
            if ev[0] in ("data", "end", "close", "drain"):
                c = self.conns.get(ev[1])
                if c is not None:
                    c._event(ev)
            else:
                self._dispatch(ev)


class Connection:
    """An end-to-end encrypted (Noise) duplex stream.

    Read with ``await conn.read()`` or ``async for chunk in conn``; write with
    ``if not conn.write(data): await conn.drain()`` (``await conn.flush()`` waits until all
    was handed to the stream). Reading is flow-controlled: at most
    :data:`READ_HIGH_WATER` bytes are buffered before the remote is slowed down.
    """

    def __init__(self, native: Any, pump: Pump) -> None:
        self._native = native
        self._pump = pump
        self._buf: Deque[bytes] = collections.deque()
        self._pos = 0  # bytes of _buf[0] already read (small reads do not copy the rest)
        self._buffered = 0
        self._unacked = 0  # bytes read but not yet reported to the runtime (batched)
        self._eof = False
        self._closed = False
        self._error: Optional[str] = None
        self._waiter: Optional[asyncio.Future[None]] = None
        self._close_waiters: List[asyncio.Future[None]] = []
        self._overflow: Deque[bytes] = collections.deque()
        self._drain_waiters: List[asyncio.Future[None]] = []
        self._ended = False
        self._end_pending = False
        self._native_ended = False
        self.remote_public_key: bytes = native.remote_public_key
        """The remote peer's 32-byte public key."""
        self.handshake_hash: Optional[bytes] = native.handshake_hash
        """The 64-byte Noise handshake hash (same on both ends)."""
        self.is_initiator: bool = native.is_initiator
        """Whether we dialled."""
        self.info: Any = None
        """The swarm's :class:`PeerInfo` of the remote (``None`` for DHT connections)."""
        native.limit_reading(READ_HIGH_WATER)
        pump.register(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Connection {self.remote_public_key.hex()[:16]}… {state}>"

    # -- events from the pump -------------------------------------------------------------
    def _event(self, ev: Ev) -> None:
        kind = ev[0]
        if kind == "data":
            if self._closed:
                return
            self._buf.append(ev[2])
            self._buffered += len(ev[2])
        elif kind == "end":
            self._eof = True
        elif kind == "drain":
            self._push_overflow()
            return
        elif kind == "close":
            if self._closed:
                return
            self._closed = True
            self._eof = True
            self._error = ev[2]
            self._pump.conns.pop(self._native.id, None)
            self._overflow.clear()
            self._wake_drain()
            for w in self._close_waiters:
                if not w.done():
                    w.set_result(None)
            self._close_waiters.clear()
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)
        self._waiter = None

    async def _wait(self) -> None:
        if self._unacked:
            self._native.consumed(self._unacked)
            self._unacked = 0
        self._pump.attach()
        loop = asyncio.get_running_loop()
        if self._waiter is not None and not self._waiter.done():
            raise RuntimeError("another coroutine is already reading this connection")
        self._waiter = loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # -- reading ----------------------------------------------------------------------------
    async def read(self, n: int = -1) -> bytes:
        """The next received bytes (at most ``n`` when ``n >= 0``); ``b""`` at end of stream.

        Raises :class:`StreamError` when the connection failed with nothing left to read.
        """
        if not isinstance(n, int):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        if n == 0:
            return b""
        while not self._buf:
            if self._eof:
                if self._error is not None:
                    raise StreamError(self._error)
                return b""
            await self._wait()
        first, pos = self._buf[0], self._pos
        if 0 < n < len(first) - pos:
            chunk = first[pos : pos + n]
            self._pos = pos + n
        else:
            self._buf.popleft()
            self._pos = 0
            chunk = first[pos:] if pos else first
        self._buffered -= len(chunk)
        self._unacked += len(chunk)
        if self._unacked >= _CREDIT_BATCH:
            self._native.consumed(self._unacked)
            self._unacked = 0
        return chunk

    async def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; :class:`asyncio.IncompleteReadError` if the stream ends first."""
        parts: List[bytes] = []
        got = 0
        while got < n:
            b = await self.read(n - got)
            if not b:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(b)
            got += len(b)
        return b"".join(parts)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        b = await self.read()
        if not b:
            raise StopAsyncIteration
        return b

    # -- writing ----------------------------------------------------------------------------
    def write(self, data: BytesLike) -> bool:
        """Queues ``data`` (never blocks, never drops). Returns ``False`` when the runtime's
        write queue is full (:data:`WRITE_HIGH_WATER` bytes): the bytes are kept and sent in
        order, but ``await drain()`` before writing more to keep memory bounded."""
        b = check_bytes("data", data, None)
        if self._closed:
            raise ClosedError("connection is closed")
        if self._ended:
            raise ClosedError("write after end()")
        if not self._overflow:
            n = self._native.write(b)
            if n == len(b):
                return True
            b = b[n:]
        # the runtime's queue is full: keep the rest here until its "drain" event
        self._overflow.append(b)
        return False

    def _push_overflow(self) -> None:
        while self._overflow:
            b = self._overflow[0]
            n = self._native.write(b)
            if n < len(b):
                self._overflow[0] = b[n:]
                return
            self._overflow.popleft()
        if self._end_pending:
            self._end_pending = False
            self._native_end()
        self._wake_drain()

    def _wake_drain(self) -> None:
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()

    async def drain(self) -> None:
        """Waits until the runtime's write queue has room again (returns at once when
        ``write`` returned ``True``). Raises if the connection closed meanwhile."""
        self._pump.attach()
        while self._overflow and not self._closed:
            f = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(f)
            await f
        if self._overflow and self._closed:
            if self._error is not None:
                raise StreamError(self._error)
            raise ClosedError("connection is closed")

    async def flush(self) -> None:
        """Waits until every byte written so far was handed to the encrypted stream."""
        await self.drain()
        if not self._native_ended and not self._closed:
            # an empty write completes once every earlier write was handed to the stream
            await self._native.flush()

    def _native_end(self) -> None:
        self._native_ended = True
        try:
            self._native.end()
        except ClosedError:
            pass

    def end(self) -> None:
        """Ends our side: the remote reads end of stream; we can still read."""
        if self._ended or self._closed:
            return
        self._ended = True
        if self._overflow:
            self._end_pending = True  # after the bytes still waiting here
        else:
            self._native_end()

    def close(self) -> None:
        """Closes the connection now (``destroy`` in the JS API)."""
        self._native.destroy()

    destroy = close

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self._closed

    @property
    def error(self) -> Optional[str]:
        """Why the connection closed, when it failed."""
        return self._error

    async def wait_closed(self) -> None:
        """Waits until the connection is closed."""
        if self._closed:
            return
        self._pump.attach()
        f = asyncio.get_running_loop().create_future()
        self._close_waiters.append(f)
        await f


class Testnet:
    """A loopback DHT testnet (127.0.0.1) for tests and examples; never the public network.

    ``testnet.bootstrap`` is the list to pass as ``bootstrap=``. Use as a (sync or async)
    context manager or call :meth:`close`.
    """

    def __init__(self, n: int = 3) -> None:
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        self._net = _native.Testnet(n)
        self.bootstrap: List[str] = list(self._net.bootstrap)

    def __len__(self) -> int:
        return len(self._net)

    def close(self) -> None:
        """Stops the nodes (idempotent)."""
        self._net.close()

    def __enter__(self) -> "Testnet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "Testnet":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


def testnet(n: int = 3) -> Testnet:
    """Starts a loopback testnet of ``n`` DHT nodes; ``testnet(n).bootstrap`` → ``["127.0.0.1:PORT"]``."""
    return Testnet(n)


class ConnectionStream:
    """An async iterator of ``(connection, info)`` pairs (``info`` is ``None`` for DHT servers)."""

    def __init__(self, owner: Any) -> None:
        self._q: "asyncio.Queue[Any]" = asyncio.Queue()
        self._owner = owner

    def _put(self, item: Any) -> None:
        self._q.put_nowait(item)

    def __aiter__(self) -> "ConnectionStream":
        return self

    async def __anext__(self) -> Any:
        item = await self._q.get()
        if item is None:
            self._owner._streams.discard(self)
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self._owner._streams.discard(self)


__all__: Sequence[str] = [
    "Connection",
    "ConnectionStream",
    "Emitter",
    "KeyPair",
    "Pump",
    "Testnet",
    "check_bytes",
    "key_pair",
    "testnet",
]
