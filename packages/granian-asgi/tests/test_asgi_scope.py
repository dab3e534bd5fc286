"""ASGI 2.4 HTTP connection scope: every key, its Python type, and the lifespan state copy, over HTTP/1.1 and h2c."""

from __future__ import annotations

import json

import httpx
import pytest

from tests_support.described import fetch_description
from tests_support.rawhttp import connect, exchange, get_request, read_response

REQUEST_HEADERS = [('X-Test', 'value-1'), ('X-Multi', 'a'), ('X-Multi', 'b')]


@pytest.fixture(scope='module')
def described(asgi_server, http_client: httpx.Client) -> dict:
    """The description of one GET /scope?a=1 request carrying x-test and two x-multi headers."""
    return fetch_description(http_client, asgi_server.url('/scope?a=1'), headers=REQUEST_HEADERS)


def test_scope_fixed_keys(described: dict, http_version: str):
    scope = described['scope']
    assert scope['type'] == 'http'
    assert scope['asgi'] == {'version': '3.0', 'spec_version': '2.4'}
    assert scope['http_version'] == http_version
    assert scope['method'] == 'GET'
    assert scope['scheme'] == 'http'
    assert scope['path'] == '/scope'
    assert scope['raw_path'] == '/scope'
    assert scope['query_string'] == 'a=1'
    assert scope['root_path'] == '', 'root_path is empty without --url-path-prefix'


def test_scope_value_types(described: dict):
    types = described['types']
    assert types['asgi'] == 'dict'
    assert types['http_version'] == 'str'
    assert types['method'] == 'str'
    assert types['scheme'] == 'str'
    assert types['path'] == 'str'
    assert types['raw_path'] == 'bytes'
    assert types['query_string'] == 'bytes'
    assert types['root_path'] == 'str'
    assert types['headers'] == 'list'
    assert (types['header_name'], types['header_value']) == ('bytes', 'bytes')
    assert types['state'] == 'dict'
    assert types['extensions'] == 'dict'


def test_scope_server_and_client_are_host_and_int_port(described: dict, asgi_server):
    scope, types = described['scope'], described['types']
    assert scope['server'] == ['127.0.0.1', asgi_server.port]
    assert (types['server_host'], types['server_port']) == ('str', 'int')
    host, port = scope['client']
    assert host == '127.0.0.1'
    assert (types['client_host'], types['client_port']) == ('str', 'int')
    assert 0 < port < 65536
    assert port != asgi_server.port


def test_scope_client_is_the_peer_address(asgi_server):
    with connect(asgi_server.port) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(get_request('/scope', close=True))
        with sock.makefile('rb') as reader:
            response = read_response(reader)
    assert response.status == 200, response
    assert json.loads(response.body)['scope']['client'] == ['127.0.0.1', local_port]


def test_scope_headers_are_lowercase_and_keep_repeats_in_order(described: dict):
    headers = described['scope']['headers']
    assert all(isinstance(item, list) and len(item) == 2 for item in headers), headers
    names = [name for name, _ in headers]
    assert names == [name.lower() for name in names], f'header names must be lower-case: {names}'
    assert ['x-test', 'value-1'] in headers
    assert [value for name, value in headers if name == 'x-multi'] == ['a', 'b']


def test_scope_extensions_advertise_pathsend_only(described: dict):
    extensions = described['scope']['extensions']
    assert 'http.response.pathsend' in extensions
    assert 'websocket.http.response' not in extensions, 'denial responses belong to WebSocket scopes only'
    assert 'tls' not in extensions, 'the connection is plain TCP'


def test_scope_state_is_a_copy_of_the_lifespan_state(asgi_server, http_client: httpx.Client):
    # /scope adds 'leaked_from_request' to its scope['state'] after answering; the next request must not see it.
    first = fetch_description(http_client, asgi_server.url('/scope/first'))
    second = fetch_description(http_client, asgi_server.url('/scope/second'))
    for described in (first, second):
        state = described['scope']['state']
        assert state.get('x') == 'from-startup', f'lifespan state missing from the request scope: {state}'
        assert 'leaked_from_request' not in state, f'a request saw state written by an earlier request: {state}'


def test_a_request_changing_its_scope_does_not_change_the_next_ones(asgi_server, http_client: httpx.Client):
    # /scope changes its scope after answering in every way an app can; the connection's next
    # request must get a scope of its own.
    first = fetch_description(http_client, asgi_server.url('/scope/first'))
    second = fetch_description(http_client, asgi_server.url('/scope/second'))
    for described in (first, second):
        scope = described['scope']
        assert 'leaked_from_request' not in scope
        assert scope['server'] == ['127.0.0.1', asgi_server.port]
        assert scope['client'][0] == '127.0.0.1'
        assert scope['asgi'] == {'version': '3.0', 'spec_version': '2.4'}
        assert 'leaked' not in scope['extensions']
        assert [b'x-leaked', b'1'] not in scope['headers'] and ['x-leaked', '1'] not in scope['headers']
    assert second['scope']['path'] == '/scope/second'


def test_http10_request_has_http_version_1_0(asgi_server):
    response = exchange(asgi_server.port, b'GET /scope HTTP/1.0\r\nHost: localhost\r\n\r\n')
    assert response.status == 200, response
    scope = json.loads(response.body)['scope']
    assert scope['http_version'] == '1.0'
    assert scope['path'] == '/scope'


@pytest.mark.parametrize('method', ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])
def test_scope_method(asgi_server, http_client: httpx.Client, method: str):
    assert fetch_description(http_client, asgi_server.url('/scope'), method=method)['scope']['method'] == method


def test_scope_path_is_percent_decoded_and_raw_path_is_not(asgi_server, http_client: httpx.Client):
    scope = fetch_description(http_client, asgi_server.url('/scope/a%20b'))['scope']
    assert scope['path'] == '/scope/a b'
    assert scope['raw_path'] == '/scope/a%20b'


def test_scope_path_decodes_utf8_and_query_string_stays_raw(asgi_server, http_client: httpx.Client):
    described = fetch_description(http_client, asgi_server.url('/scope/caf%C3%A9?q=caf%C3%A9&b=%20x&c'))
    scope = described['scope']
    # The app serializes str as-is and bytes as latin-1, so 'café' in path is real text, raw_path keeps the escapes.
    assert scope['path'] == '/scope/café'
    assert scope['raw_path'] == '/scope/caf%C3%A9'
    assert scope['query_string'] == 'q=caf%C3%A9&b=%20x&c'


def test_scope_raw_path_excludes_query_string(asgi_server, http_client: httpx.Client):
    scope = fetch_description(http_client, asgi_server.url('/scope/x?y=1'))['scope']
    assert scope['raw_path'] == '/scope/x'
