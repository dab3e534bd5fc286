"""Failing ASGI apps and misused `send()`: what the client sees, what the app is told, what the server logs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests_support.rawhttp import connect, exchange, get_request
from tests_support.waiting import wait_until

WEBSOCKET_UPGRADE = (
    b'GET /ws HTTP/1.1\r\n'
    b'Host: localhost\r\n'
    b'Upgrade: websocket\r\n'
    b'Connection: Upgrade\r\n'
    b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
    b'Sec-WebSocket-Version: 13\r\n'
    b'\r\n'
)


def marker_url(server, route: str, marker: Path) -> str:
    return server.url(f'{route}?marker={quote(str(marker))}')


def assert_still_serving(server, client: httpx.Client) -> None:
    follow_up = client.get(server.url('/scope'))
    assert follow_up.status_code == 200
    assert follow_up.json()['scope']['path'] == '/scope'


@pytest.mark.parametrize('route', ['/raise-before-start', '/no-response'], ids=['app-raises', 'app-returns'])
def test_app_failing_before_response_start_is_500(asgi_server, http_client: httpx.Client, route: str):
    response = http_client.get(asgi_server.url(route))
    assert response.status_code == 500
    # The same client (same keep-alive connection, or the same h2 connection) is served normally afterwards.
    assert_still_serving(asgi_server, http_client)


def test_app_raising_mid_body_aborts_the_response_and_is_logged_once(asgi_server, http_client: httpx.Client):
    token = uuid.uuid4().hex
    try:
        response = http_client.get(asgi_server.url(f'/raise-after-start?token={token}'), timeout=10)
    except httpx.TimeoutException as exc:
        pytest.fail(f'the response was neither completed nor aborted within 10 s: {exc!r}')
    except httpx.HTTPError:
        pass  # The connection (HTTP/1.1) or the stream (h2) was cut: the client knows the body is incomplete.
    else:
        pytest.fail(
            f'the client got a well-formed response ({response.status_code}, {response.content!r}) '
            'although the app raised in the middle of the body'
        )
    assert_still_serving(asgi_server, http_client)
    message = f'failure after start {token}'
    assert asgi_server.wait_for_output(message), f'the exception was not logged:\n{asgi_server.output}'
    time.sleep(0.5)
    count = asgi_server.output.count(message)
    assert count == 1, f'the exception message is in the log {count} times:\n{asgi_server.output}'


def test_body_before_start_raises_runtime_error(asgi_server, http_client: httpx.Client, tmp_path: Path, read_marker):
    marker = tmp_path / 'record.json'
    response = http_client.get(marker_url(asgi_server, '/body-before-start', marker))
    assert wait_until(marker.exists, 10), 'the app did not record the outcome of send()'
    record = read_marker(marker)
    assert record['error'] is not None, 'sending http.response.body before http.response.start did not raise'
    assert record['error']['is_runtime_error'], record
    assert 'http.response.start' in record['error']['message'], record
    assert response.status_code == 500, 'the app never started a response'
    assert_still_serving(asgi_server, http_client)


def test_unknown_message_type_raises_runtime_error(asgi_server, http_client: httpx.Client, tmp_path: Path, read_marker):
    marker = tmp_path / 'record.json'
    response = http_client.get(marker_url(asgi_server, '/unknown-message', marker))
    assert wait_until(marker.exists, 10), 'the app did not record the outcome of send()'
    record = read_marker(marker)
    assert record['error'] is not None, "sending {'type': 'http.nonsense'} did not raise"
    assert record['error']['is_runtime_error'], record
    assert 'http.nonsense' in record['error']['message'], record
    assert response.status_code == 500, 'the app never started a response'
    assert_still_serving(asgi_server, http_client)


def test_second_response_start_raises_runtime_error(
    asgi_server, http_client: httpx.Client, tmp_path: Path, read_marker
):
    marker = tmp_path / 'record.json'
    response = http_client.get(marker_url(asgi_server, '/double-start', marker))
    assert wait_until(marker.exists, 10), 'the app did not record the outcome of send()'
    record = read_marker(marker)
    assert record['failed_message'] == 1, f'expected the second http.response.start to raise: {record}'
    assert record['error']['is_runtime_error'], record
    # The app catches the error and finishes the response it did start.
    assert (response.status_code, response.content) == (200, b'first start wins')
    assert_still_serving(asgi_server, http_client)


def test_websocket_closed_before_accept_is_refused_with_403(asgi_server):
    with connect(asgi_server.port) as sock:
        sock.sendall(WEBSOCKET_UPGRADE)
        with sock.makefile('rb') as reader:
            status_line = reader.readline(65536).decode('latin-1').rstrip('\r\n')
    assert status_line, 'the server closed the connection without answering the upgrade request'
    assert int(status_line.split(' ')[1]) == 403, status_line
    assert exchange(asgi_server.port, get_request('/scope', close=True)).status == 200
