"""Routes that provoke the protocol errors (spec section 7).

Each records (or answers) `describe_exception` of what the server raised, so the tests can check that
the protocol error and the protocol-closed error are RuntimeError subclasses. Every wait is bounded.
"""

from __future__ import annotations

import asyncio

from routing import outcome_of, query, route, send_json
from state import record
from wsutil import ready_until_close, try_send

ERRORS_WAIT = 10.0


@route('/errors/body-twice')
async def body_twice(scope, protocol) -> None:
    """The protocol error: read the body whole, then again; answers what the second read did."""
    await protocol()
    send_json(protocol, await outcome_of(protocol))


@route('/errors/body-disconnect')
async def body_disconnect(scope, protocol) -> None:
    """The protocol-closed error: read a body whose client drops mid-body; records `errors-body-disconnect-<key>`."""
    key = query(scope).get('key', 'default')
    record(f'errors-body-disconnect-started-{key}', True)
    try:
        outcome = await outcome_of(protocol, ERRORS_WAIT)
    except asyncio.CancelledError:
        record(f'errors-body-disconnect-{key}', {'outcome': 'cancelled'})
        raise
    record(f'errors-body-disconnect-{key}', outcome)


@route('/ws/errors-send-after-close')
async def ws_send_after_close(scope, protocol) -> None:
    """The protocol-closed error: send after the client closed; records `errors-ws-closed-<key>`."""
    key = query(scope).get('key', 'default')
    transport, closed = await ready_until_close(protocol, ERRORS_WAIT)
    record(f'errors-ws-closed-{key}', {'closed': closed is not None, **await try_send(transport, 'late')})


@route('/ws/errors-concurrent-receive')
async def ws_concurrent_receive(scope, protocol) -> None:
    """The protocol error: a second receive() while one is pending; records `errors-ws-concurrent-<key>`."""
    key = query(scope).get('key', 'default')
    transport = await protocol.accept()
    first = asyncio.ensure_future(transport.receive())
    await asyncio.sleep(0.05)
    second = await outcome_of(transport.receive, 2)
    record(f'errors-ws-concurrent-{key}', second)
    await transport.send_str('recorded')
    try:
        await asyncio.wait_for(first, ERRORS_WAIT)
    except Exception:  # noqa: BLE001, S110 - only waiting for the client to go
        pass
