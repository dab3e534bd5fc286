"""The same small routes for `rsgi`, `asgi` and `wsgi`, for the access log tests.

- `/hello`: 200, body `hello`, response header `x-trace: abc`
- `/stream`: 200, streamed in three chunks (`STREAM_SIZE` bytes in all)
- `/slow`: 200 after 0.3 s
- `/wait`: 200 after 3 s (the client leaves first)
- `/boom`: the app raises before responding
- `/ws` (rsgi, asgi): a WebSocket that is accepted and closed; `/ws-hold` (rsgi) closes after the
  client's first message
- `/exit` (rsgi): the worker process exits at once (code 3)
"""

from __future__ import annotations

import asyncio
import os
import time

STREAM_CHUNKS = (b'a' * 1000, b'b' * 2000, b'c' * 3)
STREAM_SIZE = sum(len(chunk) for chunk in STREAM_CHUNKS)


async def _before_answering(path: str) -> None:
    """What the async apps do before answering `path`: fail, or take their time."""
    if path == '/boom':
        raise RuntimeError('boom')
    if path == '/slow':
        await asyncio.sleep(0.3)
    if path == '/wait':
        await asyncio.sleep(3)


async def rsgi(scope, proto):
    if scope.proto == 'ws':
        transport = await proto.accept()
        await transport.send_str('hi')
        if scope.path == '/ws-hold':
            await transport.receive()
        proto.close(1000)
        return
    path = scope.path
    if path == '/exit':
        os._exit(3)
    if path == '/stream':
        transport = proto.response_stream(200, [('content-type', 'text/plain')])
        for chunk in STREAM_CHUNKS:
            await transport.send_bytes(chunk)
        return
    await _before_answering(path)
    proto.response_str(200, [('content-type', 'text/plain'), ('x-trace', 'abc')], 'hello')


async def asgi(scope, receive, send):
    if scope['type'] == 'lifespan':
        return  # served without lifespan
    if scope['type'] == 'websocket':
        await receive()
        await send({'type': 'websocket.accept'})
        await send({'type': 'websocket.send', 'text': 'hi'})
        await send({'type': 'websocket.close', 'code': 1000})
        return
    path = scope['path']
    if path == '/stream':
        await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]})
        for chunk in STREAM_CHUNKS:
            await send({'type': 'http.response.body', 'body': chunk, 'more_body': True})
        await send({'type': 'http.response.body', 'body': b''})
        return
    await _before_answering(path)
    headers = [(b'content-type', b'text/plain'), (b'x-trace', b'abc')]
    await send({'type': 'http.response.start', 'status': 200, 'headers': headers})
    await send({'type': 'http.response.body', 'body': b'hello'})


def wsgi(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return iter(STREAM_CHUNKS)
    if path == '/boom':
        raise RuntimeError('boom')
    if path == '/slow':
        time.sleep(0.3)
    if path == '/wait':
        time.sleep(3)
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Trace', 'abc')])
    return [b'hello']
