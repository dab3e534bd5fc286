"""Scope attributes of an HTTP request and a WebSocket connection (rsgi.md section 3)."""

from __future__ import annotations

import json
import re

import pytest
from clients import Reader, connect, exchange, first_message, http2_get, json_in, read_response, request_ok
from rsgi_requirements import load_requirements

pytestmark = pytest.mark.usefixtures('server')


def get_scope(server, target: str = '/scope', method: str = 'GET', **kwargs) -> dict:
    return request_ok(server, target, method, **kwargs).json()


@pytest.mark.requirement('scope-proto')
def test_proto_is_http_for_a_request(server):
    assert get_scope(server)['proto'] == 'http'


@pytest.mark.requirement('scope-proto')
def test_proto_is_ws_for_a_websocket(server):
    scope = json.loads(first_message(server, '/ws/scope'))
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
    status, body = exchange(server, b'GET /scope HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n')
    assert status == 200
    assert json.loads(body)['http_version'] == '1'


@pytest.mark.requirement('scope-http-version')
def test_http_version_of_http2(server):
    assert http2_get(server, '/scope').json()['http_version'] == '2'


@pytest.mark.requirement('scope-server')
def test_server_is_the_local_address(server):
    assert get_scope(server)['server'] == f'127.0.0.1:{server.port}'


@pytest.mark.requirement('scope-client')
def test_client_is_the_peer_address(server):
    with connect(server) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(b'GET /scope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
        scope = json.loads(read_response(Reader(sock)).body)
    assert scope['client'] == f'127.0.0.1:{local_port}'


@pytest.mark.requirement('scope-scheme')
def test_scheme_is_http_without_tls(server):
    assert get_scope(server)['scheme'] == 'http'
    assert json.loads(first_message(server, '/ws/scope'))['scheme'] == 'http'


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
    status, body = exchange(server, b'GET /scope%2Fa%20b%C3%A9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
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
    status, body = exchange(server, b'GET /scope?a=1&b=%20x+y&c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert status == 200
    assert json_in(body)['query_string'] == 'a=1&b=%20x+y&c'


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
