"""The clients the tests talk to the server under test with: raw HTTP/1.1 over a socket, httpx and WebSockets.

The tests import these helpers as `from clients import ...` (conftest.py puts this folder on sys.path).
Like the rest of the suite, nothing here imports from any server. `server` is the conftest's
ServerUnderTest (or the shared server): its `port`, `url()`, `ws_url()`, `state()` and `state_dir`.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import uuid
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as _ws_connect

HOST = '127.0.0.1'
TIMEOUT = 10  # seconds for a connection, a read and an answer


def key() -> str:
    """A fresh key for the records of one test (routes that record take it as `?key=`)."""
    return uuid.uuid4().hex[:12]


def state_file(server, name: str = 'http-file.bin') -> bytes:
    """A file the app wrote into the state dir at import time (apps/http_routes.py)."""
    return (Path(server.state_dir) / name).read_bytes()


def body_of(size: int) -> bytes:
    """A request body: every byte value, not periodic in the size of any usual buffer."""
    return bytes((i * 13 + (i >> 9)) % 256 for i in range(size))


# -- httpx ---------------------------------------------------------------------------------------------


def request_ok(server, target: str, method: str = 'GET', timeout: float = TIMEOUT, **kwargs) -> httpx.Response:
    """One request through httpx (`kwargs` for httpx.request), which must be answered with 200."""
    response = httpx.request(method, server.url(target), timeout=timeout, **kwargs)
    assert response.status_code == 200, response.text
    return response


def http2_get(server, target: str) -> httpx.Response:
    """A GET over HTTP/2 without TLS (h2c prior knowledge); skips the test when the server does not speak it."""
    try:
        with httpx.Client(http1=False, http2=True, timeout=TIMEOUT) as client:
            return client.get(server.url(target))
    except httpx.HTTPError as exc:
        pytest.skip(f'the server does not speak HTTP/2 without TLS (h2c prior knowledge): {exc!r}')


# -- raw HTTP/1.1 ----------------------------------------------------------------------------------------


def connect(server) -> socket.socket:
    """A new TCP connection to the server."""
    return socket.create_connection((HOST, server.port), timeout=TIMEOUT)


def request(target: str, close: bool = True) -> bytes:
    """A GET request head for `target`; with `close`, with Connection: close."""
    connection = 'Connection: close\r\n' if close else ''
    return f'GET {target} HTTP/1.1\r\nHost: x\r\n{connection}\r\n'.encode()


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b''
    while chunk := sock.recv(65536):
        data += chunk
    return data


def exchange(server, data: bytes) -> tuple[int, bytes]:
    """Send `data` (a request with Connection: close) on a new connection; the status and the raw rest of the answer."""
    with connect(server) as sock:
        sock.sendall(data)
        answer = read_all(sock)
    head, _, rest = answer.partition(b'\r\n\r\n')
    return int(head.split(b' ', 2)[1]), rest


def json_in(data: bytes) -> dict:
    """The JSON object in an answer, whatever its framing (a JSON object holds no CRLF)."""
    text = data.decode()
    return json.loads(text[text.index('{') : text.rindex('}') + 1])


def reset_on_close(sock: socket.socket) -> None:
    """SO_LINGER with a zero timeout: close() sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))


class RawResponse(NamedTuple):
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in the order received
    body: bytes
    framing: str  # 'chunked', 'length', 'none' (a status without body) or 'close' (delimited by EOF)
    complete: bool  # the framing said the body ended: content-length reached or the final chunk received

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


class Reader:
    """Reads a response from a socket as the server framed it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b''

    def fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def until(self, separator: bytes) -> bytes | None:
        while separator not in self.buffer:
            if not self.fill():
                return None
        part, _, self.buffer = self.buffer.partition(separator)
        return part

    def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self.fill():
                return None
        part, self.buffer = self.buffer[:size], self.buffer[size:]
        return part

    def rest(self) -> bytes:
        """Everything up to EOF."""
        while self.fill():
            pass
        rest, self.buffer = self.buffer, b''
        return rest


def read_head(reader: Reader) -> tuple[int, list[tuple[str, str]]]:
    """The status and the header fields (names lower-cased, in the order received) of a response."""
    head = reader.until(b'\r\n\r\n')
    assert head is not None, 'the connection closed before a response head'
    status_line, *lines = head.decode('latin-1').split('\r\n')
    headers = [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(':') for line in lines)]
    return int(status_line.split(' ')[1]), headers


def read_chunks(reader: Reader, stop_after: bytes | None = None) -> tuple[bytes, bool]:
    """A chunked body: its data and whether the final chunk came. With `stop_after`, return once that much came."""
    body = b''
    while (size_line := reader.until(b'\r\n')) is not None:
        size = int(size_line.split(b';')[0], 16)
        if size == 0:
            while (trailer := reader.until(b'\r\n')) not in (None, b''):
                pass
            return body, trailer is not None
        data = reader.exactly(size + 2)
        if data is None:
            return body + reader.buffer, False
        body += data[:-2]
        if stop_after is not None and len(body) >= len(stop_after):
            return body, False
    return body, False


def read_response(reader: Reader) -> RawResponse:
    """A whole response, its body read as its framing says."""
    status, headers = read_head(reader)
    names = dict(headers)
    if status in {204, 304} or status < 200:
        return RawResponse(status, headers, b'', 'none', True)
    if 'chunked' in names.get('transfer-encoding', '').lower():
        body, complete = read_chunks(reader)
        return RawResponse(status, headers, body, 'chunked', complete)
    if 'content-length' in names:
        data = reader.exactly(int(names['content-length']))
        if data is None:
            return RawResponse(status, headers, reader.buffer, 'length', False)
        return RawResponse(status, headers, data, 'length', True)
    return RawResponse(status, headers, reader.rest(), 'close', True)


def raw_get(server, target: str, close: bool = True) -> RawResponse:
    """One GET request on a new connection, its response read as sent."""
    with connect(server) as sock:
        sock.sendall(request(target, close))
        return read_response(Reader(sock))


# -- WebSockets -------------------------------------------------------------------------------------------


def websocket(server, path: str, **options) -> ClientConnection:
    """A WebSocket client connection to `path` (websockets.sync.client.connect `options`)."""
    options = {'open_timeout': TIMEOUT, 'close_timeout': TIMEOUT, **options}
    return _ws_connect(server.ws_url(path), **options)


def recv_json(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=TIMEOUT))


def first_message(server, path: str) -> str | bytes:
    """Open a WebSocket to `path`; the first message the app sends."""
    with websocket(server, path) as ws:
        return ws.recv(timeout=TIMEOUT)


def recorded_after_close(server, path: str, greeting: str, name: str) -> object:
    """Open a WebSocket to `path`, check the app's first message is `greeting`, close (waiting 2 s at most);
    what the app then recorded under `name`."""
    with websocket(server, path, close_timeout=2) as ws:
        assert ws.recv(timeout=TIMEOUT) == greeting
    return server.state(name, timeout=TIMEOUT)


def ws_handshake(server, path: str, end: bytes = b'\r\n\r\n') -> tuple[socket.socket, bytes]:
    """Open a WebSocket by hand; the socket and the response head up to `end` (the blank line)."""
    sock = connect(server)
    nonce = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f'GET {path} HTTP/1.1\r\nHost: {HOST}:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
        f'Sec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode()
    )
    head = b''
    while end not in head:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            sock.close()
            pytest.fail(f'no answer within {TIMEOUT} s: the client was left waiting')
        if not chunk:
            break
        head += chunk
    return sock, head
