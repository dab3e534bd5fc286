"""Serving an ASGI application in one worker process."""

from __future__ import annotations

import asyncio
from typing import Any

from granian._core import ASGIWorker

from ._lifespan import Lifespan


class ASGIApplicationWorker:
    """Runs one ASGI app: lifespan startup before serving, lifespan shutdown after the drain."""

    def __init__(self, app: Any, event_loop: asyncio.AbstractEventLoop, listener_fd: int, settings: Any) -> None:
        if not callable(app):
            raise TypeError(f'{settings.target!r} is not an ASGI application (it is not callable)')
        self.app = app
        self.loop = event_loop
        self.lifespan = Lifespan(app) if settings.interface == 'asgi' else None
        self.core = ASGIWorker(listener_fd, settings)

    def start(self) -> None:
        """Run lifespan startup (raises LifespanFailed), then start serving; the loop is not running."""
        self.loop.run_until_complete(self.start_serving())

    async def start_serving(self) -> None:
        """`start()` on a running loop (the embedded server)."""
        state = None
        if self.lifespan is not None:
            await self.lifespan.startup()
            state = self.lifespan.state
        self.core.serve(self.app, self.loop, state)

    def requests_received(self) -> int:
        """Requests received since serving started."""
        return self.core.requests_received()

    async def stop(self) -> None:
        """Drain, then run lifespan shutdown."""
        await self.core.shutdown()
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    def finish(self) -> None:
        """Nothing: lifespan shutdown needs the running loop, so `stop()` runs it."""


def create_worker(
    app: Any, event_loop: asyncio.AbstractEventLoop, listener_fd: int, settings: Any
) -> ASGIApplicationWorker:
    """The interface hook the granian worker process calls."""
    return ASGIApplicationWorker(app, event_loop, listener_fd, settings)
