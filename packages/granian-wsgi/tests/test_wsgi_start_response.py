"""PEP 3333 `start_response`: the write() callable, exc_info, and the fatal misuses (second call, bad status)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests_support.waiting import wait_until


def assert_still_serving(server, client: httpx.Client) -> None:
    follow_up = client.get(server.url('/hello'))
    assert (follow_up.status_code, follow_up.text) == (200, 'hello')


def logged_errors_of(server, count_error_records, log_before: int) -> list[str]:
    """Wait (bounded) for the server to log an error after `log_before`; return every error record logged."""
    wait_until(lambda: count_error_records(server.output[log_before:]), 10)
    # A second record for the same request would follow right away.
    time.sleep(0.5)
    return count_error_records(server.output[log_before:])


def test_write_callable_then_returned_iterable(wsgi_server, http_client: httpx.Client):
    response = http_client.get(wsgi_server.url('/write'))
    assert response.status_code == 200
    assert response.content == b'abc', 'write(b"a"); write(b"b"); return [b"c"] sends the bytes in that order'


def test_write_from_inside_the_generator_keeps_order(wsgi_server, http_client: httpx.Client):
    response = http_client.get(wsgi_server.url('/write-in-generator'))
    assert response.status_code == 200
    assert response.content == b'1234'


def test_start_response_called_in_the_first_iteration(wsgi_server, http_client: httpx.Client):
    response = http_client.get(wsgi_server.url('/lazy-start'))
    assert (response.status_code, response.content) == (200, b'started lazily')


@pytest.mark.parametrize('shape', ['list', 'tuple', 'generator', 'list-subclass'])
def test_response_status_and_headers(wsgi_server, http_client: httpx.Client, shape: str):
    response = http_client.get(
        wsgi_server.url(f'/response-headers?as={shape}' if shape != 'list' else '/response-headers')
    )
    assert response.status_code == 201
    assert response.headers['content-type'] == 'text/plain; charset=utf-8'
    assert response.headers['x-kind'] == 'wsgi'
    assert response.headers.get_list('x-multi') == ['1', '2'], 'repeated response headers are all sent, in order'
    assert response.headers['content-length'] == '5'
    assert response.content == b'hello'
    assert (response.headers.get('x-from-iter') == 'yes') == (shape == 'list-subclass'), 'headers are iterated'


def test_exc_info_replaces_the_status_before_anything_was_sent(wsgi_server, http_client: httpx.Client):
    response = http_client.get(wsgi_server.url('/exc-info-replace'))
    assert response.status_code == 500
    assert response.content == b'error body from the app'
    assert_still_serving(wsgi_server, http_client)


def test_exc_info_after_an_empty_chunk_still_replaces_the_status(wsgi_server, http_client: httpx.Client):
    # PEP 3333: headers go out with the first non-empty chunk, so b'' does not commit the status.
    response = http_client.get(wsgi_server.url('/exc-info-after-empty-yield'))
    assert response.status_code == 503
    assert response.content == b'replaced after an empty chunk'
    assert_still_serving(wsgi_server, http_client)


def test_exc_info_after_body_bytes_raises_in_the_app(
    wsgi_server, http_client: httpx.Client, tmp_path: Path, read_marker, count_error_records
):
    marker = tmp_path / 'record.json'
    log_before = len(wsgi_server.output)
    try:
        http_client.get(wsgi_server.url(f'/exc-info-after-body?marker={quote(str(marker))}'), timeout=10)
    except httpx.HTTPError:
        pass  # The app failed after its response started: an aborted response is the expected outcome.
    assert wait_until(marker.exists, 10), 'the app never reached its second start_response call'
    record = read_marker(marker)
    assert record['outcome'] != 'returned', 'start_response(..., exc_info) returned although the body had started'
    # PEP 3333 recommends re-raising the original exception (ValueError here).
    assert record['outcome'] == 're-raised', record
    assert_still_serving(wsgi_server, http_client)
    # Let the server log the app's failure here, not in the middle of the next test's log slice.
    logged_errors_of(wsgi_server, count_error_records, log_before)


def test_second_start_response_without_exc_info_is_500_and_logged_once(
    wsgi_server, http_client: httpx.Client, count_error_records
):
    log_before = len(wsgi_server.output)
    response = http_client.get(wsgi_server.url('/double-start'))
    assert response.status_code == 500, response.text
    assert b'accepted' not in response.content
    errors = logged_errors_of(wsgi_server, count_error_records, log_before)
    assert len(errors) == 1, f'expected one logged error, got:\n{wsgi_server.output[log_before:]}'
    assert_still_serving(wsgi_server, http_client)


@pytest.mark.parametrize('status', ['OK 200', '2000 X', 'abc'])
def test_invalid_status_is_500_and_logged_once(
    wsgi_server, http_client: httpx.Client, count_error_records, status: str
):
    log_before = len(wsgi_server.output)
    response = http_client.get(wsgi_server.url(f'/bad-status?status={quote(status)}'))
    assert response.status_code == 500, f'status {status!r} was answered {response.status_code}: {response.text}'
    assert b'accepted' not in response.content
    errors = logged_errors_of(wsgi_server, count_error_records, log_before)
    assert len(errors) == 1, f'expected one logged error, got:\n{wsgi_server.output[log_before:]}'
    assert_still_serving(wsgi_server, http_client)


def test_app_exception_is_500_and_logged_once(wsgi_server, http_client: httpx.Client, count_error_records):
    token = uuid.uuid4().hex
    log_before = len(wsgi_server.output)
    response = http_client.get(wsgi_server.url(f'/raise?token={token}'))
    assert response.status_code == 500
    assert token not in response.text, 'the exception text must not leak to the client'
    errors = logged_errors_of(wsgi_server, count_error_records, log_before)
    assert len(errors) == 1, f'expected one logged error, got:\n{wsgi_server.output[log_before:]}'
    assert token in wsgi_server.output[log_before:], 'the exception itself is not in the log'
    assert_still_serving(wsgi_server, http_client)
