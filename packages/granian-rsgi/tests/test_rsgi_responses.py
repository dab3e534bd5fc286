"""RSGI 1.6 responses: empty/str/bytes/file/file range/stream, and what the server does when the app fails."""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

FILE_SIZE = 200_000


@pytest.fixture(scope='module')
def data_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A file larger than one read buffer, with random content."""
    content = os.urandom(FILE_SIZE)
    path = tmp_path_factory.mktemp('files') / 'data.bin'
    path.write_bytes(content)
    return path, content


def file_url(server, route: str, path: Path, **params: int) -> str:
    query = '&'.join([f'path={quote(str(path))}', *(f'{key}={value}' for key, value in params.items())])
    return server.url(f'{route}?{query}')


@pytest.mark.parametrize('status', [200, 204, 404])
def test_response_empty(rsgi_server, http_client: httpx.Client, status: int):
    response = http_client.get(rsgi_server.url(f'/response/empty?status={status}'))
    assert response.status_code == status
    assert response.headers['x-kind'] == 'empty'
    assert response.content == b''


@pytest.mark.parametrize('status', [200, 201, 418, 503])
def test_response_str(rsgi_server, http_client: httpx.Client, status: int):
    response = http_client.get(rsgi_server.url(f'/response/str?status={status}'))
    assert response.status_code == status
    assert response.headers['x-kind'] == 'str'
    assert response.headers['content-type'] == 'text/plain; charset=utf-8'
    assert response.content == 'héllo wörld ✓'.encode()


@pytest.mark.parametrize(('status', 'shape'), [(200, 'list'), (202, 'tuple'), (500, 'generator')])
def test_response_bytes(rsgi_server, http_client: httpx.Client, status: int, shape: str):
    response = http_client.get(rsgi_server.url(f'/response/bytes?status={status}&as={shape}'))
    assert response.status_code == status
    assert response.headers['x-kind'] == 'bytes'
    assert response.headers.get_list('x-multi') == ['1', '2'], 'repeated response headers are all sent, in order'
    assert response.content == bytes(range(256))


def test_response_invalid_headers_are_dropped(rsgi_server, http_client: httpx.Client):
    response = http_client.get(rsgi_server.url('/response/invalid-header'))
    assert response.status_code == 200
    assert response.text == 'ok'
    assert response.headers['x-ok'] == 'yes'
    assert 'x-bad-value' not in response.headers
    assert 'bad header name' not in response.headers


def test_headers_made_from_new_strings_per_request_are_each_their_own(rsgi_server, http_client: httpx.Client):
    # Response headers are cached by the identity of their strings; a string freed after one
    # request and its address given to the next request's must not bring back the old header.
    for index in range(300):
        value = f'{index}-{"x" * (index % 7)}'
        response = http_client.get(rsgi_server.url(f'/response/fresh-header?v={value}'))
        assert (response.headers['x-value'], response.text) == (value, value)


def test_response_invalid_headers_stay_dropped_when_repeated(rsgi_server, http_client: httpx.Client):
    for _ in range(3):
        response = http_client.get(rsgi_server.url('/response/invalid-header'))
        assert response.headers.get('x-ok') == 'yes' and 'x-bad-value' not in response.headers


def test_second_response_is_ignored(rsgi_server, http_client: httpx.Client):
    response = http_client.get(rsgi_server.url('/response/double'))
    assert (response.status_code, response.text) == (200, 'first')
    assert http_client.get(rsgi_server.url('/scope')).status_code == 200


def test_response_file(rsgi_server, http_client: httpx.Client, data_file):
    path, content = data_file
    response = http_client.get(file_url(rsgi_server, '/file', path))
    assert response.status_code == 200
    assert response.headers['content-type'] == 'application/octet-stream'
    assert len(response.content) == len(content)
    assert response.content == content


@pytest.mark.parametrize(
    ('start', 'end'),
    [(0, 1), (10, 1000), (0, FILE_SIZE), (FILE_SIZE - 5, FILE_SIZE), (1, 150_001)],
    ids=['first-byte', 'middle', 'whole', 'tail', 'spans-buffers'],
)
def test_response_file_range_end_is_exclusive(rsgi_server, http_client: httpx.Client, data_file, start, end):
    path, content = data_file
    response = http_client.get(file_url(rsgi_server, '/file-range', path, start=start, end=end))
    assert response.status_code == 206
    assert len(response.content) == end - start
    assert response.content == content[start:end]


@pytest.mark.parametrize(('start', 'end'), [(10, 10), (11, 10)], ids=['empty', 'reversed'])
def test_response_file_range_start_not_before_end_raises_value_error(
    rsgi_server, http_client: httpx.Client, data_file, start, end
):
    path, _ = data_file
    response = http_client.get(file_url(rsgi_server, '/file-range', path, start=start, end=end))
    # The app turns the ValueError raised by response_file_range into a 416 carrying the exception.
    assert response.status_code == 416, response.text
    assert response.text.startswith('ValueError'), response.text


@pytest.mark.parametrize('route', ['/file', '/file-range'])
def test_response_file_missing_is_404(rsgi_server, http_client: httpx.Client, tmp_path: Path, route: str):
    missing = tmp_path / 'does-not-exist.bin'
    response = http_client.get(file_url(rsgi_server, route, missing, start=0, end=10))
    assert response.status_code == 404
    assert http_client.get(rsgi_server.url('/scope')).status_code == 200


def test_response_file_that_cannot_be_read_is_500_not_404(rsgi_server, http_client: httpx.Client, tmp_path: Path):
    # A directory opens but cannot be read: a server-side failure, not a missing file.
    response = http_client.get(file_url(rsgi_server, '/file', tmp_path))
    assert response.status_code == 500
    assert http_client.get(rsgi_server.url('/scope')).status_code == 200


def test_many_files_at_once_each_reach_their_own_request(rsgi_server, tmp_path: Path):
    # Files answered in the same event-loop iteration are opened together, on one blocking thread:
    # each response must still carry its own file (or its own 404).
    files = {}
    for index in range(48):
        path = tmp_path / f'part-{index}.bin'
        if index % 7 != 3:
            files[path] = os.urandom(1000 + index * 1500)
            path.write_bytes(files[path])
        else:
            files[path] = None
    with httpx.Client(timeout=20, limits=httpx.Limits(max_connections=24)) as client:

        def fetch(path: Path) -> tuple[Path, int, bytes]:
            response = client.get(file_url(rsgi_server, '/file', path))
            return path, response.status_code, response.content

        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(fetch, [*files, *files]))
    assert len(answers) == 2 * len(files)
    for path, status, content in answers:
        expected = files[path]
        if expected is None:
            assert status == 404, path
        else:
            assert (status, len(content)) == (200, len(expected)), path
            assert content == expected, path


def test_response_stream_send_str(rsgi_server, http_client: httpx.Client):
    response = http_client.get(rsgi_server.url('/stream-str'))
    assert response.status_code == 200
    assert response.headers['content-type'] == 'text/plain; charset=utf-8'
    assert response.content == 'alphaβetagamma ✓'.encode()


@pytest.mark.parametrize('route', ['/raise', '/no-response'], ids=['app-raises', 'app-returns-without-response'])
def test_app_failure_is_500_and_server_keeps_serving(rsgi_server, http_client: httpx.Client, route: str):
    response = http_client.get(rsgi_server.url(route))
    assert response.status_code == 500
    # The same client (same keep-alive connection, or the same h2 connection) is served normally afterwards.
    follow_up = http_client.get(rsgi_server.url('/scope'))
    assert follow_up.status_code == 200
    assert follow_up.json()['path'] == '/scope'
