"""RSGI benchmark app; the routes are described in payloads.py."""

from payloads import BODIES, ensure_file

FILE = str(ensure_file())
TEXT = [('content-type', 'text/plain')]
BINARY = [('content-type', 'application/octet-stream')]


async def app(scope, proto):
    path = scope.path
    body = BODIES.get(path)
    if body is not None:
        proto.response_bytes(200, TEXT, body)
    elif path == '/echo':
        proto.response_bytes(200, BINARY, await proto())
    elif path == '/stream':
        transport = proto.response_stream(200, BINARY)
        async for chunk in proto:
            await transport.send_bytes(chunk)
    elif path == '/file':
        proto.response_file(200, BINARY, FILE)
    else:
        proto.response_bytes(404, TEXT, b'not found')
