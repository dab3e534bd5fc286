"""Waiting for the client to leave (rsgi.md section 5.1)."""

from __future__ import annotations

import socket
import struct

import pytest

pytestmark = pytest.mark.usefixtures('server')


def leave_after_race(server, key: str, reset: bool) -> tuple[dict, dict]:
    """Request /http/client-disconnect and stay connected through the app's 1 s race, then leave.

    Returns what the app recorded about the race while connected, and about the wait after the test left.
    """
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(f'GET /http/client-disconnect?key={key} HTTP/1.1\r\nHost: x\r\n\r\n'.encode())
        connected = server.state(f'client-disconnect-connected-{key}', timeout=10)
        if reset:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    return connected, server.state(f'client-disconnect-{key}', timeout=15)


@pytest.mark.requirement('http-client-disconnect')
@pytest.mark.parametrize('reset', [False, True], ids=['close', 'reset'])
def test_client_disconnect_completes_when_the_client_has_gone(server, reset):
    connected, outcome = leave_after_race(server, 'reset' if reset else 'close', reset)
    assert connected == {'completed_while_connected': False}, 'client_disconnect() completed while connected'
    assert outcome['outcome'] == 'completed', outcome


@pytest.mark.requirement('http-client-disconnect')
def test_client_disconnect_does_not_complete_while_the_client_waits(server):
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(b'GET /http/client-disconnect?key=waiting HTTP/1.1\r\nHost: x\r\n\r\n')
        assert server.state('client-disconnect-connected-waiting', timeout=10) == {'completed_while_connected': False}
        # Still connected and waiting: no response has been sent yet.
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)
