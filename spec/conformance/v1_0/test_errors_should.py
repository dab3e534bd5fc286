"""The two exception types of the interface are RuntimeError subclasses (rsgi.md section 7)."""

from __future__ import annotations

import time

import httpx
import pytest
from clients import TIMEOUT, connect, key, recorded_after_close

pytestmark = pytest.mark.usefixtures('server')


def assert_runtime_error(outcome: dict, what: str) -> None:
    """`outcome` (apps/routing.py outcome_of) says `what` raised a RuntimeError subclass."""
    assert outcome['outcome'] == 'raised', f'{what} raised nothing: {outcome}'
    assert outcome['runtime_error'] is True, f'{outcome["type"]} is not a RuntimeError subclass'


@pytest.mark.requirement('errors-runtime-error')
def test_protocol_error_is_a_runtime_error(server):
    # Reading the body a second time uses the protocol out of order: the protocol error.
    response = httpx.post(server.url('/errors/body-twice'), content=b'payload', timeout=TIMEOUT)
    assert response.status_code == 200
    assert_runtime_error(response.json(), 'the second read')


@pytest.mark.requirement('errors-runtime-error')
def test_protocol_error_of_a_concurrent_receive_is_a_runtime_error(server):
    name = key()
    outcome = recorded_after_close(
        server, f'/ws/errors-concurrent-receive?key={name}', 'recorded', f'errors-ws-concurrent-{name}'
    )
    assert_runtime_error(outcome, 'a concurrent receive()')


@pytest.mark.requirement('errors-runtime-error')
def test_protocol_closed_error_of_a_websocket_is_a_runtime_error(server):
    # Sending on a WebSocket the client closed: the other side has gone.
    name = key()
    outcome = recorded_after_close(
        server, f'/ws/errors-send-after-close?key={name}', 'ready', f'errors-ws-closed-{name}'
    )
    assert outcome['closed'] is True
    assert_runtime_error(outcome, 'a send after the close')


@pytest.mark.requirement('errors-runtime-error')
def test_protocol_closed_error_of_a_lost_body_is_a_runtime_error(server):
    # Reading a body whose client disconnected before sending all of it.
    name = key()
    with connect(server) as sock:
        sock.sendall(
            f'POST /errors/body-disconnect?key={name} HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            'Content-Length: 100000\r\n\r\n'.encode()
            + b'x' * 1000
        )
        assert server.state(f'errors-body-disconnect-started-{name}', timeout=5) is True
        time.sleep(0.1)
    outcome = server.state(f'errors-body-disconnect-{name}', timeout=TIMEOUT)
    assert_runtime_error(outcome, 'reading the lost body')
