"""Waiting for the client to leave (rsgi.md section 5.1)."""

from __future__ import annotations

import pytest
from clients import connect, request, reset_on_close

pytestmark = pytest.mark.usefixtures('server')


def leave_after_race(server, key: str, reset: bool) -> tuple[dict, dict]:
    """Request /http/client-disconnect and stay connected through the app's 1 s race, then leave.

    Returns what the app recorded about the race while connected, and about the wait after the test left.
    """
    with connect(server) as sock:
        sock.sendall(request(f'/http/client-disconnect?key={key}', close=False))
        connected = server.state(f'client-disconnect-connected-{key}', timeout=10)
        if reset:
            reset_on_close(sock)  # RST instead of FIN
    return connected, server.state(f'client-disconnect-{key}', timeout=15)


@pytest.mark.requirement('http-client-disconnect')
@pytest.mark.parametrize('reset', [False, True], ids=['close', 'reset'])
def test_client_disconnect_completes_when_the_client_has_gone(server, reset):
    connected, outcome = leave_after_race(server, 'reset' if reset else 'close', reset)
    assert connected == {'completed_while_connected': False}, 'client_disconnect() completed while connected'
    assert outcome['outcome'] == 'completed', outcome


@pytest.mark.requirement('http-client-disconnect')
def test_client_disconnect_does_not_complete_while_the_client_waits(server):
    with connect(server) as sock:
        sock.sendall(request('/http/client-disconnect?key=waiting', close=False))
        assert server.state('client-disconnect-connected-waiting', timeout=10) == {'completed_while_connected': False}
        # Still connected and waiting: no response has been sent yet.
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)
