"""ASGI benchmark app (with lifespan); the routes are described in payloads.py."""

from payloads import BODIES, FILE_SIZE, ensure_file

FILE = str(ensure_file())
BINARY = (b'content-type', b'application/octet-stream')
# Responses with a known size carry content-length, as frameworks send them, so no server falls back to chunking.
STARTS = {
    path: {
        'type': 'http.response.start',
        'status': 200,
        'headers': [(b'content-type', b'text/plain'), (b'content-length', str(len(body)).encode())],
    }
    for path, body in BODIES.items()
}
MESSAGES = {path: {'type': 'http.response.body', 'body': body} for path, body in BODIES.items()}
STREAM_START = {'type': 'http.response.start', 'status': 200, 'headers': [BINARY]}
FILE_START = {
    'type': 'http.response.start',
    'status': 200,
    'headers': [BINARY, (b'content-length', str(FILE_SIZE).encode())],
}
NOT_FOUND = {'type': 'http.response.start', 'status': 404, 'headers': [(b'content-length', b'0')]}


async def app(scope, receive, send):
    kind = scope['type']
    if kind == 'http':
        await http(scope, receive, send)
    elif kind == 'websocket':
        await websocket_echo(receive, send)
    elif kind == 'lifespan':
        while True:
            message = await receive()
            if message['type'] == 'lifespan.startup':
                await send({'type': 'lifespan.startup.complete'})
            elif message['type'] == 'lifespan.shutdown':
                await send({'type': 'lifespan.shutdown.complete'})
                return


async def http(scope, receive, send):
    path = scope['path']
    start = STARTS.get(path)
    if start is not None:
        await send(start)
        await send(MESSAGES[path])
    elif path == '/echo':
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get('body', b''))
            more = message.get('more_body', False)
        body = b''.join(chunks)
        headers = [BINARY, (b'content-length', str(len(body)).encode())]
        await send({'type': 'http.response.start', 'status': 200, 'headers': headers})
        await send({'type': 'http.response.body', 'body': body})
    elif path == '/stream':
        # Every chunk goes out with more_body=True and an empty message ends the body, so the response
        # is streamed however the server splits the request body.
        await send(STREAM_START)
        more = True
        while more:
            message = await receive()
            more = message.get('more_body', False)
            chunk = message.get('body', b'')
            if chunk:
                await send({'type': 'http.response.body', 'body': chunk, 'more_body': True})
        await send({'type': 'http.response.body', 'body': b''})
    elif path == '/file':
        await send(FILE_START)
        if 'http.response.pathsend' in (scope.get('extensions') or {}):
            await send({'type': 'http.response.pathsend', 'path': FILE})
        else:
            # Servers without pathsend: the app reads the file itself (a 50 KiB read from the page cache).
            with open(FILE, 'rb') as file:  # noqa: ASYNC230
                await send({'type': 'http.response.body', 'body': file.read()})
    else:
        await send(NOT_FOUND)
        await send({'type': 'http.response.body', 'body': b''})


async def websocket_echo(receive, send):
    """Every path: accept, then echo each message back (text as text, bytes as bytes)."""
    await receive()  # websocket.connect
    await send({'type': 'websocket.accept'})
    while True:
        message = await receive()
        if message['type'] != 'websocket.receive':
            return
        text = message.get('text')
        if text is not None:
            await send({'type': 'websocket.send', 'text': text})
        else:
            await send({'type': 'websocket.send', 'bytes': message.get('bytes')})
