"""`wsgiref.validate.validator` around the app: the server keeps every rule the standard library checks.

The validator turns a broken rule into an AssertionError in the app (a 500 and a traceback in the log), and writes
to stderr when a response iterable is garbage collected without close(). So each request must succeed, and once
all ran, the server log must hold no trace of the validator.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests_support.rawhttp import connect, exchange, read_response

TEN_MIB = 10 * 1024 * 1024
VALIDATOR_TRACES = ['AssertionError', 'Traceback', 'WSGIWarning', 'garbage collected without being closed']


@pytest.fixture(scope='module')
def validated_server(server_factory, wsgi_apps_dir: Path):
    return server_factory(
        'validated_app:app', working_dir=wsgi_apps_dir, interface='wsgi', extra_args=['--blocking-threads', '4']
    )


def check_digest(response: httpx.Response, body: bytes) -> None:
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {'length': len(body), 'sha256': hashlib.sha256(body).hexdigest()}


def iterate(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_get(validated_server, http_client: httpx.Client):
    response = http_client.get(validated_server.url('/'))
    assert (response.status_code, response.text) == (200, 'hello from the validated app')


def test_get_with_query_and_headers(validated_server, http_client: httpx.Client):
    response = http_client.get(validated_server.url('/?a=1&b=2'), headers=[('X-Multi', '1'), ('X-Multi', '2')])
    assert response.status_code == 200, response.text


def test_post_with_body(validated_server, http_client: httpx.Client):
    body = os.urandom(100_000)
    check_digest(http_client.post(validated_server.url('/digest'), content=body), body)


def test_post_read_by_lines(validated_server, http_client: httpx.Client):
    body = b'line one\nline two\nthree\n' * 100
    check_digest(http_client.post(validated_server.url('/lines'), content=body), body)


def test_chunked_post_over_a_raw_socket(validated_server):
    body = os.urandom(300_000)
    head = (
        f'POST /digest HTTP/1.1\r\nHost: 127.0.0.1:{validated_server.port}\r\n'
        'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
    )
    with connect(validated_server.port, timeout=30) as sock:
        sock.sendall(head.encode('latin-1'))
        for chunk in iterate(body, 7000):
            sock.sendall(b'%x\r\n%s\r\n' % (len(chunk), chunk))
        sock.sendall(b'0\r\n\r\n')
        with sock.makefile('rb') as reader:
            response = read_response(reader)
    assert response.status == 200, response
    assert json.loads(response.body) == {'length': len(body), 'sha256': hashlib.sha256(body).hexdigest()}


def test_head(validated_server, http_client: httpx.Client):
    response = http_client.head(validated_server.url('/'))
    assert response.status_code == 200
    assert response.content == b''
    raw = exchange(validated_server.port, b'HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    assert (raw.status, raw.body) == (200, b'')


def test_10mib_upload(validated_server, http_client: httpx.Client):
    body = os.urandom(TEN_MIB)
    check_digest(http_client.post(validated_server.url('/digest'), content=body), body)


def test_10mib_streamed_upload_without_length(validated_server, http_client: httpx.Client):
    body = os.urandom(TEN_MIB)
    check_digest(http_client.post(validated_server.url('/digest'), content=iterate(body, 100_000)), body)


def test_10mib_streamed_response(validated_server, http_client: httpx.Client):
    with http_client.stream('GET', validated_server.url(f'/stream?size={TEN_MIB}&seed=4')) as response:
        assert response.status_code == 200
        received = b''.join(response.iter_raw())
    assert received == random.Random(4).randbytes(TEN_MIB)


def test_write_callable(validated_server, http_client: httpx.Client):
    response = http_client.get(validated_server.url('/write'))
    assert (response.status_code, response.content) == (200, b'written and returned')


def test_file_wrapper(validated_server, http_client: httpx.Client):
    response = http_client.get(validated_server.url('/file?size=100000&seed=8'))
    assert response.status_code == 200
    assert response.content == random.Random(8).randbytes(100_000)


def test_server_log_has_no_validator_complaints(validated_server, http_client: httpx.Client):
    assert http_client.get(validated_server.url('/')).status_code == 200
    # Iterables are closed (or collected) right after their response; give that a moment to reach the log.
    time.sleep(0.5)
    log = validated_server.output
    found = [trace for trace in VALIDATOR_TRACES if trace in log]
    assert not found, f'the validator complained ({found}):\n{log[-5000:]}'
