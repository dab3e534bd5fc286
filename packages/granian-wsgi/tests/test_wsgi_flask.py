"""A real Flask app under granian's WSGI interface: forms, multipart uploads, streamed responses, send_file."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

pytest.importorskip('flask', reason='the Flask tests need flask installed in the test environment')


@pytest.fixture(scope='module')
def flask_server(server_factory, wsgi_apps_dir: Path):
    return server_factory('flask_app:app', working_dir=wsgi_apps_dir, interface='wsgi')


@pytest.fixture(scope='module')
def served_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    content = random.Random(11).randbytes(2 * 1024 * 1024 + 3)
    path = tmp_path_factory.mktemp('flask') / 'download.bin'
    path.write_bytes(content)
    return path, content


def test_get(flask_server, http_client: httpx.Client):
    response = http_client.get(flask_server.url('/'))
    assert (response.status_code, response.text) == (200, 'hello from flask')


def test_form_post(flask_server, http_client: httpx.Client):
    response = http_client.post(
        flask_server.url('/form'), data={'name': 'granian', 'tags': ['a', 'b'], 'empty': '', 'text': 'é & ü'}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {'name': ['granian'], 'tags': ['a', 'b'], 'empty': [''], 'text': ['é & ü']}


@pytest.mark.parametrize('size', [0, 1000, 3 * 1024 * 1024])
def test_file_upload(flask_server, http_client: httpx.Client, size: int):
    content = os.urandom(size)
    response = http_client.post(
        flask_server.url('/upload'),
        files={'file': ('upload.bin', content, 'application/octet-stream')},
        data={'note': 'multipart'},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        'filename': 'upload.bin',
        'size': size,
        'sha256': hashlib.sha256(content).hexdigest(),
        'note': 'multipart',
    }


def test_streamed_response_with_context(flask_server, http_client: httpx.Client):
    with http_client.stream('GET', flask_server.url('/stream?count=50&prefix=row')) as response:
        assert response.status_code == 200
        assert response.headers['content-type'].startswith('text/plain')
        body = b''.join(response.iter_raw())
    assert body.decode() == ''.join(f'row-{index}\n' for index in range(50))


def test_send_file(flask_server, http_client: httpx.Client, served_file):
    path, content = served_file
    response = http_client.get(flask_server.url(f'/file?path={quote(str(path))}'))
    assert response.status_code == 200
    assert response.headers['content-length'] == str(len(content))
    assert len(response.content) == len(content)
    assert response.content == content


def test_send_file_range_request(flask_server, http_client: httpx.Client, served_file):
    path, content = served_file
    response = http_client.get(flask_server.url(f'/file?path={quote(str(path))}'), headers={'Range': 'bytes=1000-1999'})
    assert response.status_code == 206
    assert response.content == content[1000:2000]


def test_unknown_url_is_flasks_404(flask_server, http_client: httpx.Client):
    response = http_client.get(flask_server.url('/no/such/page'))
    assert response.status_code == 404
    assert 'Not Found' in response.text
