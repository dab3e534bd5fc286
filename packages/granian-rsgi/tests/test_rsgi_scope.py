"""RSGI 1.6 HTTP scope: every attribute and the headers mapping, seen by an app over HTTP/1.1 and h2c."""

from __future__ import annotations

import json

import httpx
import pytest

from tests_support.described import fetch_description
from tests_support.rawhttp import connect, get_request, read_response

REQUEST_HEADERS = [('x-test', 'value-1'), ('x-multi', 'a'), ('x-multi', 'b')]


@pytest.fixture(scope='module')
def scope_with_headers(rsgi_server, http_client: httpx.Client) -> dict:
    """The scope of one GET /scope request carrying x-test and two x-multi headers."""
    return fetch_description(http_client, rsgi_server.url('/scope'), headers=REQUEST_HEADERS)


def test_scope_fixed_attributes(scope_with_headers: dict, http_version: str):
    assert scope_with_headers['proto'] == 'http'
    assert scope_with_headers['rsgi_version'] == '1.6'
    assert scope_with_headers['http_version'] == http_version
    assert scope_with_headers['scheme'] == 'http'
    assert scope_with_headers['method'] == 'GET'
    assert scope_with_headers['path'] == '/scope'
    assert scope_with_headers['query_string'] == ''


def test_scope_server_and_client_addresses(scope_with_headers: dict, rsgi_server):
    assert scope_with_headers['server'] == f'127.0.0.1:{rsgi_server.port}'
    host, _, port = scope_with_headers['client'].rpartition(':')
    assert host == '127.0.0.1'
    assert 0 < int(port) < 65536
    assert int(port) != rsgi_server.port


def test_scope_authority(scope_with_headers: dict, rsgi_server, http_version: str):
    if http_version == '2':
        # h2 carries the authority in the :authority pseudo-header, so it is part of the URI.
        assert scope_with_headers['authority'] == f'127.0.0.1:{rsgi_server.port}'
    else:
        # HTTP/1.1 origin-form request target has no authority (the Host header is only a header).
        assert scope_with_headers['authority'] is None


def test_scope_authority_from_absolute_form_request(rsgi_server):
    request = b'GET http://example.test:8080/scope HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\r\n'
    with connect(rsgi_server.port) as sock:
        sock.sendall(request)
        with sock.makefile('rb') as reader:
            response = read_response(reader)
    assert response.status == 200, response
    scope = json.loads(response.body)
    assert scope['authority'] == 'example.test:8080'
    assert scope['path'] == '/scope'


def test_scope_client_is_the_peer_address(rsgi_server):
    with connect(rsgi_server.port) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(get_request('/scope', close=True))
        with sock.makefile('rb') as reader:
            response = read_response(reader)
    assert response.status == 200, response
    assert json.loads(response.body)['client'] == f'127.0.0.1:{local_port}'


def test_headers_get(scope_with_headers: dict):
    headers = scope_with_headers['headers']
    assert headers['get_x_test'] == 'value-1'
    assert headers['get_x_multi'] == 'a', 'get() returns the first value'
    assert headers['get_missing'] is None
    assert headers['get_missing_default'] == 'fallback'


def test_headers_get_all(scope_with_headers: dict):
    headers = scope_with_headers['headers']
    assert headers['get_all_x_multi'] == ['a', 'b']
    assert headers['get_all_missing'] == []


def test_headers_contains_and_getitem(scope_with_headers: dict):
    headers = scope_with_headers['headers']
    assert headers['contains_x_test'] is True
    assert headers['contains_missing'] is False
    assert headers['getitem_x_test'] == 'value-1'
    assert headers['getitem_missing'] == 'KeyError'


def test_headers_keys_values_items(scope_with_headers: dict):
    headers = scope_with_headers['headers']
    keys, values, items = headers['keys'], headers['values'], headers['items']
    assert isinstance(keys, list), keys
    assert isinstance(values, list), values
    assert isinstance(items, list), items
    assert {'x-test', 'x-multi'} <= set(keys)
    assert len(keys) == len(set(keys)), 'keys() lists each header name once'
    assert {'value-1', 'a', 'b'} <= set(values)
    assert ['x-test', 'value-1'] in items
    multi = [value for key, value in items if key == 'x-multi']
    assert multi == ['a', 'b'], 'items() lists every value of a repeated header, in order'
    assert len(values) == len(items)


def test_headers_iteration_and_len(scope_with_headers: dict):
    headers = scope_with_headers['headers']
    assert isinstance(headers['iter'], list), headers['iter']
    assert sorted(headers['iter']) == sorted(headers['keys'])
    assert headers['len'] == len(headers['keys'])


@pytest.mark.parametrize('method', ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])
def test_scope_method(rsgi_server, http_client: httpx.Client, method: str):
    assert fetch_description(http_client, rsgi_server.url('/scope'), method=method)['method'] == method


def test_scope_path_is_percent_decoded_and_query_string_raw(rsgi_server, http_client: httpx.Client):
    scope = fetch_description(http_client, rsgi_server.url('/scope/caf%C3%A9%20x?a=1&b=%20x&c'))
    assert scope['path'] == '/scope/café x'
    assert scope['query_string'] == 'a=1&b=%20x&c'
