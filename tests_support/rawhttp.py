"""A tiny HTTP/1.x client over plain sockets, for tests that need byte-level control of the request."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import BinaryIO

from .server import HOST

MAX_LINE = 65536


@dataclass
class RawResponse:
    """One parsed HTTP/1.x response."""

    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b''

    def header(self, name: str) -> str | None:
        """Return the first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def connect(port: int, host: str = HOST, timeout: float = 10.0) -> socket.socket:
    """Open a TCP connection to the server with a read/write timeout."""
    return socket.create_connection((host, port), timeout=timeout)


def _read_line(reader: BinaryIO) -> bytes:
    line = reader.readline(MAX_LINE)
    if not line.endswith(b'\n'):
        raise ConnectionError(f'connection closed in the middle of a line: {line!r}')
    return line


def _read_exact(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise ConnectionError(f'expected {size} body bytes, got {len(data)} before the connection closed')
    return data


def _read_chunked(reader: BinaryIO) -> bytes:
    chunks = []
    while True:
        size = int(_read_line(reader).split(b';', 1)[0].strip(), 16)
        if size == 0:
            # Trailers (if any) end with an empty line.
            while _read_line(reader).strip():
                pass
            return b''.join(chunks)
        chunks.append(_read_exact(reader, size))
        _read_line(reader)


def read_response(reader: BinaryIO, *, method: str = 'GET') -> RawResponse:
    """Read one response (skipping 1xx interim responses) from a buffered socket reader."""
    while True:
        status_line = reader.readline(MAX_LINE)
        if not status_line:
            raise ConnectionError('the server closed the connection without sending a response')
        version, _, rest = status_line.decode('latin-1').rstrip('\r\n').partition(' ')
        code, _, reason = rest.partition(' ')
        status = int(code)
        headers = []
        while True:
            line = _read_line(reader).decode('latin-1').rstrip('\r\n')
            if not line:
                break
            name, _, value = line.partition(':')
            headers.append((name.strip(), value.strip()))
        response = RawResponse(version=version, status=status, reason=reason, headers=headers)
        if 100 <= status < 200:
            continue
        break
    if method == 'HEAD' or status in (204, 304):
        return response
    if 'chunked' in (response.header('transfer-encoding') or '').lower():
        response.body = _read_chunked(reader)
    elif response.header('content-length') is not None:
        response.body = _read_exact(reader, int(response.header('content-length')))
    else:
        response.body = reader.read()
    return response


def exchange(port: int, request: bytes, *, host: str = HOST, timeout: float = 10.0) -> RawResponse:
    """Send raw `request` bytes on a new connection and read one response."""
    with connect(port, host, timeout) as sock:
        sock.sendall(request)
        with sock.makefile('rb') as reader:
            return read_response(reader, method=request.split(b' ', 1)[0].decode('latin-1'))


def get_request(path: str, *, host_header: str = 'localhost', version: str = 'HTTP/1.1', close: bool = False) -> bytes:
    """Build the bytes of a simple GET request."""
    lines = [f'GET {path} {version}', f'Host: {host_header}']
    if close:
        lines.append('Connection: close')
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')
