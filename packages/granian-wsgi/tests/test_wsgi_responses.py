"""PEP 3333 response iterables: lists, streamed generators, 10 MiB bodies, and close() on every way a response ends."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests_support.rawhttp import exchange, get_request
from tests_support.waiting import wait_until

TEN_MIB = 10 * 1024 * 1024


def marker_url(server, route: str, marker: Path, extra: str = '') -> str:
    return server.url(f'{route}?marker={quote(str(marker))}{extra}')


def test_list_of_chunks(wsgi_server, http_client: httpx.Client):
    response = http_client.get(wsgi_server.url('/chunks?count=5'))
    assert response.status_code == 200
    assert response.content == b''.join(f'chunk-{index};'.encode() for index in range(5))


@pytest.mark.parametrize('shape', ['list', 'tuple'])
def test_a_list_or_tuple_subclass_is_iterated_not_indexed(wsgi_server, http_client: httpx.Client, shape: str):
    # PEP 3333: the response is an iterable; a subclass's own __iter__ decides what is sent.
    response = http_client.get(wsgi_server.url(f'/iterated-body?as={shape}'))
    assert response.status_code == 200
    assert response.content == b'from items (iterated)'


def test_headers_made_from_new_strings_per_request_are_each_their_own(wsgi_server, http_client: httpx.Client):
    # Response headers are cached by the identity of their strings; a string freed after one
    # request and its address given to the next request's must not bring back the old header.
    for index in range(300):
        value = f'{index}-{"x" * (index % 7)}'
        response = http_client.get(wsgi_server.url(f'/fresh-header?v={value}'))
        assert (response.headers['x-value'], response.text) == (value, value)


@pytest.mark.parametrize('count', [1, 20, 200])
def test_generator_is_streamed(wsgi_server, http_client: httpx.Client, count: int):
    with http_client.stream('GET', wsgi_server.url(f'/stream?count={count}')) as response:
        assert response.status_code == 200
        received = b''.join(response.iter_raw())
    assert received == b''.join(f'chunk-{index};'.encode() for index in range(count))


def test_first_chunk_arrives_before_the_generator_finishes(wsgi_server, http_client: httpx.Client, tmp_path: Path):
    # The generator waits (up to 10 s) for this file before yielding its second chunk: a server that buffered the
    # whole response would only deliver 'first;' after that wait, and the second chunk would say so.
    proceed = tmp_path / 'proceed'
    with http_client.stream('GET', wsgi_server.url(f'/stream-handshake?proceed={quote(str(proceed))}')) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        received = b''
        for chunk in chunks:
            received += chunk
            if received.startswith(b'first;'):
                break
        proceed.write_text('go')
        received += b''.join(chunks)
    assert received == b'first;second;'


def test_10mib_streamed_response(wsgi_server, http_client: httpx.Client):
    expected = random.Random(3).randbytes(TEN_MIB)
    with http_client.stream('GET', wsgi_server.url(f'/stream-random?size={TEN_MIB}&seed=3')) as response:
        assert response.status_code == 200
        received = b''.join(response.iter_raw())
    assert len(received) == len(expected)
    assert received == expected


def test_head_sends_no_body(wsgi_server):
    response = exchange(wsgi_server.port, b'HEAD /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    assert response.status == 200
    assert response.body == b''
    assert exchange(wsgi_server.port, get_request('/hello', close=True)).body == b'hello'


@pytest.mark.parametrize('path', ['/close-marker', '/close-marker-list'], ids=['iterable', 'list-subclass'])
def test_close_is_called_after_a_complete_response(
    wsgi_server, http_client: httpx.Client, tmp_path, read_marker, path: str
):
    marker = tmp_path / 'closed.json'
    response = http_client.get(marker_url(wsgi_server, path, marker))
    assert (response.status_code, response.content) == (200, b'closed after this')
    assert wait_until(marker.exists, 10), 'close() of the response iterable was not called'
    assert read_marker(marker) == {'closed': True, 'sent': 3}


def test_close_is_called_when_iteration_fails(wsgi_server, http_client: httpx.Client, tmp_path, read_marker):
    marker = tmp_path / 'closed.json'
    token = uuid.uuid4().hex
    try:
        response = http_client.get(marker_url(wsgi_server, '/raise-mid-body', marker, f'&token={token}'), timeout=10)
    except httpx.TimeoutException as exc:
        pytest.fail(f'the response was neither completed nor aborted within 10 s: {exc!r}')
    except httpx.HTTPError:
        pass  # The body was cut off: the client knows it is incomplete.
    else:
        # The server may still answer 500 if it had not sent anything yet; it must not present a complete 200.
        assert response.status_code == 500, (
            f'the client got {response.status_code} {response.content!r} although the app raised mid-body'
        )
    assert wait_until(marker.exists, 10), 'close() was not called after the iterable raised'
    assert read_marker(marker)['closed'] is True
    assert http_client.get(wsgi_server.url('/hello')).status_code == 200
    assert wsgi_server.wait_for_output(token), f'the exception was not logged:\n{wsgi_server.output}'


DISCONNECTS = [
    ('1.1', 'close', 'generator'),
    ('1.1', 'close', 'class'),
    ('2', 'close', 'generator'),
    ('2', 'reset', 'class'),
]


@pytest.mark.parametrize(
    ('version', 'how', 'kind'),
    DISCONNECTS,
    ids=['http1.1-close-generator', 'http1.1-close-iterable', 'h2c-close-generator', 'h2c-stream-reset-iterable'],
)
def test_close_is_called_when_the_client_disconnects_mid_response(
    wsgi_server, open_pending_request, tmp_path, read_marker, version: str, how: str, kind: str
):
    marker = tmp_path / 'closed.json'
    started = tmp_path / 'closed.json.started'
    path = f'/endless?marker={quote(str(marker))}&kind={kind}'
    pending = open_pending_request(wsgi_server.port, path, version)
    try:
        assert wait_until(started.exists, 10), 'the app never started streaming'
        assert pending.receive_some(4096) >= 4096, 'the client received nothing of the streamed response'
        time.sleep(0.2)
        assert not marker.exists(), 'close() was called while the client was still connected'
        if how == 'reset':
            pending.reset_stream()
        else:
            pending.close()
        # The endless body would go on for 30 s: close() must come from the server noticing the client left.
        closed = wait_until(marker.exists, 15)
    finally:
        pending.close()
    assert closed, 'close() was not called within 15 s of the client disconnecting'
    assert read_marker(marker)['closed'] is True
    assert exchange(wsgi_server.port, get_request('/hello', close=True)).status == 200


@pytest.fixture(scope='module')
def data_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A 5 MiB file with random content."""
    content = random.Random(5).randbytes(5 * 1024 * 1024)
    path = tmp_path_factory.mktemp('file-wrapper') / 'data.bin'
    path.write_bytes(content)
    return path, content


