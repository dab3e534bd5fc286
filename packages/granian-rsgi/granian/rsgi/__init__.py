"""RSGI for granian: the public RSGI types and the glue that serves RSGI applications.

Implements RSGI 1.6 over HTTP and WebSockets (see spec/ in the granian repository). The types are
typing protocols (`_types.py`) for annotating applications; the server passes native objects that
satisfy them.
"""

from __future__ import annotations

from ._types import (
    App,
    AppObject,
    Headers,
    HTTPProtocol,
    HTTPStreamTransport,
    LifecycleAppObject,
    Scope,
    WebsocketMessage,
    WebsocketMessageType,
    WebsocketProtocol,
    WebsocketTransport,
)
from ._version import __version__
from ._worker import create_worker

from granian._core import (  # isort: skip
    RSGIProtocolClosed as ProtocolClosed,
    RSGIProtocolError as ProtocolError,
)

__all__ = [
    'App',
    'AppObject',
    'HTTPProtocol',
    'HTTPStreamTransport',
    'Headers',
    'LifecycleAppObject',
    'ProtocolClosed',
    'ProtocolError',
    'Scope',
    'WebsocketMessage',
    'WebsocketMessageType',
    'WebsocketProtocol',
    'WebsocketTransport',
    '__version__',
    'create_worker',
]
