"""Stream responses (rsgi.md sections 5.2 and 5.3)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

pytestmark = pytest.mark.usefixtures('server')

STREAM_BODY = b'one,' + 'twö,'.encode() + b'three'  # what /http/stream sends (apps/http_routes.py)


class RawResponse(NamedTuple):
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in the order received
    body: bytes
    framing: str  # 'chunked', 'length' or 'close' (delimited by EOF)
    complete: bool  # the framing said the body ended: content-length reached or the final chunk received

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b''

    def fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def until(self, separator: bytes) -> bytes | None:
        while separator not in self.buffer:
            if not self.fill():
                return None
        part, _, self.buffer = self.buffer.partition(separator)
        return part

    def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self.fill():
                return None
        part, self.buffer = self.buffer[:size], self.buffer[size:]
        return part

    def rest(self) -> bytes:
        """Everything up to EOF."""
        while self.fill():
            pass
        rest, self.buffer = self.buffer, b''
        return rest


def read_head(reader: Reader) -> tuple[int, list[tuple[str, str]]]:
    head = reader.until(b'\r\n\r\n')
    assert head is not None, 'the connection closed before a response head'
    status_line, *lines = head.decode('latin-1').split('\r\n')
    headers = [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(':') for line in lines)]
    return int(status_line.split(' ')[1]), headers


def read_chunks(reader: Reader, stop_after: bytes | None = None) -> tuple[bytes, bool]:
    """A chunked body: its data and whether the final chunk came. With `stop_after`, return once that much came."""
    body = b''
    while (size_line := reader.until(b'\r\n')) is not None:
        size = int(size_line.split(b';')[0], 16)
        if size == 0:
            while (trailer := reader.until(b'\r\n')) not in (None, b''):
                pass
            return body, trailer is not None
        data = reader.exactly(size + 2)
        if data is None:
            return body + reader.buffer, False
        body += data[:-2]
        if stop_after is not None and len(body) >= len(stop_after):
            return body, False
    return body, False


def read_response(reader: Reader) -> RawResponse:
    status, headers = read_head(reader)
    names = dict(headers)
    if 'chunked' in names.get('transfer-encoding', '').lower():
        body, complete = read_chunks(reader)
        return RawResponse(status, headers, body, 'chunked', complete)
    if 'content-length' in names:
        data = reader.exactly(int(names['content-length']))
        if data is None:
            return RawResponse(status, headers, reader.buffer, 'length', False)
        return RawResponse(status, headers, data, 'length', True)
    return RawResponse(status, headers, reader.rest(), 'close', True)


def connect(server) -> socket.socket:
    return socket.create_connection(('127.0.0.1', server.port), timeout=10)


def request(target: str, close: bool = True) -> bytes:
    connection = 'Connection: close\r\n' if close else ''
    return f'GET {target} HTTP/1.1\r\nHost: x\r\n{connection}\r\n'.encode()


# -- http-response-stream --------------------------------------------------------------------------------


@pytest.mark.requirement('http-response-stream')
def test_stream_sends_status_headers_and_body_in_call_order(server):
    with connect(server) as sock:
        sock.sendall(request('/http/stream', close=False))
        response = read_response(Reader(sock))
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
    with connect(server) as sock:
        sock.sendall(request('/http/headers?method=stream'))
        response = read_response(Reader(sock))
    assert response.status == 200
    assert response.values('x-multi') == ['first', 'second', 'third']
    assert response.values('set-cookie') == ['a=1; Path=/', 'b=2; Path=/']
    assert response.body == b'headers'
    assert response.complete


@pytest.mark.requirement('http-response-stream')
def test_stream_data_reaches_the_client_before_the_app_returns(server):
    go = Path(server.state_dir) / 'stream-go-progress'
    with connect(server) as sock:
        sock.sendall(request('/http/stream-gated?key=progress'))
        reader = Reader(sock)
        # The app waits for the go file after its first send: status, headers and that send arrive first.
        status, headers = read_head(reader)
        assert status == 200
        assert 'chunked' in dict(headers).get('transfer-encoding', '')
        assert read_chunks(reader, stop_after=b'first;') == (b'first;', False)
        go.touch()
        rest = read_chunks(reader)
    assert rest == (b'last', True)


@pytest.mark.requirement('http-response-stream')
def test_status_and_headers_are_sent_before_the_first_send(server):
    go = Path(server.state_dir) / 'stream-go-head'
    with connect(server) as sock:
        sock.sendall(request('/http/stream-gated?key=head&first=0'))
        reader = Reader(sock)
        # The app has called response_stream() and waits for the go file before sending anything.
        status, headers = read_head(reader)
        assert status == 200
        assert ('x-gated', 'yes') in headers
        go.touch()
        rest = read_chunks(reader)
    assert rest == (b'last', True)


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
    with connect(server) as sock:
        sock.sendall(request(target, close=False))
        try:
            return read_response(Reader(sock))
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
