"""ASGI 2.4 `send()`: `http.response.start` + `http.response.body` (whole and streamed) and `http.response.pathsend`."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

PATHSEND_FILE_SIZE = 5 * 1024 * 1024


@pytest.fixture(scope='module')
def data_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A 5 MiB file with random content."""
    content = os.urandom(PATHSEND_FILE_SIZE)
    path = tmp_path_factory.mktemp('pathsend') / 'data.bin'
    path.write_bytes(content)
    return path, content


@pytest.mark.parametrize('status', [200, 201, 404, 418, 503])
def test_single_body_response(asgi_server, http_client: httpx.Client, status: int):
    response = http_client.get(asgi_server.url(f'/response?status={status}'))
    assert response.status_code == status
    assert response.headers['content-type'] == 'text/plain; charset=utf-8'
    assert response.headers['x-kind'] == 'asgi'
    assert response.headers.get_list('x-multi') == ['1', '2'], 'repeated response headers are all sent, in order'
    assert response.content == b'single body'


@pytest.mark.parametrize('shape', ['list', 'tuple', 'pair-lists', 'iterator', 'bytearray-values'])
def test_response_headers_in_every_shape(asgi_server, http_client: httpx.Client, shape: str):
    response = http_client.get(asgi_server.url(f'/response?shape={shape}'))
    assert response.status_code == 200
    assert response.headers['content-type'] == 'text/plain; charset=utf-8'
    assert response.headers['x-kind'] == 'asgi'
    assert response.headers.get_list('x-multi') == ['1', '2']
    assert response.content == b'single body'


@pytest.mark.parametrize('mutable', ['', '1'], ids=['new-bytes', 'same-bytearray'])
def test_headers_from_new_or_changed_objects_are_each_their_own(asgi_server, http_client: httpx.Client, mutable):
    # Response headers are cached by the identity of their objects: neither a bytes object freed
    # after one request (its address then given to another) nor a bytearray changed in place may
    # bring back an earlier header.
    for index in range(300):
        value = f'{index}-{"x" * (index % 7)}'
        response = http_client.get(asgi_server.url(f'/fresh-header?v={value}&mutable={mutable}'))
        assert (response.headers['x-value'], response.text) == (value, value)


def test_awaitables_work_as_futures_in_gather_and_by_hand(asgi_server, http_client: httpx.Client):
    # send() and receive() finish without raising StopIteration where they can: what asyncio and
    # a hand-stepped iterator see must stay the same.
    response = http_client.post(asgi_server.url('/awaited-every-way'), content=b'x')
    assert response.status_code == 200
    assert response.text == 'http.request [None] StopIteration(None)'


@pytest.mark.parametrize('chunks', [1, 5, 50])
def test_streamed_response(asgi_server, http_client: httpx.Client, chunks: int):
    expected = b''.join(f'chunk-{index};'.encode() for index in range(chunks))
    with http_client.stream('GET', asgi_server.url(f'/response?chunks={chunks}')) as response:
        assert response.status_code == 200
        assert response.headers.get_list('x-multi') == ['1', '2']
        received = b''.join(response.iter_raw())
    assert received == expected


def test_pathsend(asgi_server, http_client: httpx.Client, data_file):
    path, content = data_file
    response = http_client.get(asgi_server.url(f'/pathsend?path={quote(str(path))}'))
    assert response.status_code == 200
    assert response.headers['content-type'] == 'application/octet-stream'
    assert len(response.content) == len(content)
    assert response.content == content


def test_server_keeps_serving_after_responses(asgi_server, http_client: httpx.Client):
    assert http_client.get(asgi_server.url('/scope')).status_code == 200
