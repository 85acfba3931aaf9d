"""The HyperDHT API: :class:`DHT` nodes, servers, direct connections, records and values.

Example::

    from p2pswarm import testnet
    from p2pswarm.dht import DHT, key_pair

    net = testnet(3)
    async with DHT(bootstrap=net.bootstrap) as a, DHT(bootstrap=net.bootstrap) as b:
        server = a.create_server()
        server.on("connection", lambda conn, _info: conn.write(b"hi"))
        await server.listen()
        conn = await b.connect(server.public_key)
        print(await conn.read())
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Set

from . import _native
from ._base import (
    BytesLike,
    Ev,
    Connection,
    ConnectionStream,
    Emitter,
    KeyPair,
    Pump,
    check_bootstrap,
    check_bytes,
    key_pair,
    secret_of,
)


class PeerRecord(NamedTuple):
    """A peer announced under a topic: its key and the DHT nodes that relay to it."""

    public_key: bytes
    relay_addresses: List[str]


class LookupReply(NamedTuple):
    """One storage node's answer to :meth:`DHT.lookup`."""

    from_: str
    peers: List[PeerRecord]
    bump: int


class MutableValue(NamedTuple):
    """A signed mutable value (:meth:`DHT.mutable_get`)."""

    seq: int
    value: bytes
    signature: bytes
    from_: str


