"""One app per interface that reports what it sees of the connection (scheme, HTTP version), for TLS and
HTTP settings tests; the RSGI app answers `?pause` after 0.3 s, `?pause=S` after S seconds."""

from __future__ import annotations

import asyncio
import json


def _json(data: dict) -> bytes:
    return json.dumps(data).encode()


async def rsgi(scope, proto):
    if scope.proto == 'ws':
        transport = await proto.accept()
        message = await transport.receive()
        await transport.send_str(f'{scope.scheme} {message.data}')
        return
    if scope.query_string.startswith('pause'):
        await asyncio.sleep(float(scope.query_string.partition('=')[2] or 0.3))
    body = _json({'scheme': scope.scheme, 'http_version': scope.http_version})
    proto.response_bytes(200, [('content-type', 'application/json')], body)


async def lifespan(receive, send):
    """Completes startup and shutdown."""
    while True:
        message = await receive()
        kind = message['type'].rsplit('.', 1)[-1]
        await send({'type': f'lifespan.{kind}.complete'})
        if kind == 'shutdown':
            return


async def websocket_reply(receive, send, prefix: str) -> None:
    """Accepts, answers the first text message with `prefix` before it, and closes."""
    await receive()
    await send({'type': 'websocket.accept'})
    message = await receive()
    await send({'type': 'websocket.send', 'text': f'{prefix} {message.get("text")}'})
    await send({'type': 'websocket.close', 'code': 1000})


async def asgi(scope, receive, send):
    if scope['type'] == 'lifespan':
        return await lifespan(receive, send)
    if scope['type'] == 'websocket':
        return await websocket_reply(receive, send, scope['scheme'])
    tls = scope.get('extensions', {}).get('tls')
    body = _json({'scheme': scope['scheme'], 'http_version': scope['http_version'], 'tls': tls})
    if tls is not None:
        # Apps may change their scope; the next request on the connection must not see it.
        tls['client_cert_name'] = 'changed by the app'
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'application/json')]})
    await send({'type': 'http.response.body', 'body': body})


def wsgi(environ, start_response):
    body = _json(
        {
            'scheme': environ['wsgi.url_scheme'],
            'https': environ.get('HTTPS'),
            'http_version': environ['SERVER_PROTOCOL'],
            'ssl_client_cert': environ.get('SSL_CLIENT_CERT'),
            'ssl_client_s_dn': environ.get('SSL_CLIENT_S_DN'),
        }
    )
    environ['SSL_CLIENT_S_DN'] = 'changed by the app'
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
