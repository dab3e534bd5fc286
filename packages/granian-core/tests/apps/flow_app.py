"""An RSGI app for flow-control tests: `POST /upload` reads the whole body and answers its length,
`GET /stream` streams 16 KiB chunks (up to 64 MiB) while counting what it handed to the server, and
`GET /sent` answers that count."""

from __future__ import annotations

CHUNK = b'x' * 16384
LIMIT = 64 * 1024 * 1024
sent = 0


async def rsgi(scope, proto):
    global sent
    if scope.path == '/upload':
        body = await proto()
        proto.response_str(200, [], str(len(body)))
    elif scope.path == '/stream':
        sent = 0
        transport = proto.response_stream(200, [])
        while sent < LIMIT:
            await transport.send_bytes(CHUNK)
            sent += len(CHUNK)
    else:
        proto.response_str(200, [], str(sent))
