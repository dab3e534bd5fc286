"""Serving a WSGI application in one worker process."""

from __future__ import annotations

import asyncio
from typing import Any

from granian._core import WSGIWorker

from ._file_wrapper import FileWrapper


class WSGIApplicationWorker:
    """Runs one WSGI app on the core's blocking thread pool."""

    def __init__(self, app: Any, event_loop: asyncio.AbstractEventLoop, listener_fd: int, settings: Any) -> None:
        if not callable(app):
            raise TypeError(f'{settings.target!r} is not a WSGI application (it is not callable)')
        self.app = app
        self.loop = event_loop
        self.core = WSGIWorker(listener_fd, settings)

    def start(self) -> None:
        """Start serving."""
        self.core.serve(self.app, self.loop, FileWrapper)

    async def start_serving(self) -> None:
        """`start()` on a running loop."""
        self.start()

    def requests_received(self) -> int:
        """Requests received since serving started."""
        return self.core.requests_received()

    async def stop(self) -> None:
        """Stop accepting and drain in-flight requests."""
        await self.core.shutdown()

    def finish(self) -> None:
        """Nothing: WSGI has no shutdown hooks."""


def create_worker(
    app: Any, event_loop: asyncio.AbstractEventLoop, listener_fd: int, settings: Any
) -> WSGIApplicationWorker:
    """The interface hook the granian worker process calls."""
    return WSGIApplicationWorker(app, event_loop, listener_fd, settings)
