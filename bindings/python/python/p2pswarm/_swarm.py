"""The Hyperswarm API: :class:`P2Pswarm`, :class:`PeerDiscovery`, :class:`PeerInfo`."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Set

from . import _native
from ._base import (
    BytesLike,
    Ev,
    Connection,
    ConnectionStream,
    Emitter,
    KeyPair,
    Pump,
    check_bool,
    check_bootstrap,
    check_bytes,
    secret_of,
)


class TopicStatus(NamedTuple):
    """The discovery state of a joined topic (:meth:`P2Pswarm.status`)."""

    server: bool
    client: bool
    sessions: int
    refreshing: bool
    suspended: bool


class PeerInfo:
    """What the swarm knows about a peer (the ``info`` of a ``connection`` event)."""

    __slots__ = ("_swarm", "public_key", "topics", "prioritized", "banned", "explicit")

    def __init__(self, swarm: "P2Pswarm", t: Ev) -> None:
        self._swarm = swarm
        self.public_key: bytes = t[0]
        self.topics: List[bytes] = list(t[1])
        self.prioritized: bool = t[2]
        self.banned: bool = t[3]
        self.explicit: bool = t[4]

    def ban(self, banned: bool = True) -> None:
        """Bans the peer (or un-bans it with ``False``): no more connections to or from it."""
        check_bool("banned", banned)
        self._swarm._native.ban(self.public_key, banned)
        self.banned = banned

    def __repr__(self) -> str:
        return (
            f"<PeerInfo {self.public_key.hex()[:16]}… topics={len(self.topics)} "
            f"prioritized={self.prioritized} banned={self.banned}>"
        )


class PeerDiscovery:
    """A joined topic (returned by :meth:`P2Pswarm.join`)."""

    def __init__(self, swarm: "P2Pswarm", native: Any) -> None:
        self._swarm = swarm
        self._native = native
        self.topic: bytes = native.topic

    async def flushed(self) -> bool:
        """Waits until the topic is fully announced (server) and looked up (client)."""
        self._swarm._pump.attach()
        return bool(await self._native.flushed())

    async def refresh(self, server: Optional[bool] = None, client: Optional[bool] = None) -> bool:
        """Changes the roles (``None`` keeps one) and re-announces / looks up again."""
        if server is not None:
            check_bool("server", server)
        if client is not None:
            check_bool("client", client)
        st = self._swarm.status(self.topic)
        s = server if server is not None else (st.server if st else True)
        c = client if client is not None else (st.client if st else True)
        self._swarm._pump.attach()
        return bool(await self._native.refresh(s, c))

    async def destroy(self) -> None:
        """Stops discovering the topic (existing connections stay)."""
        self._swarm._pump.attach()
        await self._native.destroy()

    def __repr__(self) -> str:
        return f"<PeerDiscovery {self.topic.hex()[:16]}…>"


class _Connections:
    """``swarm.connections``: the set of open connections; call it for an async iterator."""

    def __init__(self, swarm: "P2Pswarm") -> None:
        self._swarm = swarm

    def _set(self) -> Set[Connection]:
        return {c for c in self._swarm._pump.conns.values() if not c.closed}

    def __len__(self) -> int:
        return len(self._set())

    def __iter__(self) -> Iterator[Connection]:
        return iter(self._set())

    def __contains__(self, c: object) -> bool:
        return c in self._set()

    def __bool__(self) -> bool:
        return bool(self._set())

    def __call__(self) -> ConnectionStream:
        """``async for conn, info in swarm.connections():`` yields the open connections, then
        each new one; it ends when the swarm is destroyed."""
        return self._swarm._stream()

    def __repr__(self) -> str:
        return f"<connections {len(self)}>"


class P2Pswarm(Emitter):
    """A Hyperswarm swarm: finds peers on 32-byte topics and connects to them.

    Construction is immediate; bootstrapping the DHT node goes on in the background. Use
    ``async with P2Pswarm(...) as swarm`` (or ``await swarm.ready()``) to wait for it;
    synchronous methods called before that block (with the GIL released) until it is done.

    Events (``swarm.on(name, handler)``, handlers run on the asyncio loop's thread; a handler
    that raises is reported through the loop's exception handler):

    * ``"connection"`` ``(conn: Connection, info: PeerInfo)``
    * ``"update"`` ``()`` — counts changed
    * ``"ban"`` ``(info: PeerInfo)``

    :param seed: 32 bytes that determine the key pair.
    :param key_pair: a :class:`KeyPair` (wins over ``seed``).
    :param max_peers: soft cap on connections.
    :param firewall: ``callable(remote_public_key: bytes) -> bool``; ``True`` rejects. It runs
        on the runtime thread (it must be quick and must not block); if it raises, the peer is
        rejected and the exception is reported through ``sys.unraisablehook``.
    :param bootstrap: DHT bootstrap nodes, ``["A.B.C.D:PORT", ...]`` (default: the public
        network).
    """

    def __init__(
        self,
        seed: Optional[BytesLike] = None,
        key_pair: Optional[KeyPair] = None,
        max_peers: int = 64,
        firewall: Optional[Callable[[bytes], bool]] = None,
        bootstrap: Optional[List[str]] = None,
        *,
        max_parallel: Optional[int] = None,
        host: Optional[str] = None,
        port: Optional[int] = None,
        ready_timeout: float = 30.0,
    ) -> None:
        super().__init__()
        s = None if seed is None else check_bytes("seed", seed)
        sk = secret_of(key_pair)
        if not isinstance(max_peers, int) or isinstance(max_peers, bool) or max_peers < 0:
            raise TypeError("max_peers must be a non-negative int")
        if firewall is not None and not callable(firewall):
            raise TypeError("firewall must be callable")
        self._pump = Pump(self._dispatch)
        self._native = _native.Swarm(
            self._pump.queue,
            seed=s,
            secret_key=sk,
            max_peers=max_peers,
            max_parallel=max_parallel,
            firewall=firewall,
            bootstrap=check_bootstrap(bootstrap),
            host=host,
            port=port,
            ready_timeout=float(ready_timeout),
        )
        self._id: Optional[int] = None
        self._streams: Set[ConnectionStream] = set()
        self._discoveries: Dict[bytes, PeerDiscovery] = {}
        self._destroyed = False
        self.connections = _Connections(self)
        self._pump.attach()

    def _attach(self) -> None:
        self._pump.attach()
        self._loop = self._pump.loop

    # -- events -------------------------------------------------------------------------------
    def _dispatch(self, ev: Ev) -> None:
        kind = ev[0]
        if kind == "connection":
            conn = Connection(ev[2], self._pump)
            info = PeerInfo(self, ev[3]) if ev[3] is not None else None
            conn.info = info
            for s in list(self._streams):
                s._put((conn, info))
            self.emit("connection", conn, info)
        elif kind == "update":
            self.emit("update")
        elif kind == "ban":
            self.emit("ban", PeerInfo(self, ev[2]))

    def _stream(self) -> ConnectionStream:
        self._attach()
        s = ConnectionStream(self)
        for c in list(self._pump.conns.values()):  # open ones first, then new ones
            if not c.closed:
                s._put((c, c.info))
        if self._destroyed:
            s._put(None)
        else:
            self._streams.add(s)
        return s

    # -- lifecycle ------------------------------------------------------------------------------
    async def ready(self) -> None:
        """Waits until the DHT node is bootstrapped (raises e.g. :class:`BootstrapTimeoutError`)."""
        self._attach()
        await self._native.ready()

    async def __aenter__(self) -> "P2Pswarm":
        await self.ready()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.destroy()

    async def destroy(self) -> None:
        """Leaves every topic, closes every connection and the DHT node (idempotent)."""
        self._attach()
        if not self._destroyed:
            self._destroyed = True
            await self._native.destroy()
        # Let the close events of the connections arrive, then stop pumping.
        await asyncio.sleep(0)
        self._pump.close()
        for s in list(self._streams):
            s._put(None)
        self._streams.clear()

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    # -- topics and peers -----------------------------------------------------------------------
    def join(self, topic: BytesLike, server: bool = True, client: bool = True) -> PeerDiscovery:
        """Starts discovering peers on ``topic`` (32 bytes): ``server`` announces and accepts,
        ``client`` looks up and connects. Returns a :class:`PeerDiscovery`."""
        t = check_bytes("topic", topic)
        check_bool("server", server)
        check_bool("client", client)
        self._attach()
        d = PeerDiscovery(self, self._native.join(t, server, client))
        self._discoveries[t] = d
        return d

    async def leave(self, topic: BytesLike) -> None:
        """Stops discovering ``topic`` (existing connections stay)."""
        t = check_bytes("topic", topic)
        self._attach()
        self._discoveries.pop(t, None)
        await self._native.leave(t)

    def join_peer(self, public_key: BytesLike) -> None:
        """Keeps a connection to the peer with this 32-byte key (reconnecting)."""
        self._attach()
        self._native.join_peer(check_bytes("public_key", public_key))

    def leave_peer(self, public_key: BytesLike) -> None:
        """Stops keeping a connection to the peer."""
        self._native.leave_peer(check_bytes("public_key", public_key))

    def status(self, topic: BytesLike) -> Optional[TopicStatus]:
        """The discovery state of ``topic``, ``None`` when not joined."""
        s = self._native.status(check_bytes("topic", topic))
        return None if s is None else TopicStatus(*s)

    async def listen(self) -> None:
        """Accepts connections (on the swarm's key) without joining a topic."""
        self._attach()
        await self._native.listen()

    async def flush(self) -> bool:
        """Waits for pending announces, lookups and connection attempts."""
        self._attach()
        return bool(await self._native.flush())

    async def suspend(self) -> None:
        """Suspends networking (e.g. when a mobile app goes to the background)."""
        self._attach()
        await self._native.suspend()

    async def resume(self) -> None:
        """Resumes networking after :meth:`suspend`."""
        self._attach()
        await self._native.resume()

    # -- properties -----------------------------------------------------------------------------
    @property
    def public_key(self) -> bytes:
        """Our 32-byte public key."""
        return self._native.public_key

    @property
    def connecting(self) -> int:
        """Connection attempts in progress."""
        return self._native.connecting

    @property
    def peers(self) -> Dict[bytes, PeerInfo]:
        """Known peers: public key → :class:`PeerInfo`."""
        return {t[0]: PeerInfo(self, t) for t in self._native.peers()}

    def peer(self, public_key: BytesLike) -> Optional[PeerInfo]:
        """One peer's :class:`PeerInfo` (``None`` if unknown)."""
        t = self._native.peer(check_bytes("public_key", public_key))
        return None if t is None else PeerInfo(self, t)

    @property
    def dht(self) -> Any:
        """The swarm's DHT node as a :class:`p2pswarm.dht.DHT`."""
        from .dht import DHT

        return DHT._from_swarm(self)

    def __repr__(self) -> str:
        return f"<P2Pswarm destroyed={self._destroyed}>"
