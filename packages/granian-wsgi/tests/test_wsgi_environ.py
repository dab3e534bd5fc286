"""PEP 3333 environ: CGI variables, HTTP_* headers and the wsgi.* keys, over HTTP/1.1 and h2c."""

from __future__ import annotations

import json

import httpx
import pytest

from tests_support.described import fetch_description
from tests_support.rawhttp import connect, exchange, get_request, read_response

REQUEST_HEADERS = [('X-Custom', 'custom-value'), ('X-Multi', 'a'), ('X-Multi', 'b')]
SERVER_PROTOCOLS = {'1.1': 'HTTP/1.1', '2': 'HTTP/2'}


@pytest.fixture(scope='module')
def described(wsgi_server, http_client: httpx.Client) -> dict:
    """The description of one GET /environ?a=1&b=%20x carrying X-Custom and two X-Multi headers."""
    return fetch_description(http_client, wsgi_server.url('/environ?a=1&b=%20x'), headers=REQUEST_HEADERS)


@pytest.fixture(scope='module')
def prefixed_server(start_wsgi_app):
    return start_wsgi_app('--url-path-prefix', '/api')


@pytest.fixture(scope='module')
def single_thread_two_workers(start_wsgi_app):
    return start_wsgi_app('--blocking-threads', '1', '--workers', '2')


def test_environ_is_a_dict_of_str_cgi_values(described: dict):
    assert described['checks']['environ_is_dict']
    for key, type_name in described['types'].items():
        if '.' not in key:
            assert type_name == 'str', f'CGI variable {key} is a {type_name}, PEP 3333 requires str'


def test_request_line_variables(described: dict, http_version: str):
    environ = described['environ']
    assert environ['REQUEST_METHOD'] == 'GET'
    assert environ['SCRIPT_NAME'] == '', 'SCRIPT_NAME is empty without --url-path-prefix'
    assert environ['PATH_INFO'] == '/environ'
    assert environ['QUERY_STRING'] == 'a=1&b=%20x', 'QUERY_STRING is the raw query, not decoded'
    assert environ['SERVER_PROTOCOL'] == SERVER_PROTOCOLS[http_version]


def test_server_and_remote_address(described: dict, wsgi_server):
    environ = described['environ']
    assert isinstance(environ['SERVER_NAME'], str) and environ['SERVER_NAME']
    assert environ['SERVER_PORT'] == str(wsgi_server.port)
    assert environ['REMOTE_ADDR'] == '127.0.0.1'
    assert environ['REMOTE_PORT'].isdigit() and environ['REMOTE_PORT'] != str(wsgi_server.port)


def test_remote_port_is_the_client_socket_port(wsgi_server):
    with connect(wsgi_server.port) as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(get_request('/environ', close=True))
        with sock.makefile('rb') as reader:
            response = read_response(reader)
    assert response.status == 200, response
    environ = json.loads(response.body)['environ']
    assert environ['REMOTE_PORT'] == str(local_port)
    assert environ['REMOTE_ADDR'] == '127.0.0.1'


def test_http_headers(described: dict, wsgi_server):
    environ = described['environ']
    assert environ['HTTP_X_CUSTOM'] == 'custom-value'
    assert environ['HTTP_X_MULTI'] == 'a, b', 'repeated headers are joined with ", " in arrival order'
    # h2c has no Host header (only :authority); PEP 3333 apps still find the host in HTTP_HOST.
    assert environ['HTTP_HOST'] == f'127.0.0.1:{wsgi_server.port}'


# The server keeps shared keys for these (no string built per request); each must still be right.
COMMON_HEADERS = [
    'User-Agent', 'Accept', 'Accept-Encoding', 'Accept-Language', 'Cookie', 'Referer', 'Origin',
    'Authorization', 'Cache-Control', 'X-Forwarded-For', 'X-Forwarded-Proto', 'X-Request-Id', 'Connection',
]  # fmt: skip


def test_common_headers_get_their_cgi_keys(wsgi_server, http_client: httpx.Client, http_version: str):
    headers = [(name, f'value-{index}') for index, name in enumerate(COMMON_HEADERS) if name != 'Connection']
    if http_version == '1.1':
        headers.append(('Connection', 'keep-alive'))
    environ = fetch_description(http_client, wsgi_server.url('/environ'), headers=headers)['environ']
    for name, value in headers:
        assert environ['HTTP_' + name.upper().replace('-', '_')] == value, name


