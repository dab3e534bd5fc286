"""PEP 3333 `wsgi.input`: read(), read(n), readline(), readline(n), readlines(), iteration, on every kind of body.

The app applies a list of operations to `wsgi.input` (see apps/input_ops.py); the test applies the same list to
`io.BytesIO(body)` and expects exactly the same pieces: same sizes, same split points, b'' only at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import time
from collections.abc import Iterator

import httpx
import pytest

from tests_support.rawhttp import connect, read_response

LINES_BODY = b'first line\nsecond\n\nfourth line, longer than the others\r\nlast line without a newline'
TEN_MIB = 10 * 1024 * 1024

OPERATIONS = {
    'read': 'read',
    'read-exact-sizes': 'read=5,read=3,read=17,read',
    'read-minus-one': 'read=-1',
    'read-loop': 'readall=7',
    'readline-each': ','.join(['readline'] * 7),
    'readline-loop': 'readlineall',
    'readline-size': 'readline=4,readline=100,readline=1,readline,readline=6,readline',
    'readline-size-loop': 'readlineall=5',
    'readlines': 'readlines',
    'iterate': 'iter',
    'mixed': 'read=3,readline,readline=2,readlines',
    'read-then-iterate': 'read=12,iter',
}


def expected_pieces(input_ops, body: bytes, ops: str) -> list[list[bytes]]:
    return input_ops.apply_ops(io.BytesIO(body), ops)


def decode_pieces(document: dict, body: bytes) -> list[list[bytes]]:
    """The pieces the app read, as bytes; checks that the rest it drained afterwards completes the body."""
    assert document['types'] in ([], ['bytes']), f'wsgi.input returned {document["types"]}, not bytes'
    pieces = [[piece.encode('latin-1') for piece in pieces] for pieces in document['pieces']]
    consumed = sum(len(piece) for group in pieces for piece in group)
    assert document['rest'] == len(body) - consumed, 'reading on after the operations did not return the rest'
    return pieces


def input_url(server, ops: str, summary: bool = False) -> str:
    return server.url(f'/input?ops={ops}' + ('&summary=1' if summary else ''))


def post_raw_chunked(port: int, path: str, chunks: list[bytes], pause: float = 0.0) -> dict:
    """POST `chunks` with Transfer-Encoding: chunked over a raw socket (optionally pausing between chunks)."""
    head = f'POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
    with connect(port, timeout=60) as sock:
        sock.sendall(head.encode('latin-1'))
        for chunk in chunks:
            sock.sendall(b'%x\r\n%s\r\n' % (len(chunk), chunk))
            if pause:
                time.sleep(pause)
        sock.sendall(b'0\r\n\r\n')
        with sock.makefile('rb') as reader:
            response = read_response(reader)
    assert response.status == 200, response
    return json.loads(response.body)


def split_irregularly(body: bytes, seed: int = 7) -> list[bytes]:
    """Cut `body` into chunks of 1 to 9 bytes, so that lines and read sizes straddle chunk boundaries."""
    rng = random.Random(seed)
    chunks, start = [], 0
    while start < len(body):
        size = rng.randint(1, 9)
        chunks.append(body[start : start + size])
        start += size
    return chunks


def iterate(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize('name', list(OPERATIONS))
def test_with_content_length(wsgi_server, http_client: httpx.Client, input_ops, name: str):
    ops = OPERATIONS[name]
    response = http_client.post(input_url(wsgi_server, ops), content=LINES_BODY)
    assert response.status_code == 200, response.text
    assert decode_pieces(response.json(), LINES_BODY) == expected_pieces(input_ops, LINES_BODY, ops)


@pytest.mark.parametrize('name', list(OPERATIONS))
def test_with_streamed_body_without_length(wsgi_server, http_client: httpx.Client, input_ops, name: str):
    # httpx sends an iterator body chunked over HTTP/1.1 and as DATA frames without content-length over h2c.
    ops = OPERATIONS[name]
    response = http_client.post(input_url(wsgi_server, ops), content=iterate(LINES_BODY, 6))
    assert response.status_code == 200, response.text
    assert decode_pieces(response.json(), LINES_BODY) == expected_pieces(input_ops, LINES_BODY, ops)


@pytest.mark.parametrize('name', list(OPERATIONS))
def test_with_raw_chunked_body(wsgi_server, input_ops, name: str):
    ops = OPERATIONS[name]
    document = post_raw_chunked(wsgi_server.port, f'/input?ops={ops}', split_irregularly(LINES_BODY))
    assert decode_pieces(document, LINES_BODY) == expected_pieces(input_ops, LINES_BODY, ops)


def test_read_n_waits_for_exactly_n_bytes_of_a_slow_chunked_body(wsgi_server, input_ops):
    # 50 chunks of 999 bytes, 10 ms apart: read(4096) must block for the rest rather than return what arrived.
    body = os.urandom(50 * 999)
    ops = 'readall=4096'
    document = post_raw_chunked(wsgi_server.port, f'/input?ops={ops}&summary=1', list(iterate(body, 999)), 0.01)
    expected = [len(piece) for piece in expected_pieces(input_ops, body, ops)[0]]
    assert document['lengths'] == [expected]
    assert document['sha256'] == hashlib.sha256(body).hexdigest()


def test_readline_of_a_slow_chunked_body(wsgi_server, input_ops):
    body = b''.join(f'line {index} '.encode() * (index % 5) + b'\n' for index in range(200))
    ops = 'readlineall'
    document = post_raw_chunked(wsgi_server.port, f'/input?ops={ops}', list(iterate(body, 50)), 0.002)
    assert decode_pieces(document, body) == expected_pieces(input_ops, body, ops)


@pytest.mark.parametrize('ops', ['read', 'readline', 'readlines', 'iter', 'read=10'])
def test_request_without_body(wsgi_server, http_client: httpx.Client, input_ops, ops: str):
    response = http_client.get(input_url(wsgi_server, ops))
    assert response.status_code == 200, response.text
    assert decode_pieces(response.json(), b'') == expected_pieces(input_ops, b'', ops)


def test_readlines_with_hint_returns_whole_lines(wsgi_server, http_client: httpx.Client):
    # PEP 3333 lets the server ignore the hint, but what it returns must be whole lines, and the rest must follow.
    response = http_client.post(input_url(wsgi_server, 'readlines=8,readlines'), content=LINES_BODY)
    assert response.status_code == 200, response.text
    hinted, rest = decode_pieces(response.json(), LINES_BODY)
    assert hinted, 'readlines(8) returned nothing although the body has lines'
    assert hinted + rest == LINES_BODY.splitlines(keepends=True)


@pytest.fixture(scope='module')
def big_body() -> bytes:
    return os.urandom(TEN_MIB)


@pytest.mark.parametrize('ops', ['read', 'readall=65536', 'readall=1000000', 'readlineall', 'iter'])
def test_10mib_upload_with_content_length(wsgi_server, http_client: httpx.Client, input_ops, big_body, ops: str):
    response = http_client.post(input_url(wsgi_server, ops, summary=True), content=big_body)
    assert response.status_code == 200, response.text[:300]
    document = response.json()
    assert document['sha256'] == hashlib.sha256(big_body).hexdigest()
    expected = [[len(piece) for piece in pieces] for pieces in expected_pieces(input_ops, big_body, ops)]
    assert document['lengths'] == expected


def test_10mib_upload_streamed_without_length(wsgi_server, http_client: httpx.Client, big_body):
    response = http_client.post(input_url(wsgi_server, 'read', summary=True), content=iterate(big_body, 100_000))
    assert response.status_code == 200, response.text[:300]
    document = response.json()
    assert document['lengths'] == [[TEN_MIB]]
    assert document['sha256'] == hashlib.sha256(big_body).hexdigest()


def test_10mib_upload_raw_chunked(wsgi_server, input_ops, big_body):
    ops = 'readall=65536'
    document = post_raw_chunked(wsgi_server.port, f'/input?ops={ops}&summary=1', list(iterate(big_body, 200_000)))
    assert document['sha256'] == hashlib.sha256(big_body).hexdigest()
    assert document['lengths'] == [[len(piece) for piece in expected_pieces(input_ops, big_body, ops)[0]]]


def test_unread_body_does_not_break_the_next_request(wsgi_server, http_client: httpx.Client, http_version: str):
    # /hello never touches wsgi.input: the server must skip the body (or close) and keep serving this client.
    # Over h2c the body stays within the flow-control window: a server may answer early and reset the rest of a
    # bigger upload with RST_STREAM(NO_ERROR), which httpx reports as an error.
    size = 1024 * 1024 if http_version == '1.1' else 16 * 1024
    response = http_client.post(wsgi_server.url('/hello'), content=os.urandom(size))
    assert (response.status_code, response.text) == (200, 'hello')
    follow_up = http_client.get(wsgi_server.url('/hello'))
    assert (follow_up.status_code, follow_up.text) == (200, 'hello')
