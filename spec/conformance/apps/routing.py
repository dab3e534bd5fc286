"""The route table of the reference app: `@route('/path')` registers `async def handler(scope, protocol)`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from state import describe_exception

Handler = Callable[..., Awaitable[None]]
ROUTES: dict[str, Handler] = {}
TEXT = [('content-type', 'text/plain; charset=utf-8')]
JSON = [('content-type', 'application/json')]


def route(path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if path in ROUTES:
            raise ValueError(f'route {path} registered twice')
        ROUTES[path] = handler
        return handler

    return register


def query(scope) -> dict[str, str]:
    """The query string as a dict (last value wins)."""
    return {key: values[-1] for key, values in parse_qs(scope.query_string, keep_blank_values=True).items()}


def send_json(protocol, value: object, status: int = 200) -> None:
    protocol.response_str(status, JSON, json.dumps(value))


def probe(fn: Callable[[], object]) -> object:
    """`fn()`, or {'raised': 'KeyError'} when it raises: one broken attribute does not hide the others."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the test wants to see any failure by name
        return {'raised': type(exc).__name__}


async def outcome_of(
    call: Callable[[], Awaitable[object]], timeout: float = 5.0, describe: Callable[[object], dict] | None = None
) -> dict:
    """What `await call()` did: returned (with `describe` of its result), raised (described; the call itself
    may raise) or hung past `timeout`."""
    try:
        result = await asyncio.wait_for(call(), timeout)
    except asyncio.TimeoutError:
        return {'outcome': 'hung'}
    except Exception as exc:  # noqa: BLE001 - the test wants to see what was raised
        return {'outcome': 'raised', **describe_exception(exc)}
    return {'outcome': 'returned', **(describe(result) if describe else {})}
