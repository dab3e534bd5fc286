"""Sending part of a file (rsgi.md section 5.2)."""

from __future__ import annotations

import httpx
import pytest
from clients import state_file

pytestmark = pytest.mark.usefixtures('server')


@pytest.fixture(scope='module')
def file_body(server) -> bytes:
    """The file /http/file-range serves, which the app wrote into the state dir (apps/http_routes.py)."""
    body = state_file(server, 'http-file.bin')
    assert len(body) == 300_000
    return body


@pytest.mark.requirement('http-response-file-range')
@pytest.mark.parametrize(
    ('start', 'end'),
    [(0, 1), (0, 10), (5, 6), (1000, 2000), (65_530, 65_545), (123, 250_000), (0, 300_000), (299_999, 300_000)],
)
def test_range_of_the_file_is_sent_whole(server, file_body, start, end):
    response = httpx.get(server.url(f'/http/file-range?start={start}&end={end}'), timeout=10)
    assert response.status_code == 206
    assert response.content == file_body[start:end]
    assert response.headers.get('content-length') in (None, str(end - start))
    assert response.headers['content-type'] == 'application/octet-stream'


@pytest.mark.requirement('http-response-file-range')
def test_the_app_chooses_the_status(server, file_body):
    response = httpx.get(server.url('/http/file-range?start=10&end=20&code=200'), timeout=10)
    assert response.status_code == 200
    assert response.content == file_body[10:20]


@pytest.mark.requirement('http-response-file-range')
def test_range_headers_are_not_interpreted(server, file_body):
    response = httpx.get(server.url('/http/file-range?start=100&end=200'), headers={'range': 'bytes=0-4'}, timeout=10)
    assert response.status_code == 206
    assert response.content == file_body[100:200]
    assert 'content-range' not in response.headers


@pytest.mark.requirement('http-response-file-range')
def test_ranges_on_one_connection(server, file_body):
    with httpx.Client(timeout=10) as client:
        for start, end in [(0, 3), (3, 70_000), (70_000, 300_000)]:
            response = client.get(server.url(f'/http/file-range?start={start}&end={end}'))
            assert response.content == file_body[start:end]
