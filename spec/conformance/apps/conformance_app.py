"""The reference application of the RSGI conformance suite: one route per thing a test observes.

Import targets (the suite passes one as `{app}` and starts the server in this directory):

- `conformance_app:app`: an object with `__rsgi__`, `__rsgi_init__` and `__rsgi_del__` (and a
  `__call__` that must not be used, to check `__rsgi__` is preferred).
- `conformance_app:plain_app`: a plain coroutine function serving the same routes.

It uses RSGI only through the objects the server passes in and imports nothing from any server.
Routes are registered by the modules below with `route(path)`; a route is
`async def handler(scope, protocol)`; routes for `scope.proto == 'ws'` live under `/ws/`.
"""

from __future__ import annotations

import asyncio
import time

import app_routes  # noqa: F401 - registers its routes
import errors_routes  # noqa: F401 - registers its routes
import http_routes  # noqa: F401 - registers its routes
import scope_routes  # noqa: F401 - registers its routes
import ws_routes  # noqa: F401 - registers its routes
from app_routes import ENTRY_ROUTES
from routing import ROUTES, TEXT
from state import record


async def dispatch(scope, protocol, entry: str) -> None:
    """Run the route for `scope.path`; `entry` names the entry point the server called."""
    if scope.path in ENTRY_ROUTES:
        await ENTRY_ROUTES[scope.path](scope, protocol, entry)
        return
    handler = ROUTES.get(scope.path)
    if handler is None:
        if scope.proto == 'http':
            protocol.response_str(404, [*TEXT, ('x-entry', entry)], f'no route {scope.path}')
        else:
            protocol.close(404)
        return
    await handler(scope, protocol)


class ConformanceApp:
    """Serves RSGI through `__rsgi__` and records its lifecycle calls."""

    def __init__(self) -> None:
        self.init_loop: asyncio.AbstractEventLoop | None = None
        self.init_calls = 0
        self.called = False

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.init_loop = loop
        self.init_calls += 1
        record('init', {'running': loop.is_running(), 'loop': type(loop).__name__, 'calls': self.init_calls})

        async def scheduled_from_init() -> None:
            record('init-task', {'ran': True})

        loop.create_task(scheduled_from_init())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        running = loop.is_running()
        try:
            cleanup = loop.run_until_complete(asyncio.sleep(0, 'done'))
        except Exception as exc:  # noqa: BLE001 - the test wants to see whether async clean-up could run
            cleanup = f'raised {type(exc).__name__}'
        record(
            'del', {'same_loop': loop is self.init_loop, 'running': running, 'cleanup': cleanup, 'at': time.monotonic()}
        )

    async def __rsgi__(self, scope, protocol) -> None:
        if not self.called:
            self.called = True
            record('first-call', {'after_init': self.init_loop is not None})
        if scope.proto == 'http' and scope.path == '/lifecycle':
            current = asyncio.get_running_loop()
            protocol.response_str(200, TEXT, 'same' if current is self.init_loop else 'different')
            return
        await dispatch(scope, protocol, 'rsgi')

    async def __call__(self, scope, protocol) -> None:
        await dispatch(scope, protocol, 'call')


app = ConformanceApp()


async def plain_app(scope, protocol) -> None:
    await dispatch(scope, protocol, 'function')
