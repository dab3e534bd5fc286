"""Reading the request body whole (rsgi.md section 5.1)."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from clients import body_of, connect, exchange, json_in, request_ok

pytestmark = pytest.mark.usefixtures('server')


def described(body: bytes) -> dict:
    return {'type': 'bytes', 'length': len(body), 'sha256': hashlib.sha256(body).hexdigest()}


# -- http-body-whole ----------------------------------------------------------------------------------


@pytest.mark.requirement('http-body-whole')
@pytest.mark.parametrize('size', [1, 1000, 300_000])
def test_content_length_body_is_returned_whole(server, size):
    body = body_of(size)
    assert request_ok(server, '/http/body', 'POST', content=body).json() == described(body)


@pytest.mark.requirement('http-body-whole')
def test_chunked_body_is_returned_dechunked(server):
    parts = [body_of(1000), b'x', body_of(70_000), b'', body_of(5)]
    # An iterator without a length makes httpx send Transfer-Encoding: chunked.
    assert request_ok(server, '/http/body', 'POST', content=iter(parts)).json() == described(b''.join(parts))


@pytest.mark.requirement('http-body-whole')
def test_raw_chunked_body_with_hex_sizes_is_returned_dechunked(server):
    first, second = b'abcdefghijklmnopqrstuvwxyz', b'0123456789' * 30
    request = (
        b'POST /http/body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
        + b'1a\r\n' + first + b'\r\n'
        + b'12C\r\n' + second + b'\r\n'
        + b'0\r\n\r\n'
    )  # fmt: skip
    status, rest = exchange(server, request)
    assert status == 200
    assert json_in(rest) == described(first + second)


@pytest.mark.requirement('http-body-whole')
@pytest.mark.parametrize('method', ['GET', 'POST'])
def test_no_body_gives_empty_bytes(server, method):
    assert request_ok(server, '/http/body', method).json() == described(b'')


@pytest.mark.requirement('http-body-whole')
def test_zero_content_length_gives_empty_bytes(server):
    status, rest = exchange(
        server, b'POST /http/body HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
    )
    assert status == 200
    assert json_in(rest) == described(b'')


@pytest.mark.requirement('http-body-whole')
def test_empty_chunked_body_gives_empty_bytes(server):
    status, rest = exchange(
        server,
        b'POST /http/body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
    )
    assert status == 200
    assert json_in(rest) == described(b'')


# -- http-body-once -----------------------------------------------------------------------------------


@pytest.mark.requirement('http-body-once')
@pytest.mark.parametrize('body', [b'', b'some body'])
def test_second_read_raises_instead_of_hanging(server, body):
    result = request_ok(server, '/http/body-once', 'POST', content=body, timeout=15).json()
    assert result['first'] == described(body)
    assert result['second']['outcome'] == 'raised', result['second']


@pytest.mark.requirement('http-body-once')
def test_worker_goes_on_serving_after_a_second_read(server):
    with httpx.Client(timeout=15) as client:
        assert client.post(server.url('/http/body-once'), content=b'abc').status_code == 200
        response = client.post(server.url('/http/body'), content=b'after')
    assert response.status_code == 200
    assert response.json() == described(b'after')


# -- http-body-disconnect -----------------------------------------------------------------------------


def drop_mid_body(server, key: str, framing: str, partial: bytes) -> dict:
    """POST a request head with the `framing` field and part of its body, wait until the app reads it, close;
    what the read did."""
    head = f'POST /http/body-disconnect?key={key} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n'.encode()
    with connect(server) as sock:
        sock.sendall(head + partial)
        server.state(f'body-disconnect-started-{key}', timeout=10)
    return server.state(f'body-disconnect-{key}', timeout=15)


@pytest.mark.requirement('http-body-disconnect')
def test_lost_connection_mid_content_length_body_raises(server):
    outcome = drop_mid_body(server, 'length', 'Content-Length: 100000', b'x' * 1000)
    assert outcome['outcome'] == 'raised', outcome


@pytest.mark.requirement('http-body-disconnect')
def test_lost_connection_mid_chunked_body_raises(server):
    partial = b'3e8\r\n' + b'y' * 1000 + b'\r\n' + b'3e8\r\n' + b'z' * 10
    outcome = drop_mid_body(server, 'chunked', 'Transfer-Encoding: chunked', partial)
    assert outcome['outcome'] == 'raised', outcome


@pytest.mark.requirement('http-body-disconnect')
def test_lost_connection_before_any_body_byte_raises(server):
    outcome = drop_mid_body(server, 'nobyte', 'Content-Length: 5000', b'')
    assert outcome['outcome'] == 'raised', outcome
