"""Iterating over the request body (rsgi.md section 5.1)."""

from __future__ import annotations

import hashlib
import json
import socket

import httpx
import pytest

pytestmark = pytest.mark.usefixtures('server')


def body_of(size: int) -> bytes:
    return bytes((i * 13 + (i >> 9)) % 256 for i in range(size))


def check_iterated(result: dict, body: bytes) -> None:
    """The app's report on `async for chunk in protocol`: bytes chunks whose concatenation is `body`."""
    assert result['types'] in ([], ['bytes']), result['types']
    assert result['length'] == len(body) == sum(result['lengths'])
    assert result['sha256'] == hashlib.sha256(body).hexdigest()


@pytest.mark.requirement('http-body-iter')
@pytest.mark.parametrize('size', [1, 1000, 300_000])
def test_content_length_body_iterates_to_the_body(server, size):
    body = body_of(size)
    response = httpx.post(server.url('/http/body-iter'), content=body, timeout=10)
    assert response.status_code == 200, response.text
    check_iterated(response.json(), body)


@pytest.mark.requirement('http-body-iter')
def test_chunked_body_iterates_to_the_dechunked_body(server):
    parts = [body_of(1000), b'x', body_of(70_000), b'', body_of(5)]
    response = httpx.post(server.url('/http/body-iter'), content=iter(parts), timeout=10)
    assert response.status_code == 200, response.text
    check_iterated(response.json(), b''.join(parts))


@pytest.mark.requirement('http-body-iter')
@pytest.mark.parametrize('method', ['GET', 'POST'])
def test_no_body_iterates_to_nothing(server, method):
    response = httpx.request(method, server.url('/http/body-iter'), timeout=10)
    assert response.status_code == 200, response.text
    result = response.json()
    check_iterated(result, b'')
    assert all(length == 0 for length in result['lengths'])


@pytest.mark.requirement('http-body-iter')
def test_chunks_arrive_before_the_whole_body(server):
    """The first chunk reaches the app while the rest of the body has not been sent yet."""
    first, second = body_of(4000), body_of(6000)[::-1]
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(
            b'POST /http/body-iter?key=progress HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
            + f'Content-Length: {len(first) + len(second)}\r\n\r\n'.encode()
            + first
        )
        server.state('body-iter-first-progress', timeout=10)
        sock.sendall(second)
        data = b''
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200')
    text = rest.decode()
    check_iterated(json.loads(text[text.index('{') : text.rindex('}') + 1]), first + second)
