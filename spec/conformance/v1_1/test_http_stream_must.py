"""Stream responses (rsgi.md sections 5.2 and 5.3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from clients import RawResponse, Reader, connect, raw_get, read_chunks, read_head, read_response, request

pytestmark = pytest.mark.usefixtures('server')

STREAM_BODY = b'one,' + 'twö,'.encode() + b'three'  # what /http/stream sends (apps/http_routes.py)


# -- http-response-stream --------------------------------------------------------------------------------


@pytest.mark.requirement('http-response-stream')
def test_stream_sends_status_headers_and_body_in_call_order(server):
    response = raw_get(server, '/http/stream', close=False)
    assert response.status == 200
    assert response.values('x-stream') == ['yes']
    assert response.values('content-type') == ['text/plain; charset=utf-8']
    assert response.body == STREAM_BODY


@pytest.mark.requirement('http-response-stream')
def test_stream_ends_with_the_final_chunk_when_the_app_returns(server):
    # Keep-alive: only the final chunk tells the client the body ended.
    with connect(server) as sock:
        sock.sendall(request('/http/stream', close=False))
        reader = Reader(sock)
        response = read_response(reader)
        assert response.framing == 'chunked', response.headers
        assert response.complete, 'no final chunk'
        assert response.body == STREAM_BODY
        # The connection is still in a clean state: the next request on it is answered.
        sock.sendall(request('/http/stream'))
        assert read_response(reader).body == STREAM_BODY


@pytest.mark.requirement('http-response-stream')
def test_stream_through_httpx(server):
    with httpx.Client(timeout=10) as client:
        for _ in range(2):
            response = client.get(server.url('/http/stream'))
            assert response.status_code == 200
            assert response.content == STREAM_BODY
            assert response.headers['x-stream'] == 'yes'


@pytest.mark.requirement('http-response-stream')
def test_stream_sends_repeated_headers(server):
    response = raw_get(server, '/http/headers?method=stream')
    assert response.status == 200
    assert response.values('x-multi') == ['first', 'second', 'third']
    assert response.values('set-cookie') == ['a=1; Path=/', 'b=2; Path=/']
    assert response.body == b'headers'
    assert response.complete


@contextmanager
def gated_stream(server, key: str, query: str = '') -> Iterator[tuple[int, list[tuple[str, str]], Reader, Callable]]:
    """GET /http/stream-gated?key=KEY...; the app answers (and sends `first;`), then waits for its go file.

    Yields the status, the headers, the reader of the body, and `go()`: create the go file, read the rest of
    the chunked body (its data and whether the final chunk came).
    """
    with connect(server) as sock:
        sock.sendall(request(f'/http/stream-gated?key={key}{query}'))
        reader = Reader(sock)
        status, headers = read_head(reader)

        def go() -> tuple[bytes, bool]:
            (Path(server.state_dir) / f'stream-go-{key}').touch()
            return read_chunks(reader)

        yield status, headers, reader, go


@pytest.mark.requirement('http-response-stream')
def test_stream_data_reaches_the_client_before_the_app_returns(server):
    # The app waits for the go file after its first send: status, headers and that send arrive first.
    with gated_stream(server, 'progress') as (status, headers, reader, go):
        assert status == 200
        assert 'chunked' in dict(headers).get('transfer-encoding', '')
        assert read_chunks(reader, stop_after=b'first;') == (b'first;', False)
        assert go() == (b'last', True)


@pytest.mark.requirement('http-response-stream')
def test_status_and_headers_are_sent_before_the_first_send(server):
    # The app has called response_stream() and waits for the go file before sending anything.
    with gated_stream(server, 'head', '&first=0') as (status, headers, _, go):
        assert status == 200
        assert ('x-gated', 'yes') in headers
        assert go() == (b'last', True)


# -- http-stream-empty-chunk -----------------------------------------------------------------------------


@pytest.mark.requirement('http-stream-empty-chunk')
def test_empty_sends_do_not_end_the_response(server):
    with connect(server) as sock:
        sock.sendall(request('/http/stream-empty'))
        reader = Reader(sock)
        response = read_response(reader)
        after = reader.rest()
    assert response.status == 200
    assert response.complete
    assert response.body == b'abcd'
    # A premature final chunk would leave the later sends after the end of the response.
    assert after == b''


@pytest.mark.requirement('http-stream-empty-chunk')
def test_empty_sends_through_httpx(server):
    with httpx.Client(timeout=10) as client:
        for _ in range(2):
            response = client.get(server.url('/http/stream-empty'))
            assert response.content == b'abcd'


# -- http-error-after-start ------------------------------------------------------------------------------


def read_truncated(server, target: str) -> RawResponse:
    """A keep-alive request whose response must end without a final chunk, by the server closing."""
    try:
        return raw_get(server, target, close=False)
    except TimeoutError:
        pytest.fail('the server neither ended the body nor closed the connection within 10 s')


@pytest.mark.requirement('http-error-after-start')
def test_exception_after_start_truncates_the_response(server):
    response = read_truncated(server, '/http/stream-error')
    assert response.status == 200
    assert response.body.startswith(b'partial;')
    assert not response.complete, 'the body was terminated as if complete'


@pytest.mark.requirement('http-error-after-start')
def test_exception_right_after_start_is_not_a_complete_response(server):
    # The app raises before its first send: a server that has not sent the head yet may still answer 500.
    response = read_truncated(server, '/http/stream-error?sends=0')
    assert response.status == 500 or not response.complete, response


@pytest.mark.requirement('http-error-after-start')
def test_httpx_sees_the_truncation(server):
    with httpx.Client(timeout=10) as client, pytest.raises(httpx.TransportError) as caught:
        client.get(server.url('/http/stream-error'))
    assert not isinstance(caught.value, httpx.TimeoutException), caught.value
