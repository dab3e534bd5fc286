"""RSGI WebSocket test application: one path per behaviour under test."""

from __future__ import annotations

import asyncio

from granian.rsgi import WebsocketMessageType

# What the app saw, by path and client-chosen key, for tests to read back over HTTP.
REPORTS: dict[str, list] = {}


async def echo(transport) -> None:
    while True:
        message = await transport.receive()
        if message.kind == WebsocketMessageType.close:
            return
        if message.kind == WebsocketMessageType.bytes:
            await transport.send_bytes(message.data)
        else:
            await transport.send_str(message.data)


async def app(scope, proto):
    if scope.proto == 'http':
        if scope.path == '/report':
            import json

            proto.response_str(200, [('content-type', 'application/json')], json.dumps(REPORTS.get(scope.query_string)))
            return
        proto.response_str(200, [('content-type', 'text/plain')], f'http {scope.path}')
        return
    path = scope.path
    if path == '/reject':
        proto.close(403)
        return
    if path == '/reject-418':
        proto.close(418)
        return
    if path == '/no-accept':
        return
    if path == '/raise-before-accept':
        raise RuntimeError('refusing before accept')
    transport = await proto.accept()
    if path == '/echo':
        await echo(transport)
    elif path == '/scope':
        await transport.send_str(f'{scope.proto} {scope.path} {scope.query_string} {scope.http_version}')
        await echo(transport)
    elif path == '/raise-after-accept':
        raise RuntimeError('failing after accept')
    elif path == '/server-close':
        proto.close(4001)
        message = await transport.receive()
        REPORTS.setdefault(scope.query_string, []).append(int(message.kind))
    elif path == '/record-close':
        message = await transport.receive()
        REPORTS.setdefault(scope.query_string, []).append(int(message.kind))
    elif path == '/flood':
        chunk = b'x' * 65536
        sent = 0
        try:
            while sent < 512:
                await transport.send_bytes(chunk)
                sent += 1
        finally:
            REPORTS.setdefault(scope.query_string, []).append(sent)
    elif path == '/return-after-accept':
        return
    elif path == '/hold':
        await asyncio.sleep(3600)
