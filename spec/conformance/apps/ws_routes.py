"""WebSocket routes (spec section 6).

Routes that record state take a `key` query parameter, so every test reads its own record. Every wait
inside a route is bounded (WS_WAIT).
"""

from __future__ import annotations

import asyncio
import json

from routing import query, route
from state import describe_exception, record
from wsutil import (
    WS_WAIT,
    deadline_in,
    describe_message,
    ready_until_close,
    receive_by,
    receive_until_close,
    send,
    try_send,
)


def close_as_asked(scope, protocol) -> None:
    """close(status) with the query's `status`, or close() when the query has none."""
    status = query(scope).get('status')
    if status is None:
        protocol.close()
    else:
        protocol.close(int(status))


@route('/ws/accept')
async def ws_accept(scope, protocol) -> None:
    """Accept, send what accept() returned (whether it has the transport methods), wait for the close."""
    transport = await protocol.accept()
    methods = {name: callable(getattr(transport, name, None)) for name in ('receive', 'send_bytes', 'send_str')}
    await transport.send_str(json.dumps(methods))
    await receive_until_close(transport)


@route('/ws/reject')
async def ws_reject(scope, protocol) -> None:
    """close(status) before accept(), or close() when the query has no `status`."""
    close_as_asked(scope, protocol)


@route('/ws/describe')
async def ws_describe(scope, protocol) -> None:
    """Answer every message with a text message describing it; on kind 0 record `ws-describe-close-<key>`."""
    key = query(scope).get('key', 'default')
    transport = await protocol.accept()
    deadline = deadline_in(WS_WAIT)
    while True:
        try:
            message = await receive_by(transport, deadline)
        except Exception as exc:
            record(f'ws-describe-close-{key}', {'outcome': 'raised', **describe_exception(exc)})
            raise
        if message is None:
            record(f'ws-describe-close-{key}', {'outcome': 'timed out'})
            return
        described = describe_message(message)
        if message.kind == 0:
            record(f'ws-describe-close-{key}', {'outcome': 'received', **described})
            return
        await transport.send_str(json.dumps(described))


@route('/ws/echo')
async def ws_echo(scope, protocol) -> None:
    """Echo every message back with the kind it came in, until the client closes."""
    transport = await protocol.accept()
    deadline = deadline_in(WS_WAIT)
    while (message := await receive_by(transport, deadline)) is not None and message.kind != 0:
        if message.kind == 2:
            await transport.send_str(message.data)
        else:
            await transport.send_bytes(message.data)


SEQUENCE = ['one', b'two', 'thr\u20ace', b'\x00\xff']


@route('/ws/send')
async def ws_send(scope, protocol) -> None:
    """Send SEQUENCE (str with send_str, bytes with send_bytes) in order, then wait for the client to close."""
    transport = await protocol.accept()
    for item in SEQUENCE:
        await send(transport, item)
    await receive_until_close(transport)


@route('/ws/close')
async def ws_close(scope, protocol) -> None:
    """Accept, send 'open', then close(status), or close() when the query has no `status`."""
    transport = await protocol.accept()
    await transport.send_str('open')
    close_as_asked(scope, protocol)


@route('/ws/return')
async def ws_return(scope, protocol) -> None:
    """Accept, send 'open', and return without closing."""
    transport = await protocol.accept()
    await transport.send_str('open')


@route('/ws/no-accept')
async def ws_no_accept(scope, protocol) -> None:
    """Return without accepting or refusing."""
    record(f'ws-no-accept-{query(scope).get("key", "default")}', True)


@route('/ws/send-after-close')
async def ws_send_after_close(scope, protocol) -> None:
    """Send 'ready', wait for the client's close, then send again: records `ws-send-after-close-<key>`."""
    key = query(scope).get('key', 'default')
    transport, closed = await ready_until_close(protocol)
    record(
        f'ws-send-after-close-{key}',
        {
            'closed': closed,
            'send_str': await try_send(transport, 'late'),
            'send_bytes': await try_send(transport, b'late'),
        },
    )


@route('/ws/send-after-app-close')
async def ws_send_after_app_close(scope, protocol) -> None:
    """Accept, close(1000), then send at once (the socket is closed once close() returned) or after
    `wait` seconds: records `ws-send-after-app-close-<key>`."""
    key = query(scope).get('key', 'default')
    transport = await protocol.accept()
    protocol.close(1000)
    if wait := float(query(scope).get('wait', '0')):
        await asyncio.sleep(wait)
    record(
        f'ws-send-after-app-close-{key}',
        {'send_str': await try_send(transport, 'late'), 'send_bytes': await try_send(transport, b'late')},
    )
