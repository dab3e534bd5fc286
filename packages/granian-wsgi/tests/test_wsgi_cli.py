"""The WSGI options of the `granian` command: --blocking-threads and --blocking-threads-idle-timeout."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope='module')
def idle_timeout_server(start_wsgi_app):
    return start_wsgi_app('--blocking-threads', '2', '--blocking-threads-idle-timeout', '30')


@pytest.fixture(scope='module')
def env_configured_server(start_wsgi_app):
    return start_wsgi_app(env={'GRANIAN_BLOCKING_THREADS': '1'})


def test_blocking_threads_idle_timeout_is_accepted(idle_timeout_server, http_client: httpx.Client):
    response = http_client.get(idle_timeout_server.url('/environ'))
    assert response.status_code == 200, response.text
    assert response.json()['environ']['wsgi.multithread'] is True


def test_blocking_threads_from_environment_variable(env_configured_server, http_client: httpx.Client):
    response = http_client.get(env_configured_server.url('/environ'))
    assert response.status_code == 200, response.text
    assert response.json()['environ']['wsgi.multithread'] is False


def test_standalone_runner_accepts_the_idle_timeout(standalone_factory, wsgi_apps_dir: Path):
    server = standalone_factory(
        'wsgi_app:app', working_dir=wsgi_apps_dir, extra_args=['--blocking-threads-idle-timeout', '30']
    )
    with httpx.Client(timeout=30) as client:
        assert client.get(server.url('/hello')).text == 'hello'
