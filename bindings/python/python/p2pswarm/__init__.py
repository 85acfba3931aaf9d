"""p2pswarm: Hyperswarm networking for asyncio (a Rust port, wire-compatible with the JS stack).

Example::

    import asyncio
    from p2pswarm import P2Pswarm, testnet

    async def main():
        net = testnet(3)                         # local DHT: never the public network in tests
        topic = bytes(32)
        async with P2Pswarm(bootstrap=net.bootstrap) as a, P2Pswarm(bootstrap=net.bootstrap) as b:
            a.on("connection", lambda conn, info: conn.write(b"hello"))
            await a.join(topic, server=True, client=False).flushed()
            b.join(topic, server=False, client=True)
            await b.flush()
            async for conn, info in b.connections():
                print(await conn.read())
                break

    asyncio.run(main())

All protocol work runs on one background runtime thread; events and callbacks are delivered
on the asyncio loop's thread. The runtime is shut down at interpreter exit (``atexit``).
"""

import atexit as _atexit

from . import _native, dht, errors
from ._base import (
    READ_HIGH_WATER,
    WRITE_HIGH_WATER,
    Connection,
    ConnectionStream,
    KeyPair,
    Testnet,
    key_pair,
    testnet,
)
from ._swarm import P2Pswarm, PeerDiscovery, PeerInfo, TopicStatus
from .errors import (
    BindError,
    BootstrapTimeoutError,
    ClosedError,
    ConnectError,
    ConnectionRejectedError,
    DHTError,
    NotFoundError,
    P2PSwarmError,
    PeerNotFoundError,
    StreamError,
    UnsupportedError,
    WouldDeadlockError,
)

__version__: str = _native.__version__

#: Alias with the JS spelling.
Hyperswarm = P2Pswarm


def shutdown() -> None:
    """Stops the runtime thread now (also done at exit): every swarm, node and connection
    closes and later calls raise :class:`ClosedError`. Idempotent."""
    _native.shutdown()


_atexit.register(_native.shutdown)

__all__ = [
    "READ_HIGH_WATER",
    "WRITE_HIGH_WATER",
    "BindError",
    "BootstrapTimeoutError",
    "ClosedError",
    "ConnectError",
    "Connection",
    "ConnectionRejectedError",
    "ConnectionStream",
    "DHTError",
    "Hyperswarm",
    "KeyPair",
    "NotFoundError",
    "P2PSwarmError",
    "P2Pswarm",
    "PeerDiscovery",
    "PeerInfo",
    "PeerNotFoundError",
    "StreamError",
    "Testnet",
    "TopicStatus",
    "UnsupportedError",
    "WouldDeadlockError",
    "dht",
    "errors",
    "key_pair",
    "shutdown",
    "testnet",
]
