"""Fixtures of the ASGI test suite: the ASGI test apps, a server for them, and requests left waiting on purpose."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h2.config
import h2.connection
import h2.errors
import pytest

from tests_support.rawhttp import connect, get_request

if TYPE_CHECKING:
    from tests_support.server import RunningServer

ASGI_APPS_DIR = Path(__file__).resolve().parent / 'apps'


@pytest.fixture(scope='session')
def asgi_apps_dir() -> Path:
    """Directory holding the ASGI test applications (pass it as the server's working dir)."""
    return ASGI_APPS_DIR


@pytest.fixture(scope='module')
def asgi_server(server_factory, asgi_apps_dir: Path) -> RunningServer:
    """One worker serving `asgi_app:app` with lifespan (`--interface asgi`), shared by the tests of a module."""
    return server_factory('asgi_app:app', working_dir=asgi_apps_dir, interface='asgi')


@dataclass
class PendingRequest:
    """A request sent on a raw connection whose response is never read; the test decides how the client leaves."""

    sock: socket.socket
    h2_connection: h2.connection.H2Connection | None = None
    stream_id: int | None = None

    def close(self) -> None:
        """Close the TCP connection (the client goes away)."""
        self.sock.close()

    def reset_stream(self) -> None:
        """Cancel the HTTP/2 stream with RST_STREAM while the connection stays open."""
        assert self.h2_connection is not None and self.stream_id is not None, 'only an h2c request has a stream'
        self.h2_connection.reset_stream(self.stream_id, error_code=h2.errors.ErrorCodes.CANCEL)
        self.sock.sendall(self.h2_connection.data_to_send())


def _open_pending_request(port: int, path: str, http_version: str) -> PendingRequest:
    sock = connect(port)
    if http_version == '1.1':
        sock.sendall(get_request(path))
        return PendingRequest(sock)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding='utf-8'))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    headers = [(':method', 'GET'), (':path', path), (':scheme', 'http'), (':authority', f'127.0.0.1:{port}')]
    conn.send_headers(stream_id, headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    return PendingRequest(sock, conn, stream_id)


@pytest.fixture(scope='session')
def open_pending_request() -> Callable[[int, str, str], PendingRequest]:
    """`open_pending_request(port, path, http_version)` sends a GET over HTTP/1.1 or h2c and never reads the answer."""
    return _open_pending_request


@pytest.fixture(scope='session')
def read_marker() -> Callable[[Path], object]:
    """`read_marker(path)` returns the JSON document an app wrote to a marker file."""

    def read(path: Path) -> object:
        return json.loads(path.read_text(encoding='utf-8'))

    return read
