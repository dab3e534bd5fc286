"""RSGI for granian: the public RSGI types and the glue that serves RSGI applications.

Implements RSGI 1.6 over HTTP and WebSockets (see spec/ in the granian repository).
"""

from __future__ import annotations

from ._types import Scope, WebsocketMessage, WebsocketMessageType, WebsocketTransport
from ._version import __version__
from ._worker import create_worker

from granian._core import (  # isort: skip
    RSGIHeaders as Headers,
    RSGIHTTPProtocol as HTTPProtocol,
    RSGIProtocolClosed as ProtocolClosed,
    RSGIProtocolError as ProtocolError,
    RSGIWebsocketProtocol as WebsocketProtocol,
)

__all__ = [
    'HTTPProtocol',
    'Headers',
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
