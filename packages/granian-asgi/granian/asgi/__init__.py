"""ASGI 3 for granian: serve FastAPI, Starlette, Django and other ASGI applications.

HTTP and lifespan follow ASGI spec 2.4. Interface `asgi` runs the lifespan protocol in each worker;
`asginl` skips it.
"""

from __future__ import annotations

from granian._core import ClientDisconnected

from ._lifespan import Lifespan, LifespanFailed
from ._version import __version__
from ._worker import create_worker

__all__ = ['ClientDisconnected', 'Lifespan', 'LifespanFailed', '__version__', 'create_worker']
