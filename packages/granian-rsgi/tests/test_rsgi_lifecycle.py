"""RSGI 1.6 app objects: the server calls `__rsgi__`, `__rsgi_init__(loop)` before serving, `__rsgi_del__(loop)` on stop."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope='module')
def del_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp('lifecycle') / 'rsgi-del.jsonl'


@pytest.fixture(scope='module')
def lifecycle_server(server_factory, rsgi_apps_dir: Path, del_marker: Path):
    return server_factory('rsgi_app:lifecycle_app', working_dir=rsgi_apps_dir, env={'RSGI_DEL_MARKER': str(del_marker)})


def test_app_object_is_served_through_rsgi_method(lifecycle_server):
    # LifecycleApp is not callable: a 200 here means the server dispatched to __rsgi__.
    response = httpx.get(lifecycle_server.url('/scope'), timeout=30)
    assert response.status_code == 200
    assert response.json()['rsgi_version'] == '1.6'


def test_rsgi_init_runs_once_before_serving_with_the_serving_loop(lifecycle_server):
    response = httpx.get(lifecycle_server.url('/lifecycle'), timeout=30)
    assert response.status_code == 200
    report = response.json()
    assert report['init_calls'] == 1
    assert report['init_loop_is_running_loop'] is True
    assert report['init_loop_was_running'] is False


def test_rsgi_del_runs_on_stop(lifecycle_server, del_marker: Path):
    pid = int(httpx.get(lifecycle_server.url('/pid'), timeout=30).text)
    assert not del_marker.exists(), '__rsgi_del__ ran while the server was still serving'
    assert lifecycle_server.stop() == 0, lifecycle_server.output
    assert del_marker.exists(), f'__rsgi_del__ did not run; server output:\n{lifecycle_server.output}'
    records = [json.loads(line) for line in del_marker.read_text().splitlines()]
    # As upstream Granian does, the hook gets the loop after it stopped serving (not running).
    assert records == [{'pid': pid, 'init_calls': 1, 'same_loop_as_init': True, 'loop_running': False}]
