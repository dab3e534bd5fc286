"""Routes that provoke the protocol errors (spec section 7).

Each records (or answers) `describe_exception` of what the server raised, so the tests can check that
the protocol error and the protocol-closed error are RuntimeError subclasses. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from routing import query, route, send_json
from state import describe_exception, record

ERRORS_WAIT = 10.0


async def outcome_of(call: Callable[[], Awaitable[object]], timeout: float = 5.0) -> dict:
    """What `await call()` did: returned, raised (described; the call itself may raise) or hung past `timeout`."""
    try:
        await asyncio.wait_for(call(), timeout)
    except asyncio.TimeoutError:
        return {'outcome': 'hung'}
    except Exception as exc:  # noqa: BLE001 - the test wants to see what was raised
        return {'outcome': 'raised', **describe_exception(exc)}
    return {'outcome': 'returned'}


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
    transport = await protocol.accept()
    await transport.send_str('ready')
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ERRORS_WAIT
    closed = False
    while not closed and (remaining := deadline - loop.time()) > 0:
        try:
            closed = (await asyncio.wait_for(transport.receive(), remaining)).kind == 0
        except asyncio.TimeoutError:
            break
    record(f'errors-ws-closed-{key}', {'closed': closed, **await outcome_of(lambda: transport.send_str('late'))})


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
