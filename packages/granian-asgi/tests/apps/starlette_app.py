"""A Starlette application served by granian in the ASGI tests: FileResponse (pathsend) and disconnect polling.

A request whose query string has `send_log=PATH` gets the types of the messages the app sent written to PATH
as a JSON list, so a test can see that FileResponse chose `http.response.pathsend`.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

DISCONNECT_WAIT_LIMIT = 20.0


def write_marker(path: str | Path, data: object) -> None:
    """Write `data` as JSON to `path` atomically, so a test polling for the file never reads half of it."""
    path = Path(path)
    partial = path.with_name(path.name + '.partial')
    partial.write_text(json.dumps(data), encoding='utf-8')
    os.replace(partial, path)


class RecordSentMessageTypes:
    """Pure ASGI middleware: with `send_log=PATH` in the query string, write the sent message types to PATH."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        log_path = None
        if scope['type'] == 'http':
            values = parse_qs(scope['query_string'].decode('latin-1')).get('send_log')
            log_path = values[-1] if values else None
        if log_path is None:
            await self.app(scope, receive, send)
            return
        sent: list[str] = []

        async def recording_send(message) -> None:
            sent.append(message['type'])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            write_marker(log_path, sent)


async def file(request: Request) -> FileResponse:
    """Serve the file named by the `path` query parameter."""
    return FileResponse(request.query_params['path'], media_type='application/octet-stream')


async def wait_for_disconnect(request: Request) -> PlainTextResponse:
    """Poll `request.is_disconnected()` until the client leaves; record the outcome in the `marker` file."""
    marker = Path(request.query_params['marker'])
    write_marker(marker.with_name(marker.name + '.started'), 'started')
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DISCONNECT_WAIT_LIMIT
    polls = 0
    try:
        while loop.time() < deadline:
            polls += 1
            if await request.is_disconnected():
                write_marker(marker, {'outcome': 'disconnected', 'polls': polls})
                return PlainTextResponse('gone')
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        write_marker(marker, {'outcome': 'cancelled', 'polls': polls})
        raise
    write_marker(marker, {'outcome': 'timeout', 'polls': polls})
    return PlainTextResponse('timeout')


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse('hello from starlette')


app = Starlette(
    routes=[
        Route('/', hello),
        Route('/file', file),
        Route('/wait-for-disconnect', wait_for_disconnect),
    ],
    middleware=[Middleware(RecordSentMessageTypes)],
)