def _u64(name: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{name} must be an int, not {type(v).__name__}")
    if not 0 <= v < 2**64:
        raise ValueError(f"{name} must be in 0..2**64")
    return v


class DHT(Emitter):
    """A HyperDHT node.

    :param bootstrap: ``["A.B.C.D:PORT", ...]`` (default: the public network).
    :param key_pair: the node's default :class:`KeyPair` (for servers and connects).
    :param seed: 32-byte seed of the default key pair.
    """

    def __init__(
        self,
        bootstrap: Optional[List[str]] = None,
        key_pair: Optional[KeyPair] = None,
        seed: Optional[BytesLike] = None,
        *,
        host: Optional[str] = None,
        port: Optional[int] = None,
        ready_timeout: float = 30.0,
        _native_dht: Any = None,
        _pump: Optional[Pump] = None,
    ) -> None:
        super().__init__()
        self._servers: Dict[int, "Server"] = {}
        self._destroyed = False
        if _native_dht is not None and _pump is not None:
            self._pump = _pump
            self._native = _native_dht
            self._owned = False
            return
        s = None if seed is None else check_bytes("seed", seed)
        self._pump = Pump(self._dispatch)
        self._owned = True
        self._native = _native.Dht(
            self._pump.queue,
            seed=s,
            secret_key=secret_of(key_pair),
            bootstrap=check_bootstrap(bootstrap),
            host=host,
            port=port,
            ready_timeout=float(ready_timeout),
        )
        self._pump.attach()

    @classmethod
    def _from_swarm(cls, swarm: Any) -> "DHT":
        d = cls.__new__(cls)
        Emitter.__init__(d)
        d._servers = {}
        d._destroyed = False
        d._pump = Pump(d._dispatch)
        d._native = swarm._native.dht(d._pump.queue)
        d._owned = False
        d._pump.attach()
        return d

    def _attach(self) -> None:
        self._pump.attach()
        self._loop = self._pump.loop

    def _dispatch(self, ev: Ev) -> None:
        if ev[0] == "connection":
            conn = Connection(ev[2], self._pump)
            srv = self._servers.get(ev[1])
            if srv is not None:
                srv._connection(conn)
            else:
                conn.close()

    async def ready(self) -> None:
        """Waits until the node is bootstrapped."""
        self._attach()
        await self._native.ready()

    async def __aenter__(self) -> "DHT":
        await self.ready()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.destroy()

    @property
    def public_key(self) -> bytes:
        """The public key of the node's default key pair."""
        pk: bytes = self._native.public_key
        return pk

    async def connect(self, public_key: BytesLike, key_pair: Optional[KeyPair] = None) -> Connection:
        """Connects to the server listening on ``public_key`` (hole punching as needed)."""
        pk = check_bytes("public_key", public_key)
        self._attach()
        c = await self._native.connect(pk, secret_of(key_pair))
        return Connection(c, self._pump)

    def create_server(self) -> "Server":
        """A server; call :meth:`Server.listen` to announce it and accept connections."""
        return Server(self)

    async def lookup(self, topic: BytesLike) -> List[LookupReply]:
        """Peers announced under ``topic``, per storage node."""
        t = check_bytes("topic", topic)
        self._attach()
        out = await self._native.lookup(t)
        return [
            LookupReply(frm, [PeerRecord(bytes(pk), list(relays)) for pk, relays in peers], bump)
            for frm, peers, bump in out
        ]

    async def announce(self, topic: BytesLike, key_pair: KeyPair) -> int:
        """Announces ``key_pair`` under ``topic``; returns how many nodes stored it."""
        t = check_bytes("topic", topic)
        sk = secret_of(key_pair)
        if sk is None:
            raise TypeError("key_pair is required")
        self._attach()
        return int(await self._native.announce(t, sk))

    async def unannounce(self, topic: BytesLike, key_pair: KeyPair) -> int:
        """Removes an announcement."""
        t = check_bytes("topic", topic)
        sk = secret_of(key_pair)
        if sk is None:
            raise TypeError("key_pair is required")
        self._attach()
        return int(await self._native.unannounce(t, sk))

    async def immutable_put(self, value: BytesLike) -> bytes:
        """Stores ``value``; returns its 32-byte hash (the key for :meth:`immutable_get`)."""
        v = check_bytes("value", value, None)
        self._attach()
        return bytes(await self._native.immutable_put(v))

    async def immutable_get(self, hash: BytesLike) -> bytes:
        """Fetches an immutable value by hash (:class:`NotFoundError` if absent)."""
        h = check_bytes("hash", hash)
        self._attach()
        return bytes(await self._native.immutable_get(h))

    async def mutable_put(self, key_pair: KeyPair, value: BytesLike, seq: int = 0) -> int:
        """Stores ``value`` signed by ``key_pair`` with sequence number ``seq``."""
        sk = secret_of(key_pair)
        if sk is None:
            raise TypeError("key_pair is required")
        v = check_bytes("value", value, None)
        self._attach()
        return int(await self._native.mutable_put(sk, v, _u64("seq", seq)))

    async def mutable_get(self, public_key: BytesLike, seq: int = 0) -> MutableValue:
        """The latest value signed by ``public_key`` with sequence ≥ ``seq``."""
        pk = check_bytes("public_key", public_key)
        self._attach()
        s, v, sig, frm = await self._native.mutable_get(pk, _u64("seq", seq))
        return MutableValue(s, bytes(v), bytes(sig), frm)

    async def destroy(self) -> None:
        """Closes the node (a swarm's node is closed by the swarm instead)."""
        if self._destroyed:
            return
        self._destroyed = True
        for s in list(self._servers.values()):
            await s.close()
        if self._owned:
            self._native.destroy()
        self._pump.close()


class Server(Emitter):
    """A DHT server. Events: ``"connection"`` ``(conn, None)``; also ``async for conn, _ in server``."""

    def __init__(self, dht: DHT) -> None:
        super().__init__()
        self._dht = dht
        self._native: Any = None
        self._streams: Set[ConnectionStream] = set()
        self.public_key: Optional[bytes] = None

    def _attach(self) -> None:
        self._dht._attach()
        self._loop = self._dht._loop

    async def listen(self, key_pair: Optional[KeyPair] = None) -> None:
        """Announces the server's key (``key_pair``, default the node's) and accepts connections."""
        if self._native is not None:
            raise RuntimeError("server is already listening")
        self._attach()
        self._native = await self._dht._native.listen(secret_of(key_pair))
        self.public_key = self._native.public_key
        self._dht._servers[self._native.id] = self

    def _connection(self, conn: Connection) -> None:
        for s in list(self._streams):
            s._put((conn, None))
        self.emit("connection", conn, None)

    def __aiter__(self) -> ConnectionStream:
        self._attach()
        s = ConnectionStream(self)
        self._streams.add(s)
        return s

    async def close(self) -> None:
        """Stops listening and unannounces (idempotent)."""
        if self._native is None:
            return
        self._dht._servers.pop(self._native.id, None)
        await self._native.close()
        for s in list(self._streams):
            s._put(None)
        self._streams.clear()


__all__ = [
    "DHT",
    "KeyPair",
    "LookupReply",
    "MutableValue",
    "PeerRecord",
    "Server",
    "key_pair",
]
