"""Requests left pending on raw connections, so tests can make the client go away mid-request."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.errors

from .rawhttp import connect


@dataclass
class PendingRequest:
    """A GET sent on a raw connection; the test reads what it wants, then decides how the client leaves."""

    sock: socket.socket
    h2_connection: h2.connection.H2Connection | None = None
    stream_id: int | None = None

    def receive_some(self, minimum: int = 1, limit: float = 10.0) -> int:
        """Read at least `minimum` bytes of whatever the server sends (bounded); return how many arrived."""
        self.sock.settimeout(limit)
        received = 0
        while received < minimum:
            data = self.sock.recv(65536)
            if not data:
                break
            received += len(data)
        return received

    def close(self) -> None:
        """Close the TCP connection (the client goes away)."""
        self.sock.close()

    def reset_stream(self) -> None:
        """Cancel the HTTP/2 stream with RST_STREAM while the connection stays open."""
        assert self.h2_connection is not None and self.stream_id is not None, 'only an h2c request has a stream'
        self.h2_connection.reset_stream(self.stream_id, error_code=h2.errors.ErrorCodes.CANCEL)
        self.sock.sendall(self.h2_connection.data_to_send())


def open_pending_request(port: int, path: str, http_version: str) -> PendingRequest:
    sock = connect(port)
    if http_version == '1.1':
        sock.sendall(f'GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n'.encode('latin-1'))
        return PendingRequest(sock)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding='utf-8'))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    headers = [(':method', 'GET'), (':path', path), (':scheme', 'http'), (':authority', f'127.0.0.1:{port}')]
    conn.send_headers(stream_id, headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    return PendingRequest(sock, conn, stream_id)


def read_marker(path: Path) -> object:
    """The JSON document an app wrote to a marker file."""
    return json.loads(path.read_text(encoding='utf-8'))
