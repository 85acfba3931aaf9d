"""Exception classes, one per error kind of the runtime.

Every class derives from :class:`P2PSwarmError`. Invalid arguments raise the built-in
:class:`ValueError` (wrong length or value) or :class:`TypeError` (wrong type).
"""

from ._native import (
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

__all__ = [
    "BindError",
    "BootstrapTimeoutError",
    "ClosedError",
    "ConnectError",
    "ConnectionRejectedError",
    "DHTError",
    "NotFoundError",
    "P2PSwarmError",
    "PeerNotFoundError",
    "StreamError",
    "UnsupportedError",
    "WouldDeadlockError",
]
