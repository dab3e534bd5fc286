"""The two exception types of the interface are RuntimeError subclasses (rsgi.md section 7)."""

from __future__ import annotations

import socket
import time
import uuid

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.usefixtures('server')

TIMEOUT = 10


def key() -> str:
    return uuid.uuid4().hex[:12]


@pytest.mark.requirement('errors-runtime-error')
def test_protocol_error_is_a_runtime_error(server):
    # Reading the body a second time uses the protocol out of order: the protocol error.
    response = httpx.post(server.url('/errors/body-twice'), content=b'payload', timeout=TIMEOUT)
    assert response.status_code == 200
    outcome = response.json()
    assert outcome['outcome'] == 'raised', f'the second read raised nothing: {outcome}'
    assert outcome['runtime_error'] is True, f'{outcome["type"]} is not a RuntimeError subclass'


@pytest.mark.requirement('errors-runtime-error')
def test_protocol_error_of_a_concurrent_receive_is_a_runtime_error(server):
    name = key()
    with ws_connect(
        server.ws_url(f'/ws/errors-concurrent-receive?key={name}'), open_timeout=TIMEOUT, close_timeout=2
    ) as ws:
        assert ws.recv(timeout=TIMEOUT) == 'recorded'
    outcome = server.state(f'errors-ws-concurrent-{name}', timeout=TIMEOUT)
    assert outcome['outcome'] == 'raised', f'a concurrent receive() raised nothing: {outcome}'
    assert outcome['runtime_error'] is True, f'{outcome["type"]} is not a RuntimeError subclass'


@pytest.mark.requirement('errors-runtime-error')
def test_protocol_closed_error_of_a_websocket_is_a_runtime_error(server):
    # Sending on a WebSocket the client closed: the other side has gone.
    name = key()
    with ws_connect(
        server.ws_url(f'/ws/errors-send-after-close?key={name}'), open_timeout=TIMEOUT, close_timeout=2
    ) as ws:
        assert ws.recv(timeout=TIMEOUT) == 'ready'
    outcome = server.state(f'errors-ws-closed-{name}', timeout=TIMEOUT)
    assert outcome['closed'] is True
    assert outcome['outcome'] == 'raised', f'a send after the close raised nothing: {outcome}'
    assert outcome['runtime_error'] is True, f'{outcome["type"]} is not a RuntimeError subclass'


@pytest.mark.requirement('errors-runtime-error')
def test_protocol_closed_error_of_a_lost_body_is_a_runtime_error(server):
    # Reading a body whose client disconnected before sending all of it.
    name = key()
    with socket.create_connection(('127.0.0.1', server.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            f'POST /errors/body-disconnect?key={name} HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            'Content-Length: 100000\r\n\r\n'.encode()
            + b'x' * 1000
        )
        assert server.state(f'errors-body-disconnect-started-{name}', timeout=5) is True
        time.sleep(0.1)
    outcome = server.state(f'errors-body-disconnect-{name}', timeout=TIMEOUT)
    assert outcome['outcome'] == 'raised', f'reading the lost body raised nothing: {outcome}'
    assert outcome['runtime_error'] is True, f'{outcome["type"]} is not a RuntimeError subclass'
