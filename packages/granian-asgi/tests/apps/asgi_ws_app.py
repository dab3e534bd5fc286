"""ASGI WebSocket test application: one path per behaviour under test, with lifespan state."""

from __future__ import annotations

import asyncio
import json

# What the app saw, by the query string the test chose, for tests to read back over HTTP.
REPORTS: dict[str, list] = {}


def record(scope, value) -> None:
    REPORTS.setdefault(scope['query_string'].decode(), []).append(value)


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message['type'] == 'lifespan.startup':
            await send({'type': 'lifespan.startup.complete'})
        else:
            await send({'type': 'lifespan.shutdown.complete'})
            return


async def http(scope, receive, send) -> None:
    body = b'http'
    if scope['path'] == '/report':
        body = json.dumps(REPORTS.get(scope['query_string'].decode())).encode()
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'application/json')]})
    await send({'type': 'http.response.body', 'body': body})


def describe(scope) -> str:
    keys = ('type', 'scheme', 'path', 'raw_path', 'query_string', 'root_path', 'subprotocols', 'http_version')
    described = {key: scope[key].decode() if isinstance(scope[key], bytes) else scope[key] for key in keys}
    described['asgi'] = scope['asgi']
    described['extensions'] = sorted(scope['extensions'])
    described['headers'] = [[name.decode(), value.decode()] for name, value in scope['headers']]
    described['client_port_is_int'] = isinstance(scope['client'][1], int)
    described['server'] = list(scope['server'])
    described['state'] = scope.get('state')
    return json.dumps(described)


async def echo(receive, send) -> None:
    while True:
        message = await receive()
        if message['type'] == 'websocket.disconnect':
            return
        await send({'type': 'websocket.send', 'bytes': message.get('bytes'), 'text': message.get('text')})


async def app(scope, receive, send):
    if scope['type'] == 'lifespan':
        scope['state']['greeting'] = 'hi'
        await lifespan(receive, send)
        return
    if scope['type'] == 'http':
        await http(scope, receive, send)
        return
    path = scope['path']
    connect = await receive()
    assert connect['type'] == 'websocket.connect', connect
    if path == '/close-before-accept':
        await send({'type': 'websocket.close'})
        return
    if path == '/deny':
        await send({'type': 'websocket.http.response.start', 'status': 401, 'headers': [(b'x-reason', b'token')]})
        await send({'type': 'websocket.http.response.body', 'body': b'no ', 'more_body': True})
        await send({'type': 'websocket.http.response.body', 'body': b'entry'})
        return
    if path == '/no-accept':
        return
    if path == '/raise-before-accept':
        raise RuntimeError('refusing before accept')
    if path == '/slow-accept':
        await asyncio.sleep(1.0)
        await send({'type': 'websocket.accept'})
        record(scope, (await receive())['type'])
        return
    subprotocol = scope['subprotocols'][-1] if scope['subprotocols'] else None
    await send({'type': 'websocket.accept', 'subprotocol': subprotocol, 'headers': [(b'x-accepted', b'yes')]})
    if path == '/echo':
        await echo(receive, send)
    elif path == '/scope':
        await send({'type': 'websocket.send', 'text': describe(scope)})
        await echo(receive, send)
    elif path == '/server-close':
        await send({'type': 'websocket.close', 'code': 4002, 'reason': 'server says bye'})
        message = await receive()
        record(scope, [message['type'], message.get('code'), message.get('reason')])
    elif path == '/client-close':
        message = await receive()
        record(scope, [message['type'], message.get('code'), message.get('reason')])
    elif path == '/send-after-disconnect':
        message = await receive()
        try:
            await send({'type': 'websocket.send', 'text': 'too late'})
        except OSError as exc:
            record(scope, [message['type'], type(exc).__name__])
        else:
            record(scope, [message['type'], 'no error'])
    elif path == '/raise-after-accept':
        raise RuntimeError('failing after accept')
    elif path == '/return-after-accept':
        return
