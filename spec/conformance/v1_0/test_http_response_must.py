"""Answering an HTTP request, and the errors before a response (rsgi.md sections 5.2 and 5.3)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

pytestmark = pytest.mark.usefixtures('server')

NON_ASCII = 'héllo wörld — ✓ 日本 😀'  # what /http/str sends (apps/http_routes.py)
SECRET = 'conformance-secret-7f3a9c'  # in the text of the exceptions /http/app-error raises


class RawResponse(NamedTuple):
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in the order received
    body: bytes
    framing: str  # 'chunked', 'length', 'none' (a status without body) or 'close' (delimited by EOF)
    complete: bool  # the framing said the body ended: content-length reached or the final chunk received

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b''

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def until(self, separator: bytes) -> bytes | None:
        while separator not in self.buffer:
            if not self._fill():
                return None
        part, _, self.buffer = self.buffer.partition(separator)
        return part

    def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._fill():
                return None
        part, self.buffer = self.buffer[:size], self.buffer[size:]
        return part


def read_response(reader: Reader, head_only: bool = False) -> RawResponse:
    head = reader.until(b'\r\n\r\n')
    assert head is not None, 'the connection closed before a response head'
    status_line, *lines = head.decode('latin-1').split('\r\n')
    status = int(status_line.split(' ')[1])
    headers = [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(':') for line in lines)]
    names = {name: value for name, value in headers}
    if head_only or status in {204, 304} or status < 200:
        return RawResponse(status, headers, b'', 'none', True)
    if 'chunked' in names.get('transfer-encoding', '').lower():
        body = b''
        while (size_line := reader.until(b'\r\n')) is not None:
            size = int(size_line.split(b';')[0], 16)
            if size == 0:
                while (trailer := reader.until(b'\r\n')) not in (None, b''):
                    pass
                return RawResponse(status, headers, body, 'chunked', trailer is not None)
            data = reader.exactly(size + 2)
            if data is None:
                return RawResponse(status, headers, body + reader.buffer, 'chunked', False)
            body += data[:-2]
        return RawResponse(status, headers, body, 'chunked', False)
    if 'content-length' in names:
        data = reader.exactly(int(names['content-length']))
        if data is None:
            return RawResponse(status, headers, reader.buffer, 'length', False)
        return RawResponse(status, headers, data, 'length', True)
    while reader._fill():
        pass
    return RawResponse(status, headers, reader.buffer, 'close', True)


def raw_get(server, target: str, method: str = 'GET') -> RawResponse:
    """One request on a new connection (Connection: close), its response read as sent."""
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(f'{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'.encode())
        return read_response(Reader(sock), head_only=method == 'HEAD')


def file_body(server, name: str = 'http-file.bin') -> bytes:
    """A file the app wrote into the state dir at import time (apps/http_routes.py)."""
    return (Path(server.state_dir) / name).read_bytes()


# -- http-response-status -------------------------------------------------------------------------------


@pytest.mark.requirement('http-response-status')
@pytest.mark.parametrize(
    'code',
    [200, 201, 202, 203, 204, 206, 299, 301, 302, 304, 307, 400, 401, 403, 404, 409, 418, 422, 429, 500, 503, 599],
)
def test_status_is_sent(server, code):
    assert raw_get(server, f'/http/status?code={code}').status == code


@pytest.mark.requirement('http-response-status')
@pytest.mark.parametrize('code', [201, 404, 500])
def test_status_is_sent_with_a_body(server, code):
    response = httpx.get(server.url(f'/http/status?code={code}&body=text'), timeout=10)
    assert response.status_code == code
    assert response.text == 'text'


# -- http-response-headers ------------------------------------------------------------------------------

EXPECTED_MULTI = ['first', 'second', 'third']
EXPECTED_COOKIES = ['a=1; Path=/', 'b=2; Path=/']


@pytest.mark.requirement('http-response-headers')
@pytest.mark.parametrize('method', ['str', 'bytes', 'empty', 'file'])
def test_every_header_is_sent_repeated_names_twice_in_order(server, method):
    response = raw_get(server, f'/http/headers?method={method}')
    assert response.status == 200
    assert response.values('x-single') == ['one']
    assert response.values('x-multi') == EXPECTED_MULTI
    assert response.values('set-cookie') == EXPECTED_COOKIES
    assert response.values('content-type') == ['text/plain; charset=utf-8']


@pytest.mark.requirement('http-response-headers')
@pytest.mark.parametrize('method', ['str', 'bytes', 'empty', 'file'])
def test_transport_fields_are_added(server, method):
    response = raw_get(server, f'/http/headers?method={method}')
    assert response.values('content-length') or response.values('transfer-encoding'), response.headers
    assert len(response.values('date')) == 1, response.headers
    assert len(response.values('server')) == 1, response.headers
    assert response.complete


@pytest.mark.requirement('http-response-headers')
def test_headers_through_httpx(server):
    response = httpx.get(server.url('/http/headers'), timeout=10)
    assert response.headers.get_list('x-multi') == EXPECTED_MULTI
    assert response.headers.get_list('set-cookie') == EXPECTED_COOKIES
    assert response.text == 'headers'


@pytest.mark.requirement('http-response-headers')
def test_a_field_the_app_set_is_not_added_again(server):
    response = raw_get(server, '/http/headers-own-server')
    assert response.status == 200
    assert response.values('server') == ['rsgi-conformance-app']
    assert response.body == b'own server'


# -- http-response-empty ---------------------------------------------------------------------------------


@pytest.mark.requirement('http-response-empty')
@pytest.mark.parametrize('code', [200, 404])
def test_empty_response_has_no_body(server, code):
    response = raw_get(server, f'/http/empty?code={code}')
    assert response.status == code
    assert response.values('x-empty') == ['yes']
    assert response.complete
    assert response.body == b''
    assert response.values('content-length') in ([], ['0'])


@pytest.mark.requirement('http-response-empty')
def test_empty_response_keeps_the_connection_usable(server):
    with httpx.Client(timeout=10) as client:
        first = client.get(server.url('/http/empty'))
        second = client.get(server.url('/http/str'))
    assert (first.status_code, first.content) == (200, b'')
    assert second.text == NON_ASCII


# -- http-response-bytes ---------------------------------------------------------------------------------


def bytes_body(size: int) -> bytes:
    """What /http/bytes?size=N sends (apps/http_routes.py)."""
    return bytes((i * 31 + (i >> 8)) % 256 for i in range(size))


@pytest.mark.requirement('http-response-bytes')
@pytest.mark.parametrize('size', [0, 1, 256, 100_000, 2_000_000])
def test_bytes_body_is_sent_whole(server, size):
    response = raw_get(server, f'/http/bytes?size={size}')
    assert response.status == 200
    assert response.complete
    assert len(response.body) == size
    assert response.body == bytes_body(size)
    assert response.values('content-type') == ['application/octet-stream']
    assert response.values('content-length') in ([], [str(size)])


# -- http-response-str -----------------------------------------------------------------------------------


@pytest.mark.requirement('http-response-str')
def test_str_body_is_sent_as_utf8(server):
    response = raw_get(server, '/http/str')
    assert response.status == 200
    assert response.complete
    assert response.body == NON_ASCII.encode('utf-8')
    assert response.values('content-type') == ['text/plain; charset=utf-8']
    assert response.values('content-length') in ([], [str(len(NON_ASCII.encode('utf-8')))])


@pytest.mark.requirement('http-response-str')
def test_str_response_gets_no_content_type_from_the_server(server):
    response = raw_get(server, '/http/str?ctype=0')
    assert response.status == 200
    assert response.body == NON_ASCII.encode('utf-8')
    assert response.values('content-type') == []


# -- http-response-file ----------------------------------------------------------------------------------


@pytest.mark.requirement('http-response-file')
def test_file_content_is_sent_whole(server):
    expected = file_body(server)
    assert len(expected) == 300_000
    response = raw_get(server, '/http/file')
    assert response.status == 200
    assert response.complete
    assert response.body == expected
    assert response.values('content-type') == ['application/octet-stream']
    assert response.values('content-length') in ([], [str(len(expected))])


@pytest.mark.requirement('http-response-file')
def test_empty_file_gives_an_empty_body(server):
    assert file_body(server, 'http-file-empty.bin') == b''
    response = raw_get(server, '/http/file?which=empty')
    assert response.status == 200
    assert response.complete
    assert response.body == b''


@pytest.mark.requirement('http-response-file')
def test_file_through_httpx_twice_on_one_connection(server):
    expected = file_body(server)
    with httpx.Client(timeout=10) as client:
        for _ in range(2):
            response = client.get(server.url('/http/file'))
            assert response.status_code == 200
            assert response.content == expected


# -- http-no-response ------------------------------------------------------------------------------------


@pytest.mark.requirement('http-no-response')
def test_returning_without_a_response_gives_500(server):
    response = raw_get(server, '/http/no-response')
    assert response.status == 500
    assert response.complete


@pytest.mark.requirement('http-no-response')
def test_returning_without_a_response_after_reading_the_body_gives_500(server):
    response = httpx.post(server.url('/http/no-response?read=1'), content=b'body', timeout=10)
    assert response.status_code == 500


# -- http-app-error --------------------------------------------------------------------------------------


@pytest.mark.requirement('http-app-error')
@pytest.mark.parametrize('target', ['/http/app-error', '/http/app-error?kind=value'])
def test_exception_before_response_gives_500_without_its_text(server, target):
    response = raw_get(server, target)
    assert response.status == 500
    assert response.complete
    assert SECRET.encode() not in response.body
    assert not any(SECRET in value for _, value in response.headers)


@pytest.mark.requirement('http-app-error')
def test_exception_after_reading_the_body_gives_500(server):
    response = httpx.post(server.url('/http/app-error?read=1'), content=b'body', timeout=10)
    assert response.status_code == 500
    assert SECRET not in response.text


@pytest.mark.requirement('http-app-error')
def test_server_goes_on_serving_after_an_exception(server):
    with httpx.Client(timeout=10) as client:
        for _ in range(3):
            assert client.get(server.url('/http/app-error')).status_code == 500
        response = client.get(server.url('/http/str'))
    assert response.status_code == 200
    assert response.text == NON_ASCII
    assert httpx.get(server.url('/http/status?code=201'), timeout=10).status_code == 201
