"""Routes for the application-level requirements: entry points, concurrency (spec section 2)."""

from __future__ import annotations

import asyncio
import time

from routing import TEXT, query, route
from state import record

CONCURRENCY_WAIT = 5.0  # seconds /app/wait waits for its event before it gives up
_EVENTS: dict[str, asyncio.Event] = {}


def _event(key: str) -> asyncio.Event:
    return _EVENTS.setdefault(key, asyncio.Event())


@route('/app/wait')
async def wait_for_event(scope, protocol) -> None:
    """Wait (bounded) for the event `key` that only /app/set sets: answers 'set' or 'timed out'."""
    key = query(scope).get('key', 'default')
    event = _event(key)
    record(f'app-waiting-{key}', True)
    try:
        await asyncio.wait_for(event.wait(), CONCURRENCY_WAIT)
    except asyncio.TimeoutError:
        protocol.response_str(200, TEXT, 'timed out')
    else:
        protocol.response_str(200, TEXT, 'set')
    finally:
        _EVENTS.pop(key, None)


@route('/app/set')
async def set_event(scope, protocol) -> None:
    """Set the event `key` an /app/wait request is waiting for."""
    _event(query(scope).get('key', 'default')).set()
    protocol.response_str(200, TEXT, 'ok')


@route('/app/after-response')
async def after_response(scope, protocol) -> None:
    """Answer, then keep running: records `app-after-response-<key>` once the awaitable goes on after answering."""
    key = query(scope).get('key', 'default')
    protocol.response_str(200, TEXT, 'answered')
    await asyncio.sleep(0.05)
    record(f'app-after-response-{key}', True)


@route('/app/slow')
async def slow(scope, protocol) -> None:
    """Records `app-slow-started-<key>`, sleeps `seconds` (default 1), answers, records `app-slow-<key>`."""
    key = query(scope).get('key', 'default')
    seconds = float(query(scope).get('seconds', '1'))
    record(f'app-slow-started-{key}', True)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        record(f'app-slow-{key}', {'outcome': 'cancelled', 'at': time.monotonic()})
        raise
    protocol.response_str(200, TEXT, 'slept')
    record(f'app-slow-{key}', {'outcome': 'finished', 'at': time.monotonic()})


async def http_entry(scope, protocol, entry: str) -> None:
    """Answer with the entry point the server called: 'rsgi' (`__rsgi__`), 'call' or 'function'."""
    protocol.response_str(200, [*TEXT, ('x-entry', entry)], entry)


async def ws_entry(scope, protocol, entry: str) -> None:
    """Accept, send the entry point the server called, close."""
    transport = await protocol.accept()
    await transport.send_str(entry)
    protocol.close(1000)


#: Routes that are told which entry point the server called (conformance_app.dispatch passes it).
ENTRY_ROUTES = {'/entry': http_entry, '/ws/entry': ws_entry}
