"""WebSockets: what the server does when the application misuses the protocol (rsgi.md section 6)."""

from __future__ import annotations

import base64
import os
import socket
import uuid

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.usefixtures('server')

TIMEOUT = 10


def key() -> str:
    return uuid.uuid4().hex[:12]


@pytest.mark.requirement('ws-no-accept')
def test_returning_without_accept_refuses_with_an_http_error(server_factory):
    server = server_factory('conformance_app:app')  # a server that fails here may not survive it
    name = key()
    with socket.create_connection(('127.0.0.1', server.port), timeout=TIMEOUT) as sock:
        nonce = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f'GET /ws/no-accept?key={name} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n'
            f'Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode()
        )
        head = b''
        while b'\r\n' not in head:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                pytest.fail(f'no answer within {TIMEOUT} s: the client was left waiting')
            if not chunk:
                break
            head += chunk
    assert server.state(f'ws-no-accept-{name}', timeout=5) is True
    assert head, 'the server closed the connection without an HTTP response'
    status = int(head.split(b' ', 2)[1])
    assert 400 <= status < 600, f'expected an HTTP error status, got {head[:100]!r}'


@pytest.mark.requirement('ws-send-after-close')
def test_send_after_the_client_closed_raises(server):
    name = key()
    with ws_connect(server.ws_url(f'/ws/send-after-close?key={name}'), open_timeout=TIMEOUT, close_timeout=2) as ws:
        assert ws.recv(timeout=TIMEOUT) == 'ready'
    recorded = server.state(f'ws-send-after-close-{name}', timeout=TIMEOUT)
    assert recorded['closed'] is not None and recorded['closed']['kind'] == 0
    assert recorded['send_str']['outcome'] == 'raised', recorded['send_str']
    assert recorded['send_bytes']['outcome'] == 'raised', recorded['send_bytes']


@pytest.mark.requirement('ws-send-after-close')
@pytest.mark.parametrize('wait', ['0', '0.1'], ids=['at-once', 'later'])
def test_send_after_the_app_closed_raises(server, wait):
    name = key()
    url = server.ws_url(f'/ws/send-after-app-close?key={name}&wait={wait}')
    with ws_connect(url, open_timeout=TIMEOUT, close_timeout=2) as ws:
        # How the server closes the socket is ws-close's business: here only the app's sends matter.
        recorded = server.state(f'ws-send-after-app-close-{name}', timeout=TIMEOUT)
        try:
            late = ws.recv(timeout=3)
        except (ConnectionClosed, TimeoutError):
            pass
        else:
            pytest.fail(f'a message sent after close() reached the client: {late!r}')
    assert recorded['send_str']['outcome'] == 'raised', recorded['send_str']
    assert recorded['send_bytes']['outcome'] == 'raised', recorded['send_bytes']
