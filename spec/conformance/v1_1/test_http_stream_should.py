"""An endless stream ends when its client leaves (rsgi.md section 5.2)."""

from __future__ import annotations

import pytest
from clients import connect, request, reset_on_close

pytestmark = pytest.mark.usefixtures('server')

ENDLESS_CAP = 15.0  # seconds /http/stream-endless sends at most (apps/http_routes.py)


def leave_endless_stream(server, key: str, reset: bool) -> dict:
    """Start /http/stream-endless, read some of it, leave; what the app's sends did afterwards."""
    with connect(server) as sock:
        sock.sendall(request(f'/http/stream-endless?key={key}', close=False))
        received = b''
        while len(received) < 16384:
            data = sock.recv(65536)
            assert data, 'the server closed the stream'
            received += data
        assert received.startswith(b'HTTP/1.1 200')
        server.state(f'stream-endless-started-{key}', timeout=10)
        if reset:
            reset_on_close(sock)  # RST instead of FIN
    return server.state(f'stream-endless-{key}', timeout=ENDLESS_CAP + 5)


@pytest.mark.requirement('http-stream-client-gone')
@pytest.mark.parametrize('reset', [False, True], ids=['close', 'reset'])
def test_sends_raise_once_the_client_left(server, reset):
    outcome = leave_endless_stream(server, 'reset' if reset else 'close', reset)
    assert outcome['outcome'] == 'raised', f'the sends went on for {ENDLESS_CAP} s after the client left: {outcome}'
    assert outcome['seconds'] < ENDLESS_CAP
