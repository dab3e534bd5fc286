"""RSGI benchmark app; the routes are described in payloads.py."""

from payloads import BODIES, ensure_file

from granian.rsgi import WebsocketMessageType

FILE = str(ensure_file())
TEXT = [('content-type', 'text/plain')]
BINARY = [('content-type', 'application/octet-stream')]


async def app(scope, proto):
    if scope.proto == 'ws':
        await websocket_echo(proto)
        return
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


async def websocket_echo(proto):
    """Every path: echo each message back, text as text and bytes as bytes."""
    transport = await proto.accept()
    while True:
        message = await transport.receive()
        if message.kind == WebsocketMessageType.string:
            await transport.send_str(message.data)
        elif message.kind == WebsocketMessageType.bytes:
            await transport.send_bytes(message.data)
        else:
            return
