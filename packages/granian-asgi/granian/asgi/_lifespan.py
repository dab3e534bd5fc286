"""The ASGI lifespan protocol, run once per worker around serving."""

from __future__ import annotations

import asyncio
from typing import Any

from granian.errors import FatalError
from granian.log import logger

from ._scope import ASGI_INFO


class LifespanFailed(FatalError):
    """The app reported `lifespan.startup.failed`: the worker must not serve."""


class Lifespan:
    """Drives `lifespan.startup` and `lifespan.shutdown` for one app on one event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        #: Shared with the app through the lifespan scope; request scopes get a copy.
        self.state: dict[str, Any] = {}
        self.supported = True
        self._events: asyncio.Queue[dict[str, Any]] | None = None
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        """Run startup; raises LifespanFailed when the app reports a failure."""
        loop = asyncio.get_running_loop()
        self._events = asyncio.Queue()
        self._replies = {'startup': loop.create_future(), 'shutdown': loop.create_future()}
        scope = {'type': 'lifespan', 'asgi': dict(ASGI_INFO), 'state': self.state}
        self._task = loop.create_task(self._run(scope))
        await self._events.put({'type': 'lifespan.startup'})
        reply = await self._replies['startup']
        if reply['type'] == 'lifespan.startup.failed':
            message = reply.get('message') or 'no reason given'
            raise LifespanFailed(f'ASGI lifespan startup failed: {message}')

    async def shutdown(self) -> None:
        """Run shutdown (after the worker drained); failures are logged."""
        if not self.supported or self._events is None or self._task is None or self._task.done():
            return
        await self._events.put({'type': 'lifespan.shutdown'})
        reply = await self._replies['shutdown']
        if reply['type'] == 'lifespan.shutdown.failed':
            logger.error('ASGI lifespan shutdown failed: %s', reply.get('message') or 'no reason given')

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:  # noqa: BLE001 - any failure means the app has no lifespan support
            if not self._replies['startup'].done():
                self.supported = False
                logger.warning(
                    'The ASGI app does not support lifespan (%s: %s); serving without it. '
                    "Use the 'asginl' interface to skip lifespan.",
                    type(exc).__name__,
                    exc,
                )
                self._replies['startup'].set_result({'type': 'lifespan.startup.complete'})
            elif not self._replies['shutdown'].done():
                logger.error('ASGI lifespan raised %s: %s', type(exc).__name__, exc)
                self._replies['shutdown'].set_result({'type': 'lifespan.shutdown.complete'})
        else:
            # The app returned: whatever it did not answer is answered for it.
            for reply in self._replies.values():
                if not reply.done():
                    reply.set_result({'type': 'lifespan.shutdown.complete'})

    async def _receive(self) -> dict[str, Any]:
        assert self._events is not None
        return await self._events.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get('type', '')
        phase = kind.split('.')[1] if kind.count('.') == 2 and kind.startswith('lifespan.') else ''
        if phase not in self._replies or kind.rsplit('.', 1)[1] not in ('complete', 'failed'):
            raise RuntimeError(
                f"Unexpected ASGI message '{kind}': a lifespan app sends 'lifespan.startup.complete', "
                "'lifespan.startup.failed', 'lifespan.shutdown.complete' or 'lifespan.shutdown.failed'"
            )
        reply = self._replies[phase]
        if reply.done():
            raise RuntimeError(f"Unexpected ASGI message '{kind}': lifespan {phase} was already answered")
        reply.set_result(message)
