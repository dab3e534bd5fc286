"""WebSockets: what the server does when the application misuses the protocol (rsgi.md section 6)."""

from __future__ import annotations

import pytest
from clients import TIMEOUT, key, recorded_after_close, websocket, ws_handshake
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.usefixtures('server')


@pytest.mark.requirement('ws-no-accept')
def test_returning_without_accept_refuses_with_an_http_error(server_factory):
    server = server_factory('conformance_app:app')  # a server that fails here may not survive it
    name = key()
    sock, head = ws_handshake(server, f'/ws/no-accept?key={name}', end=b'\r\n')
    sock.close()
    assert server.state(f'ws-no-accept-{name}', timeout=5) is True
    assert head, 'the server closed the connection without an HTTP response'
    status = int(head.split(b' ', 2)[1])
    assert 400 <= status < 600, f'expected an HTTP error status, got {head[:100]!r}'


@pytest.mark.requirement('ws-send-after-close')
def test_send_after_the_client_closed_raises(server):
    name = key()
    recorded = recorded_after_close(server, f'/ws/send-after-close?key={name}', 'ready', f'ws-send-after-close-{name}')
    assert recorded['closed'] is not None and recorded['closed']['kind'] == 0
    assert recorded['send_str']['outcome'] == 'raised', recorded['send_str']
    assert recorded['send_bytes']['outcome'] == 'raised', recorded['send_bytes']


@pytest.mark.requirement('ws-send-after-close')
@pytest.mark.parametrize('wait', ['0', '0.1'], ids=['at-once', 'later'])
def test_send_after_the_app_closed_raises(server, wait):
    name = key()
    with websocket(server, f'/ws/send-after-app-close?key={name}&wait={wait}', close_timeout=2) as ws:
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
