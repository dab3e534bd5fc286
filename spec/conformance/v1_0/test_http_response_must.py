"""Answering an HTTP request, and the errors before a response (rsgi.md sections 5.2 and 5.3)."""

from __future__ import annotations

import httpx
import pytest
from clients import raw_get, state_file

pytestmark = pytest.mark.usefixtures('server')

NON_ASCII = 'héllo wörld — ✓ 日本 😀'  # what /http/str sends (apps/http_routes.py)
SECRET = 'conformance-secret-7f3a9c'  # in the text of the exceptions /http/app-error raises


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
    expected = state_file(server)
    assert len(expected) == 300_000
    response = raw_get(server, '/http/file')
    assert response.status == 200
    assert response.complete
    assert response.body == expected
    assert response.values('content-type') == ['application/octet-stream']
    assert response.values('content-length') in ([], [str(len(expected))])


@pytest.mark.requirement('http-response-file')
def test_empty_file_gives_an_empty_body(server):
    assert state_file(server, 'http-file-empty.bin') == b''
    response = raw_get(server, '/http/file?which=empty')
    assert response.status == 200
    assert response.complete
    assert response.body == b''


@pytest.mark.requirement('http-response-file')
def test_file_through_httpx_twice_on_one_connection(server):
    expected = state_file(server)
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
