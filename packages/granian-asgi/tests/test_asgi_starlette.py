"""A real Starlette app under granian's ASGI interface: FileResponse through pathsend, `request.is_disconnected()`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests_support.waiting import wait_until

FILE_SIZE = 5 * 1024 * 1024


@pytest.fixture(scope='module')
def starlette_server(server_factory, asgi_apps_dir: Path):
    return server_factory('starlette_app:app', working_dir=asgi_apps_dir, interface='asgi')


@pytest.fixture(scope='module')
def data_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    content = os.urandom(FILE_SIZE)
    path = tmp_path_factory.mktemp('starlette') / 'data.bin'
    path.write_bytes(content)
    return path, content


def test_plain_response(starlette_server, http_client: httpx.Client):
    response = http_client.get(starlette_server.url('/'))
    assert (response.status_code, response.text) == (200, 'hello from starlette')


def test_file_response_is_sent_with_pathsend(
    starlette_server, http_client: httpx.Client, data_file, tmp_path: Path, read_marker
):
    path, content = data_file
    send_log = tmp_path / 'sent.json'
    response = http_client.get(starlette_server.url(f'/file?path={quote(str(path))}&send_log={quote(str(send_log))}'))
    assert response.status_code == 200
    assert response.headers['content-type'] == 'application/octet-stream'
    assert response.headers['content-length'] == str(len(content))
    assert len(response.content) == len(content)
    assert response.content == content
    assert wait_until(send_log.exists, 10)
    # Starlette picks pathsend only when the scope's extensions advertise it.
    assert read_marker(send_log) == ['http.response.start', 'http.response.pathsend']


@pytest.mark.parametrize('version', ['1.1', '2'], ids=['http1.1', 'h2c'])
def test_is_disconnected_turns_true_when_the_client_leaves(
    starlette_server, open_pending_request, tmp_path: Path, read_marker, version: str
):
    marker = tmp_path / 'record.json'
    started = marker.with_name(marker.name + '.started')
    pending = open_pending_request(starlette_server.port, f'/wait-for-disconnect?marker={quote(str(marker))}', version)
    try:
        assert wait_until(started.exists, 10), 'the endpoint never started'
        time.sleep(0.5)
        assert not marker.exists(), f'is_disconnected() was true while the client was connected: {read_marker(marker)}'
    finally:
        pending.close()
    assert wait_until(marker.exists, 25), 'the endpoint did not finish within 25 s of the client leaving'
    record = read_marker(marker)
    assert record['outcome'] == 'disconnected', record


def test_server_keeps_serving(starlette_server, http_client: httpx.Client):
    assert http_client.get(starlette_server.url('/')).status_code == 200
