"""One app in the three interfaces (`rsgi`, `asgi`, `wsgi`) for the HTTP semantics tests.

- `/count`: how many requests reached the app before (itself not counted).
- `/whole`: reads the whole body, answers `len=<bytes>`.
- `/chunks`: reads the body chunk by chunk, answers `len=<bytes>`.
- `/catch`: reads the whole body; if the read fails, answers 422 `error=<exception class>`.
- `/stream`: a streamed response of three chunks `a`, `b`, `c` (no declared length).
- `/failures`: how many sends of `/stream` failed so far.
- `/headers`: answers `headers=<number of request headers>`.
- `/big`: a streamed response of 256 chunks of 1 MiB (for clients that never read).
- `/endless`: streams a chunk every 50 ms until a send fails (counted in `/failures`); RSGI and ASGI.
- `/no-content`: 204 with a body the app (wrongly) gives, which must not be sent.
- `/path/...`: answers `path=<the decoded path the app sees>`.
"""

from __future__ import annotations

import asyncio
import time

from granian.rsgi import ProtocolClosed

seen = 0
send_failures = 0
CHUNKS = (b'a', b'b', b'c')
MEGABYTE = b'm' * (1024 * 1024)
BIG_CHUNKS = 256


def _counted(path: str) -> None:
    global seen
    if path not in ('/count', '/failures'):
        seen += 1


def _simple(path: str, header_count: int) -> bytes | None:
    if path.startswith('/path/'):
        return f'path={path}'.encode()
    if path == '/count':
        return str(seen).encode()
    if path == '/failures':
        return str(send_failures).encode()
    if path == '/headers':
        return f'headers={header_count}'.encode()
    return None


async def rsgi(scope, proto):
    global send_failures
    _counted(scope.path)
    simple = _simple(scope.path, len(scope.headers.keys()))
    if simple is not None:
        proto.response_bytes(200, [], simple)
    elif scope.path == '/no-content':
        proto.response_bytes(204, [], b'oops')
    elif scope.path == '/chunks':
        size = 0
        async for chunk in proto:
            size += len(chunk)
        proto.response_str(200, [], f'len={size}')
    elif scope.path == '/catch':
        try:
            body = await proto()
        except ProtocolClosed as error:
            proto.response_str(422, [], f'error={type(error).__name__}')
        else:
            proto.response_str(200, [], f'len={len(body)}')
    elif scope.path == '/big':
        transport = proto.response_stream(200, [('content-type', 'application/octet-stream')])
        for _ in range(BIG_CHUNKS):
            try:
                await transport.send_bytes(MEGABYTE)
            except ProtocolClosed:
                return
    elif scope.path == '/endless':
        transport = proto.response_stream(200, [('content-type', 'text/plain')])
        while True:
            await asyncio.sleep(0.05)
            try:
                await transport.send_bytes(b'tick')
            except ProtocolClosed:
                send_failures += 1
                return
    elif scope.path == '/stream':
        transport = proto.response_stream(200, [('content-type', 'text/plain')])
        for chunk in CHUNKS:
            await asyncio.sleep(0.05)
            try:
                await transport.send_bytes(chunk)
            except ProtocolClosed:
                send_failures += 1
    else:
        body = await proto()
        proto.response_str(200, [], f'len={len(body)}')


async def _asgi_body(receive) -> bytes:
    body = b''
    while True:
        message = await receive()
        if message['type'] != 'http.request':
            raise ConnectionError(message['type'])
        body += message.get('body', b'')
        if not message.get('more_body'):
            return body


async def asgi(scope, receive, send):
    global send_failures
    if scope['type'] == 'lifespan':
        while (await receive())['type'] != 'lifespan.shutdown':
            await send({'type': 'lifespan.startup.complete'})
        await send({'type': 'lifespan.shutdown.complete'})
        return
    path = scope['path']
    _counted(path)
    status, body = 200, _simple(path, len(scope['headers']))
    if body is not None:
        pass
    elif path == '/no-content':
        status, body = 204, b'oops'
    elif path == '/catch':
        try:
            body = f'len={len(await _asgi_body(receive))}'.encode()
        except OSError as error:
            status, body = 422, f'error={type(error).__name__}'.encode()
    elif path == '/big':
        await send({'type': 'http.response.start', 'status': 200, 'headers': []})
        for _ in range(BIG_CHUNKS):
            await send({'type': 'http.response.body', 'body': MEGABYTE, 'more_body': True})
        await send({'type': 'http.response.body', 'body': b''})
        return
    elif path == '/endless':
        await send({'type': 'http.response.start', 'status': 200, 'headers': []})
        while True:
            await asyncio.sleep(0.05)
            try:
                await send({'type': 'http.response.body', 'body': b'tick', 'more_body': True})
            except OSError:
                send_failures += 1
                return
    elif path == '/stream':
        await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]})
        for chunk in CHUNKS:
            await asyncio.sleep(0.05)
            try:
                await send({'type': 'http.response.body', 'body': chunk, 'more_body': True})
            except OSError:
                send_failures += 1
        try:
            await send({'type': 'http.response.body', 'body': b''})
        except OSError:
            send_failures += 1
        return
    else:
        body = f'len={len(await _asgi_body(receive))}'.encode()
    await send({'type': 'http.response.start', 'status': status, 'headers': []})
    await send({'type': 'http.response.body', 'body': body})


def _wsgi_stream():
    for chunk in CHUNKS:
        time.sleep(0.05)
        yield chunk


def wsgi(environ, start_response):
    path = environ['PATH_INFO']
    _counted(path)
    headers = sum(1 for key in environ if key.startswith('HTTP_')) + ('CONTENT_TYPE' in environ)
    headers += 'CONTENT_LENGTH' in environ
    body = _simple(path, headers)
    status = '200 OK'
    if body is not None:
        pass
    elif path == '/no-content':
        start_response('204 No Content', [])
        return [b'oops']
    elif path == '/stream':
        start_response(status, [('Content-Type', 'text/plain')])
        return _wsgi_stream()
    elif path == '/big':
        start_response(status, [('Content-Type', 'application/octet-stream')])
        return (MEGABYTE for _ in range(BIG_CHUNKS))
    elif path == '/chunks':
        size = 0
        while chunk := environ['wsgi.input'].read(8192):
            size += len(chunk)
        body = f'len={size}'.encode()
    elif path == '/catch':
        try:
            body = f'len={len(environ["wsgi.input"].read())}'.encode()
        except OSError as error:
            status, body = '422 Unprocessable Content', f'error={type(error).__name__}'.encode()
    else:
        body = f'len={len(environ["wsgi.input"].read())}'.encode()
    start_response(status, [('Content-Length', str(len(body)))])
    return [body]
