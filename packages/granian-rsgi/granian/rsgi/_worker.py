"""Serving an RSGI application in one worker process."""

from __future__ import annotations

import asyncio
from typing import Any

from granian._core import RSGIWorker
from granian.log import logger


class RSGIApplicationWorker:
    """Runs one RSGI app: `__rsgi_init__` before serving, `__rsgi_del__` after the drain.

    Both hooks get the worker's loop while it is not running (spec/rsgi.md#app-init, #app-del), so an
    app can run async set-up or clean-up on it with `loop.run_until_complete`; the embedded server,
    which serves on a loop it does not own, calls them with the loop running.
    """

    def __init__(self, app: Any, event_loop: asyncio.AbstractEventLoop, listener_fd: int, settings: Any) -> None:
        self.app = app
        self.loop = event_loop
        self.callback = getattr(app, '__rsgi__', app)
        if not callable(self.callback):
            raise TypeError(f'{settings.target!r} is not an RSGI application (it is not callable)')
        self.core = RSGIWorker(listener_fd, settings)

    def start(self) -> None:
        """Call the app's init hook and start serving; the loop is not running yet (the hook may run it)."""
        init = getattr(self.app, '__rsgi_init__', None)
        if init is not None:
            init(self.loop)
        self.core.serve(self.callback, self.loop)

    async def start_serving(self) -> None:
        """`start()` on a running loop (the embedded server): the init hook is called with it running."""
        self.start()

    def requests_received(self) -> int:
        """Requests received since serving started."""
        return self.core.requests_received()

    async def stop(self) -> None:
        """Stop accepting and drain in-flight requests."""
        await self.core.shutdown()

    def finish(self) -> None:
        """Call the app's teardown hook; the worker's loop has stopped serving."""
        teardown = getattr(self.app, '__rsgi_del__', None)
        if teardown is not None:
            try:
                teardown(self.loop)
            except Exception:  # noqa: BLE001 - the app's teardown must not stop the worker's exit
                logger.exception('__rsgi_del__ raised an exception')


def create_worker(
    app: Any, event_loop: asyncio.AbstractEventLoop, listener_fd: int, settings: Any
) -> RSGIApplicationWorker:
    """The interface hook the granian worker process calls."""
    return RSGIApplicationWorker(app, event_loop, listener_fd, settings)