@pytest.mark.parametrize('block_size', [None, 8192], ids=['default-block-size', 'block-size-8192'])
def test_file_wrapper_sends_the_file(wsgi_server, http_client: httpx.Client, data_file, block_size):
    path, content = data_file
    extra = '' if block_size is None else f'&block_size={block_size}'
    response = http_client.get(wsgi_server.url(f'/file-wrapper?path={quote(str(path))}{extra}'))
    assert response.status_code == 200
    assert response.headers['content-type'] == 'application/octet-stream'
    assert len(response.content) == len(content)
    assert response.content == content


@pytest.mark.parametrize(
    ('size', 'seek'),
    [(50 * 1024, 0), (50 * 1024, 1000), (64 * 1024, 0), (64 * 1024 + 1, 0), (200 * 1024, 70_000), (10, 10)],
    ids=['50k', '50k-from-1000', '64k', '64k-and-1', '200k-from-70000', 'read-to-its-end'],
)
def test_file_wrapper_sends_the_rest_of_the_file(wsgi_server, http_client: httpx.Client, tmp_path: Path, size, seek):
    # Files up to 64 KiB are read whole on the app's thread; larger ones are sent as the client takes them.
    content = random.Random(size + seek).randbytes(size)
    path = tmp_path / 'part.bin'
    path.write_bytes(content)
    response = http_client.get(wsgi_server.url(f'/file-wrapper?path={quote(str(path))}&seek={seek}'))
    assert response.status_code == 200
    assert response.headers['content-length'] == str(size - seek)
    assert response.content == content[seek:]


def test_file_wrapper_with_an_in_memory_file(wsgi_server, http_client: httpx.Client, tmp_path: Path):
    marker = tmp_path / 'closed.json'
    size = 3 * 1024 * 1024 + 17
    response = http_client.get(marker_url(wsgi_server, '/file-wrapper-bytesio', marker, f'&size={size}&seed=9'))
    assert response.status_code == 200
    expected = random.Random(9).randbytes(size)
    assert len(response.content) == size
    assert response.content == expected
    # PEP 3333: the wrapper's close() closes the file-like object, and the server calls it.
    assert wait_until(marker.exists, 10), 'the file-like object given to wsgi.file_wrapper was never closed'


def test_server_keeps_serving_after_responses(wsgi_server, http_client: httpx.Client):
    assert http_client.get(wsgi_server.url('/hello')).status_code == 200
