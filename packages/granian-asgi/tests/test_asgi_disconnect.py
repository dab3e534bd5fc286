"""ASGI 2.4 client disconnects: a waiting `receive()` returns `http.disconnect`, and `send()` raises an OSError.

The app of /disconnect consumes the (empty) body, then waits in `receive()` with no response started. The client
leaves by closing the TCP connection (HTTP/1.1, h2c) or by resetting only its stream (h2c). The app then tries to
respond and records everything in a marker file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from tests_support.rawhttp import exchange, get_request
from tests_support.waiting import wait_until

SCENARIOS = [('1.1', 'close'), ('2', 'close'), ('2', 'reset')]
SCENARIO_IDS = ['http1.1-close', 'h2c-close', 'h2c-stream-reset']


@dataclass
class DisconnectOutcome:
    record: dict
    log: str


def finished(marker) -> bool:
    """Whether the app has recorded the outcome of both its receive() and its send()."""
    try:
        return json.loads(marker.read_text())['send'] != 'pending'
    except (OSError, ValueError, KeyError):
        return False


@pytest.fixture(scope='module', params=SCENARIOS, ids=SCENARIO_IDS)
def outcome(
    request: pytest.FixtureRequest, asgi_server, open_pending_request, read_marker, tmp_path_factory
) -> DisconnectOutcome:
    """Run one disconnect scenario; return the app's record and the server log written meanwhile."""
    http_version, how = request.param
    marker = tmp_path_factory.mktemp('disconnect') / 'record.json'
    started = marker.with_name(marker.name + '.started')
    log_before = len(asgi_server.output)
    pending = open_pending_request(asgi_server.port, f'/disconnect?marker={quote(str(marker))}', http_version)
    try:
        assert wait_until(started.exists, 10), 'the app never started handling the request'
        time.sleep(0.5)
        assert not marker.exists(), f'receive() returned while the client was still there: {read_marker(marker)}'
        if how == 'reset':
            pending.reset_stream()
        else:
            pending.close()
        # The app gives up on receive() after 20 s and on send() after 10 s more, recording either.
        wait_until(lambda: finished(marker), 35)
    finally:
        pending.close()
    assert marker.exists(), f'the app recorded nothing; server log:\n{asgi_server.output[log_before:]}'
    # Anything the server logs about the request is written right after the app returns.
    time.sleep(0.5)
    return DisconnectOutcome(read_marker(marker), asgi_server.output[log_before:])


def test_waiting_receive_returns_http_disconnect(outcome: DisconnectOutcome):
    received = outcome.record['receive']
    assert received != 'timeout', 'receive() did not return within 20 s of the client leaving'
    assert received != 'cancelled', 'the server cancelled the app instead of returning http.disconnect from receive()'
    assert isinstance(received, dict) and received.get('type') == 'http.disconnect', received


def test_send_after_disconnect_raises_oserror(outcome: DisconnectOutcome):
    sent = outcome.record['send']
    assert sent != 'cancelled', 'the server cancelled the app instead of letting send() raise'
    assert sent != 'pending', 'send() to a client that has gone neither returned nor raised within 35 s'
    assert sent != 'timeout', 'send() to a client that has gone blocked for 10 s instead of raising'
    assert sent is not None, 'send() to a client that has gone did not raise'
    assert sent['is_oserror'], f'send() raised {sent["class"]}: {sent["message"]}, which is not an OSError'


def test_disconnect_is_not_logged_as_a_traceback(outcome: DisconnectOutcome):
    assert 'Traceback' not in outcome.log, outcome.log


def test_server_keeps_serving_after_disconnects(asgi_server, outcome: DisconnectOutcome):
    assert exchange(asgi_server.port, get_request('/scope', close=True)).status == 200
    assert 'Traceback' not in asgi_server.output, asgi_server.output
