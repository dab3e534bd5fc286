"""Connection-level behaviour under an RSGI app: keep-alive, concurrency, disconnects, odd and bad requests."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import h2.config
import h2.connection
import httpx
import pytest

from tests_support.rawhttp import connect, exchange, get_request, read_response
from tests_support.waiting import wait_until

CONCURRENT_CONNECTIONS = 500


def test_keep_alive_serves_several_requests_on_one_connection(rsgi_server):
    with connect(rsgi_server.port) as sock, sock.makefile('rb') as reader:
        local = f'127.0.0.1:{sock.getsockname()[1]}'
        for _ in range(3):
            sock.sendall(get_request('/scope'))
            response = read_response(reader)
            assert response.status == 200, response
            assert (response.header('connection') or '').lower() != 'close'
            assert json.loads(response.body)['client'] == local


def test_client_reuses_connection(rsgi_server, http_client: httpx.Client):
    clients = {http_client.get(rsgi_server.url('/scope')).json()['client'] for _ in range(5)}
    assert len(clients) == 1, f'expected one connection to serve every request, saw client addresses {clients}'


def test_http10_request_has_http_version_1(rsgi_server):
    response = exchange(rsgi_server.port, b'GET /scope HTTP/1.0\r\nHost: localhost\r\n\r\n')
    assert response.status == 200, response
    scope = json.loads(response.body)
    assert scope['http_version'] == '1'
    assert scope['path'] == '/scope'


@pytest.mark.parametrize(
    'request_bytes',
    [b'GET / HTTX/1.1\r\nHost: localhost\r\n\r\n', b'GET /scope HTTP/1.1\r\nHost: localhost\r\nbad header\r\n\r\n'],
    ids=['bad-request-line', 'bad-header-line'],
)
def test_malformed_request_is_400_and_server_keeps_serving(rsgi_server, request_bytes: bytes):
    response = exchange(rsgi_server.port, request_bytes)
    assert response.status == 400, response
    follow_up = exchange(rsgi_server.port, get_request('/scope', close=True))
    assert follow_up.status == 200, follow_up


async def _concurrent_requests(port: int, count: int, path: str) -> list[str]:
    """Open `count` connections first, then send one request on each; return their status lines."""
    connections = await asyncio.gather(*(asyncio.open_connection('127.0.0.1', port) for _ in range(count)))
    request = get_request(path, close=True)

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        try:
            writer.write(request)
            await writer.drain()
            data = await reader.read()
            return data.split(b'\r\n', 1)[0].decode('latin-1') or '<connection closed without a response>'
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    return await asyncio.gather(*(one(reader, writer) for reader, writer in connections))


def test_500_concurrent_connections(rsgi_server):
    # Every request sleeps half a second in the app, so they can only all finish in time if served concurrently.
    statuses = asyncio.run(
        asyncio.wait_for(_concurrent_requests(rsgi_server.port, CONCURRENT_CONNECTIONS, '/sleep?seconds=0.5'), 45)
    )
    failures = [status for status in statuses if not status.startswith('HTTP/1.1 200')]
    assert not failures, f'{len(failures)} of {CONCURRENT_CONNECTIONS} failed, e.g. {failures[:5]}'


def _h2_open_request(port: int, path: str):
    """Open an h2c connection, send a GET for `path` and return the socket (the response is never read)."""
    sock = connect(port)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding='utf-8'))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    headers = [(':method', 'GET'), (':path', path), (':scheme', 'http'), (':authority', f'127.0.0.1:{port}')]
    conn.send_headers(stream_id, headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    return sock


def _h1_open_request(port: int, path: str):
    sock = connect(port)
    sock.sendall(get_request(path))
    return sock


@pytest.mark.parametrize('open_request', [_h1_open_request, _h2_open_request], ids=['http1.1', 'h2c'])
def test_client_disconnect_is_seen_by_app(rsgi_server, tmp_path: Path, open_request):
    marker = tmp_path / 'disconnect'
    started = tmp_path / 'disconnect.started'
    sock = open_request(rsgi_server.port, f'/disconnect?marker={quote(str(marker))}')
    try:
        assert wait_until(started.exists, 10), 'the app never started handling the request'
        assert not marker.exists(), 'client_disconnect() resolved while the client was still connected'
    finally:
        sock.close()
    assert wait_until(marker.exists, 10), 'client_disconnect() did not resolve within 10 s of the client closing'
    assert marker.read_text() == 'disconnected'
    assert exchange(rsgi_server.port, get_request('/scope', close=True)).status == 200


@pytest.mark.skipif(shutil.which('curl') is None, reason='curl is not installed')
def test_curl_http2_prior_knowledge(rsgi_server):
    result = subprocess.run(
        [
            'curl',
            '--http2-prior-knowledge',
            '--silent',
            '--show-error',
            '--max-time',
            '10',
            '--write-out',
            '\n%{http_version} %{http_code}',
            rsgi_server.url('/scope?via=curl'),
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body, _, status_line = result.stdout.rpartition('\n')
    assert status_line == '2 200'
    scope = json.loads(body)
    assert scope['http_version'] == '2'
    assert scope['query_string'] == 'via=curl'
