"""Scope attributes of an HTTP request and a WebSocket connection (rsgi.md section 3)."""

from __future__ import annotations

import json
import re
import socket

import httpx
import pytest
from rsgi_requirements import load_requirements
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.usefixtures('server')


def get_scope(server, target: str = '/scope', method: str = 'GET', **kwargs) -> dict:
    response = httpx.request(method, server.url(target), timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def raw_request(server, head: bytes) -> tuple[int, bytes]:
    """Send `head` on a new connection; return the status and the body of the answer (Connection: close)."""
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(head)
        data = b''
        while chunk := sock.recv(65536):
            data += chunk
    head_part, _, body = data.partition(b'\r\n\r\n')
    return int(head_part.split(b' ', 2)[1]), body


@pytest.mark.requirement('scope-proto')
def test_proto_is_http_for_a_request(server):
    assert get_scope(server)['proto'] == 'http'


@pytest.mark.requirement('scope-proto')
def test_proto_is_ws_for_a_websocket(server):
    with ws_connect(server.ws_url('/ws/scope'), open_timeout=10) as ws:
        scope = json.loads(ws.recv(timeout=10))
    assert scope['proto'] == 'ws'
    assert scope['method'] == 'GET'
    assert scope['path'] == '/ws/scope'


@pytest.mark.requirement('scope-rsgi-version')
def test_rsgi_version_is_a_spec_version(server):
    version = get_scope(server)['rsgi_version']
    assert isinstance(version, str) and re.fullmatch(r'\d+\.\d+', version), version
    known = {requirement.since for requirement in load_requirements().values()}
    assert version in known or version > max(known), f'{version} is not a version of the spec'


@pytest.mark.requirement('scope-http-version')
def test_http_version_of_http11(server):
    assert get_scope(server)['http_version'] == '1.1'


@pytest.mark.requirement('scope-http-version')
def test_http_version_of_http10(server):
    status, body = raw_request(server, b'GET /scope HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n')
    assert status == 200
    assert json.loads(body)['http_version'] == '1'


@pytest.mark.requirement('scope-http-version')
def test_http_version_of_http2(server):
    try:
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            response = client.get(server.url('/scope'))
    except httpx.HTTPError as exc:
        pytest.skip(f'the server does not speak HTTP/2 without TLS (h2c prior knowledge): {exc!r}')
    assert response.json()['http_version'] == '2'


@pytest.mark.requirement('scope-server')
def test_server_is_the_local_address(server):
    assert get_scope(server)['server'] == f'127.0.0.1:{server.port}'


@pytest.mark.requirement('scope-client')
def test_client_is_the_peer_address(server):
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(b'GET /scope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
        data = b''
        while chunk := sock.recv(65536):
            data += chunk
    scope = json.loads(data.partition(b'\r\n\r\n')[2].decode() if b'chunked' not in data else _dechunk(data))
    assert scope['client'] == f'127.0.0.1:{local_port}'


def _dechunk(data: bytes) -> str:
    body = data.partition(b'\r\n\r\n')[2]
    out = b''
    while body:
        size_line, _, rest = body.partition(b'\r\n')
        size = int(size_line.split(b';')[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out.decode()


@pytest.mark.requirement('scope-scheme')
def test_scheme_is_http_without_tls(server):
    assert get_scope(server)['scheme'] == 'http'
    with ws_connect(server.ws_url('/ws/scope'), open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))['scheme'] == 'http'


@pytest.mark.requirement('scope-method')
@pytest.mark.parametrize('method', ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PURGE'])
def test_method_as_sent(server, method):
    assert get_scope(server, method=method)['method'] == method


@pytest.mark.requirement('scope-path')
def test_path_is_percent_decoded_without_query(server):
    scope = get_scope(server, '/sc%6Fpe?x=1')
    # /sc%6Fpe is /scope: the route matched because the path was decoded before the app saw it.
    assert scope['path'] == '/scope'


@pytest.mark.requirement('scope-path')
def test_path_decodes_utf8_and_reserved_characters(server):
    status, body = raw_request(server, b'GET /scope%2Fa%20b%C3%A9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    # No route matches the decoded '/scope/a bé', so the app's 404 body names the path it saw.
    assert status == 404
    assert _body_text(body).endswith('/scope/a bé')


def _body_text(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError:
        return body.decode('latin-1')


@pytest.mark.requirement('scope-query-string')
def test_query_string_is_raw(server):
    status, body = raw_request(server, b'GET /scope?a=1&b=%20x+y&c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert status == 200
    text = body.decode()
    scope = json.loads(text[text.index('{') : text.rindex('}') + 1])
    assert scope['query_string'] == 'a=1&b=%20x+y&c'


@pytest.mark.requirement('scope-query-string')
def test_query_string_is_empty_without_query(server):
    assert get_scope(server)['query_string'] == ''


@pytest.mark.requirement('scope-headers')
def test_headers_hold_every_request_header_lower_cased(server):
    scope = get_scope(server, headers=[('X-One', '1'), ('X-Multi', 'a'), ('X-Multi', 'b')])
    items = [tuple(item) for item in scope['headers']['items']]
    assert ('x-one', '1') in items
    assert [value for name, value in items if name == 'x-multi'] == ['a', 'b']
    assert all(name == name.lower() for name, _ in items)
    assert any(name == 'host' for name, _ in items)