def test_header_names_with_underscores_cannot_shadow_dashed_ones(wsgi_server, http_client: httpx.Client):
    headers = [('X-Forwarded-For', '10.0.0.1'), ('X_Forwarded_For', '6.6.6.6'), ('X_Only_Underscores', 'x')]
    environ = fetch_description(http_client, wsgi_server.url('/environ'), headers=headers)['environ']
    assert environ['HTTP_X_FORWARDED_FOR'] == '10.0.0.1'
    assert 'HTTP_X_ONLY_UNDERSCORES' not in environ


def test_multiple_cookie_headers_are_joined_with_semicolons(wsgi_server, http_client: httpx.Client):
    headers = [('Cookie', 'a=1'), ('Cookie', 'b=2')]
    environ = fetch_description(http_client, wsgi_server.url('/environ'), headers=headers)['environ']
    assert environ['HTTP_COOKIE'] == 'a=1; b=2'


def test_no_content_headers_without_a_body(described: dict):
    environ = described['environ']
    assert 'CONTENT_TYPE' not in environ, environ.get('CONTENT_TYPE')
    assert 'CONTENT_LENGTH' not in environ, environ.get('CONTENT_LENGTH')
    assert 'HTTP_CONTENT_TYPE' not in environ
    assert 'HTTP_CONTENT_LENGTH' not in environ


def test_content_type_and_length(wsgi_server, http_client: httpx.Client):
    described = fetch_description(
        http_client,
        wsgi_server.url('/environ'),
        method='POST',
        content=b'0123456789',
        headers={'Content-Type': 'text/plain; charset=utf-8'},
    )
    environ = described['environ']
    assert environ['REQUEST_METHOD'] == 'POST'
    assert environ['CONTENT_TYPE'] == 'text/plain; charset=utf-8'
    assert environ['CONTENT_LENGTH'] == '10'
    # CGI: the two content headers are CONTENT_*, never HTTP_CONTENT_* (wsgiref.validate rejects those).
    assert 'HTTP_CONTENT_TYPE' not in environ
    assert 'HTTP_CONTENT_LENGTH' not in environ
    assert described['body_length'] == 10


def test_wsgi_keys(described: dict):
    environ, types = described['environ'], described['types']
    assert environ['wsgi.version'] == [1, 0]
    assert types['wsgi.version'] == 'tuple'
    assert environ['wsgi.url_scheme'] == 'http'
    assert environ['wsgi.input_terminated'] is True
    assert environ['wsgi.run_once'] is False
    for key in ('wsgi.multithread', 'wsgi.multiprocess', 'wsgi.run_once', 'wsgi.input_terminated'):
        assert types[key] == 'bool', f'{key} is a {types[key]}'


def test_wsgi_streams_and_file_wrapper(described: dict):
    checks = described['checks']
    assert checks['errors_methods'] == ['write', 'writelines', 'flush'], checks
    assert checks['errors_usable'] is True, checks['errors_usable']
    assert checks['input_methods'] == ['read', 'readline', 'readlines', '__iter__'], checks
    assert checks['file_wrapper_callable']


def test_several_blocking_threads_make_multithread_true(described: dict):
    # wsgi_server runs one worker with --blocking-threads 4.
    assert described['environ']['wsgi.multithread'] is True
    assert described['environ']['wsgi.multiprocess'] is False


def test_one_blocking_thread_and_two_workers(single_thread_two_workers, http_client: httpx.Client):
    environ = fetch_description(http_client, single_thread_two_workers.url('/environ'))['environ']
    assert environ['wsgi.multithread'] is False, 'with --blocking-threads 1 the app is never called concurrently'
    assert environ['wsgi.multiprocess'] is True, 'with --workers 2 the app runs in two processes'


@pytest.mark.parametrize('method', ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])
def test_request_method(wsgi_server, http_client: httpx.Client, method: str):
    assert (
        fetch_description(http_client, wsgi_server.url('/environ'), method=method)['environ']['REQUEST_METHOD']
        == method
    )


def test_query_string_without_a_query(wsgi_server, http_client: httpx.Client):
    environ = fetch_description(http_client, wsgi_server.url('/environ'))['environ']
    assert environ.get('QUERY_STRING', '') == ''


def test_path_info_is_percent_decoded(wsgi_server, http_client: httpx.Client):
    environ = fetch_description(http_client, wsgi_server.url('/environ/a%20b?q=a%20b'))['environ']
    assert environ['PATH_INFO'] == '/environ/a b'
    assert environ['QUERY_STRING'] == 'q=a%20b'


