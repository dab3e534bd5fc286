"""Iterating over the request body (rsgi.md section 5.1)."""

from __future__ import annotations

import hashlib

import pytest
from clients import body_of, connect, json_in, read_all, request_ok

pytestmark = pytest.mark.usefixtures('server')


def check_iterated(result: dict, body: bytes) -> None:
    """The app's report on `async for chunk in protocol`: bytes chunks whose concatenation is `body`."""
    assert result['types'] in ([], ['bytes']), result['types']
    assert result['length'] == len(body) == sum(result['lengths'])
    assert result['sha256'] == hashlib.sha256(body).hexdigest()


@pytest.mark.requirement('http-body-iter')
@pytest.mark.parametrize('size', [1, 1000, 300_000])
def test_content_length_body_iterates_to_the_body(server, size):
    body = body_of(size)
    check_iterated(request_ok(server, '/http/body-iter', 'POST', content=body).json(), body)


@pytest.mark.requirement('http-body-iter')
def test_chunked_body_iterates_to_the_dechunked_body(server):
    parts = [body_of(1000), b'x', body_of(70_000), b'', body_of(5)]
    check_iterated(request_ok(server, '/http/body-iter', 'POST', content=iter(parts)).json(), b''.join(parts))


@pytest.mark.requirement('http-body-iter')
@pytest.mark.parametrize('method', ['GET', 'POST'])
def test_no_body_iterates_to_nothing(server, method):
    result = request_ok(server, '/http/body-iter', method).json()
    check_iterated(result, b'')
    assert all(length == 0 for length in result['lengths'])


@pytest.mark.requirement('http-body-iter')
def test_chunks_arrive_before_the_whole_body(server):
    """The first chunk reaches the app while the rest of the body has not been sent yet."""
    first, second = body_of(4000), body_of(6000)[::-1]
    with connect(server) as sock:
        sock.sendall(
            b'POST /http/body-iter?key=progress HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
            + f'Content-Length: {len(first) + len(second)}\r\n\r\n'.encode()
            + first
        )
        server.state('body-iter-first-progress', timeout=10)
        sock.sendall(second)
        data = read_all(sock)
    head, _, rest = data.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200')
    check_iterated(json_in(rest), first + second)
