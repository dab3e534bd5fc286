"""A typed RSGI application: every object the server passes is annotated with the `granian.rsgi` protocols.

`mypy --strict main.py` and `pyright main.py` check it. Routes:

- `GET /?name=...`        a greeting (`response_str`)
- `POST /echo`            the request body back, read chunk by chunk (`async for`, `response_bytes`)
- `POST /json`            a JSON summary of the request, the body read whole (`await protocol()`)
- `GET /stream?lines=N`   N lines, streamed (`response_stream`)
- `GET /static/NAME`      a file from `static/` (`response_file`)
- `GET /stats`            what this worker served
- WebSocket `/ws`         echoes every text and binary message; other paths are refused
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import parse_qs

from granian.rsgi import (
    App,
    HTTPProtocol,
    LifecycleAppObject,
    ProtocolClosed,
    Scope,
    WebsocketMessageType,
    WebsocketProtocol,
    WebsocketTransport,
)

STATIC = Path(__file__).resolve().parent / 'static'
TEXT = [('content-type', 'text/plain; charset=utf-8')]
JSON = [('content-type', 'application/json')]
MAX_STREAM_LINES = 1000


def query_param(scope: Scope, name: str, default: str) -> str:
    """The first value of query parameter `name`."""
    return parse_qs(scope.query_string).get(name, [default])[0]


def not_found(protocol: HTTPProtocol) -> None:
    protocol.response_str(404, TEXT, 'not found\n')


async def hello(scope: Scope, protocol: HTTPProtocol | WebsocketProtocol) -> None:
    """The plain application form on its own (serve it as `main:hello`): greet over HTTP, refuse WebSockets."""
    if isinstance(protocol, WebsocketProtocol):
        protocol.close(403)
        return
    protocol.response_str(200, TEXT, f'Hello, {query_param(scope, "name", "world")}!\n')


async def echo_body(scope: Scope, protocol: HTTPProtocol) -> None:
    """Answer with the request body, read as it arrives."""
    chunks: list[bytes] = []
    async for chunk in protocol:
        chunks.append(chunk)
    content_type = scope.headers.get('content-type', 'application/octet-stream')
    protocol.response_bytes(200, [('content-type', content_type)], b''.join(chunks))


async def describe(scope: Scope, protocol: HTTPProtocol) -> None:
    """Answer with a JSON summary of the request."""
    body = await protocol()
    summary = {
        'method': scope.method,
        'path': scope.path,
        'http_version': scope.http_version,
        'user_agent': scope.headers.get('user-agent'),
        'accept': scope.headers.get_all('accept'),
        'header_names': sorted(scope.headers.keys()),
        'body_bytes': len(body),
    }
    protocol.response_bytes(200, JSON, json.dumps(summary).encode())


async def stream_lines(scope: Scope, protocol: HTTPProtocol) -> None:
    """Stream numbered lines; stop early if the client leaves."""
    try:
        count = min(int(query_param(scope, 'lines', '3')), MAX_STREAM_LINES)
    except ValueError:
        protocol.response_str(400, TEXT, 'lines must be an integer\n')
        return
    transport = protocol.response_stream(200, TEXT)
    try:
        for number in range(1, count + 1):
            await transport.send_str(f'line {number}\n')
    except ProtocolClosed:
        return


def static_file(scope: Scope, protocol: HTTPProtocol) -> None:
    """Serve a file of `static/`; nothing outside it."""
    file = (STATIC / scope.path.removeprefix('/static/')).resolve()
    if file.parent != STATIC or not file.is_file():
        not_found(protocol)
        return
    protocol.response_file(200, TEXT, file)


async def echo_websocket(transport: WebsocketTransport) -> None:
    """Send every message back as it came, until the client closes."""
    while True:
        message = await transport.receive()
        if message.kind == WebsocketMessageType.close:
            return
        if isinstance(message.data, str):
            await transport.send_str(message.data)
        elif isinstance(message.data, bytes):
            await transport.send_bytes(message.data)


class TypedApp:
    """The application object: `__rsgi__` serves, the hooks run a per-worker background task."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.started = time.time()
        self.clock = time.strftime('%H:%M:%S')
        self._clock_task: asyncio.Task[None] | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the clock task; it runs once the worker serves."""
        self.started = time.time()
        self._clock_task = loop.create_task(self._tick())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop the clock task and wait for it (the loop is not running here, except in an embedded server)."""
        task, self._clock_task = self._clock_task, None
        if task is None:
            return
        task.cancel()
        if not loop.is_running():
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))

    async def _tick(self) -> None:
        while True:
            self.clock = time.strftime('%H:%M:%S')
            await asyncio.sleep(1)

    async def __rsgi__(self, scope: Scope, protocol: HTTPProtocol | WebsocketProtocol) -> None:
        self.requests[scope.proto] = self.requests.get(scope.proto, 0) + 1
        if isinstance(protocol, WebsocketProtocol):
            await self.websocket(scope, protocol)
        else:
            await self.http(scope, protocol)

    async def http(self, scope: Scope, protocol: HTTPProtocol) -> None:
        path, method = scope.path, scope.method
        if path == '/' and method == 'GET':
            await hello(scope, protocol)
        elif path == '/echo' and method == 'POST':
            await echo_body(scope, protocol)
        elif path == '/json' and method == 'POST':
            await describe(scope, protocol)
        elif path == '/stream' and method == 'GET':
            await stream_lines(scope, protocol)
        elif path.startswith('/static/') and method == 'GET':
            static_file(scope, protocol)
        elif path == '/stats' and method == 'GET':
            stats = {'requests': self.requests, 'uptime': round(time.time() - self.started, 3), 'clock': self.clock}
            protocol.response_str(200, JSON, json.dumps(stats))
        else:
            not_found(protocol)

    async def websocket(self, scope: Scope, protocol: WebsocketProtocol) -> None:
        if scope.path != '/ws':
            protocol.close(404)
            return
        transport = await protocol.accept()
        await echo_websocket(transport)


app: LifecycleAppObject = TypedApp()
plain: App = hello