def test_path_info_is_latin1_decoded_bytes(wsgi_server, http_client: httpx.Client):
    # PEP 3333: the decoded path bytes (UTF-8 'café' here) arrive as a latin-1 str, one char per byte.
    environ = fetch_description(http_client, wsgi_server.url('/environ/caf%C3%A9'))['environ']
    assert environ['PATH_INFO'] == '/environ/' + 'café'.encode().decode('latin-1')


def test_header_values_are_latin1_decoded_bytes(wsgi_server, http_client: httpx.Client):
    # PEP 3333: header bytes outside ASCII (obs-text) arrive as a latin-1 str, one char per byte, alone
    # and when repeated headers are joined.
    raw = 'café'.encode() + b' \xff'
    headers = [('X-Latin', raw), ('X-Twice', b'\xe9'), ('X-Twice', b'ok')]
    environ = fetch_description(http_client, wsgi_server.url('/environ'), headers=headers)['environ']
    assert environ['HTTP_X_LATIN'] == raw.decode('latin-1')
    assert environ['HTTP_X_TWICE'] == '\xe9, ok'


def test_http10_request(wsgi_server):
    response = exchange(wsgi_server.port, b'GET /environ?x=1 HTTP/1.0\r\nHost: localhost\r\n\r\n')
    assert response.status == 200, response
    environ = json.loads(response.body)['environ']
    assert environ['SERVER_PROTOCOL'] == 'HTTP/1.0'
    assert environ['PATH_INFO'] == '/environ'
    assert environ['QUERY_STRING'] == 'x=1'
    assert environ['HTTP_HOST'] == 'localhost'


def test_url_path_prefix_becomes_script_name(prefixed_server, http_client: httpx.Client):
    environ = fetch_description(http_client, prefixed_server.url('/api/environ/x?y=1'))['environ']
    assert environ['SCRIPT_NAME'] == '/api'
    assert environ['PATH_INFO'] == '/environ/x'
    assert environ['QUERY_STRING'] == 'y=1'


def test_url_path_prefix_leaves_other_paths_alone(prefixed_server, http_client: httpx.Client):
    environ = fetch_description(http_client, prefixed_server.url('/environ/x'))['environ']
    assert environ['PATH_INFO'] == '/environ/x', 'a path outside the prefix keeps its PATH_INFO'


def test_an_app_changing_its_environ_does_not_change_the_next_ones(wsgi_server, make_client, http_version: str):
    """Requests on one connection start from the same connection entries; each gets its own dict."""
    with make_client(http_version) as client:
        assert client.get(wsgi_server.url('/tamper'), headers=REQUEST_HEADERS).text == 'tampered'
        environ = fetch_description(client, wsgi_server.url('/environ'), headers=REQUEST_HEADERS)['environ']
        assert client.get(wsgi_server.url('/tamper')).text == 'tampered'
        after = fetch_description(client, wsgi_server.url('/environ?x=1'))['environ']
    for seen in (environ, after):
        assert 'granian.test.tampered' not in seen
        assert seen['SERVER_NAME'] != 'tampered'
        assert seen['REMOTE_ADDR'] == '127.0.0.1'
    assert environ['HTTP_X_CUSTOM'] == 'custom-value'
    assert 'HTTP_X_CUSTOM' not in after, 'a header of an earlier request leaked into a later environ'
    assert after['QUERY_STRING'] == 'x=1'
    # Connections start from one worker template: a new connection sees none of the tampering either.
    with make_client(http_version) as client:
        fresh = fetch_description(client, wsgi_server.url('/environ'))['environ']
    assert 'granian.test.tampered' not in fresh
    assert fresh['SERVER_NAME'] != 'tampered'


def test_environ_has_only_pep_3333_and_cgi_keys(described: dict):
    """The template's placeholders are all filled, and the keys used to size its table are gone."""
    environ = described['environ']
    assert [key for key, value in environ.items() if value is None] == []
    assert [key for key in environ if not (key.isupper() or key.startswith('wsgi.'))] == []


def test_many_headers_all_reach_the_environ(wsgi_server, http_client: httpx.Client):
    headers = [(f'X-Extra-{index}', f'value-{index}') for index in range(60)]
    environ = fetch_description(http_client, wsgi_server.url('/environ'), headers=headers)['environ']
    for index in range(60):
        assert environ[f'HTTP_X_EXTRA_{index}'] == f'value-{index}'
