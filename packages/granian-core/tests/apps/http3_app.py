"""One app per interface for the HTTP/3 tests.

- `/info`: the HTTP version, scheme and (ASGI) TLS extension the app sees, and the worker's pid, as JSON.
- `/echo`: the request body back, with `x-length` the number of bytes read.
- `/stream`: a streamed response of three chunks, 50 ms apart, without a declared length.
- `/slow`: answers `slow` after 0.5 s (for shutdown under load).
- `/no-content`: 204.
- `/wait`: waits until the client is gone (RSGI, ASGI), which `/gone` then counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from tls_app import lifespan

CHUNKS = (b'one,', b'two,', b'three')
gone = 0


def _info(http_version: str, scheme: str, tls: object = None) -> bytes:
    return json.dumps({'http_version': http_version, 'scheme': scheme, 'tls': tls, 'pid': os.getpid()}).encode()


async def rsgi(scope, proto):
    global gone
    if scope.path == '/info':
        proto.response_bytes(200, [('content-type', 'application/json')], _info(scope.http_version, scope.scheme))
    elif scope.path == '/echo':
        body = await proto()
        proto.response_bytes(200, [('x-length', str(len(body)))], body)
    elif scope.path == '/stream':
        transport = proto.response_stream(200, [('content-type', 'text/plain')])
        for chunk in CHUNKS:
            await transport.send_bytes(chunk)
            await asyncio.sleep(0.05)
    elif scope.path == '/slow':
        await asyncio.sleep(0.5)
        proto.response_str(200, [], 'slow')
    elif scope.path == '/wait':
        await proto.client_disconnect()
        gone += 1
    elif scope.path == '/gone':
        proto.response_str(200, [], str(gone))
    elif scope.path == '/no-content':
        proto.response_empty(204, [])
    else:
        proto.response_empty(404, [])


async def _read(receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message['type'] == 'http.disconnect':
            raise ConnectionError('client gone')
        body.extend(message.get('body', b''))
        if not message.get('more_body'):
            return bytes(body)


async def asgi(scope, receive, send):
    global gone
    if scope['type'] == 'lifespan':
        return await lifespan(receive, send)
    path = scope['path']

    async def answer(status: int, body: bytes, headers=()) -> None:
        await send({'type': 'http.response.start', 'status': status, 'headers': list(headers)})
        await send({'type': 'http.response.body', 'body': body})

    if path == '/info':
        tls = scope.get('extensions', {}).get('tls')
        await answer(200, _info(scope['http_version'], scope['scheme'], tls), [(b'content-type', b'application/json')])
    elif path == '/echo':
        body = await _read(receive)
        await answer(200, body, [(b'x-length', str(len(body)).encode())])
    elif path == '/stream':
        await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]})
        for chunk in CHUNKS:
            await send({'type': 'http.response.body', 'body': chunk, 'more_body': True})
            await asyncio.sleep(0.05)
        await send({'type': 'http.response.body', 'body': b''})
    elif path == '/slow':
        await asyncio.sleep(0.5)
        await answer(200, b'slow')
    elif path == '/wait':
        while (await receive())['type'] != 'http.disconnect':
            pass
        gone += 1
    elif path == '/gone':
        await answer(200, str(gone).encode())
    elif path == '/no-content':
        await answer(204, b'')
    else:
        await answer(404, b'')


def wsgi(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/info':
        start_response('200 OK', [('Content-Type', 'application/json')])
        tls = {'https': environ.get('HTTPS')}
        return [_info(environ['SERVER_PROTOCOL'], environ['wsgi.url_scheme'], tls)]
    if path == '/echo':
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('x-length', str(len(body)))])
        return [body]
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])

        def chunks():
            for chunk in CHUNKS:
                yield chunk
                time.sleep(0.05)

        return chunks()
    if path == '/no-content':
        start_response('204 No Content', [])
        return []
    if path == '/slow':
        time.sleep(0.5)
        start_response('200 OK', [])
        return [b'slow']
    start_response('404 Not Found', [])
    return [b'']
