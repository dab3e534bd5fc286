"""A minimal HTTP/1.1 keep-alive client over a raw socket, for per-request latency.

Requests are sent one at a time on one connection, so the time of an exchange is the server's
latency plus a small, constant client cost (no pooling, no header objects, no URL parsing).
"""

from __future__ import annotations

import socket

from .scenarios import Scenario, payload


def request_bytes(scenario: Scenario, port: int) -> bytes:
    """The whole request of `scenario`, ready to send."""
    head = f'{scenario.method} {scenario.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n'
    body = payload(scenario.request_size) if scenario.request_size else b''
    if body:
        head += f'Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n'
    return (head + '\r\n').encode() + body


class ProtocolError(RuntimeError):
    """The server's answer is not a response this client understands."""


class KeepAliveClient:
    """One keep-alive connection; `exchange()` sends a request and reads the whole response."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(262_144)
        if not data:
            raise ProtocolError('the server closed the connection')
        self.buffer += data

    def _line(self) -> bytes:
        while (end := self.buffer.find(b'\r\n')) < 0:
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _exactly(self, size: int) -> None:
        while len(self.buffer) < size:
            self._fill()
        del self.buffer[:size]

    def exchange(self, request: bytes) -> tuple[int, int]:
        """Send `request`; returns (status, body length) once the whole response has arrived."""
        self.sock.sendall(request)
        status_line = self._line()
        if not status_line.startswith(b'HTTP/1.1 '):
            raise ProtocolError(f'unexpected status line {status_line!r}')
        status = int(status_line[9:12])
        length = None
        chunked = False
        while line := self._line():
            name, _, value = line.partition(b':')
            name = name.strip().lower()
            if name == b'content-length':
                length = int(value)
            elif name == b'transfer-encoding' and b'chunked' in value.lower():
                chunked = True
        if chunked:
            total = 0
            while size := int(self._line().split(b';')[0], 16):
                self._exactly(size + 2)
                total += size
            while self._line():  # trailers, then the empty line
                pass
            return status, total
        if length is None:
            raise ProtocolError('a keep-alive response needs content-length or chunked encoding')
        self._exactly(length)
        return status, length

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()
