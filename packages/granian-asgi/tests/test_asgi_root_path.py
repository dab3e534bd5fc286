"""`--url-path-prefix` (and GRANIAN_URL_PATH_PREFIX) sets the ASGI `root_path` of every request."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope='module')
def prefixed_server(server_factory, asgi_apps_dir: Path):
    return server_factory(
        'asgi_app:app', working_dir=asgi_apps_dir, interface='asgi', extra_args=['--url-path-prefix', '/api']
    )


@pytest.fixture(scope='module')
def env_prefixed_server(server_factory, asgi_apps_dir: Path):
    return server_factory(
        'asgi_app:app', working_dir=asgi_apps_dir, interface='asgi', env={'GRANIAN_URL_PATH_PREFIX': '/from-env'}
    )


def test_url_path_prefix_option_sets_root_path(prefixed_server, http_client: httpx.Client):
    response = http_client.get(prefixed_server.url('/scope'))
    assert response.status_code == 200, response.text
    described = response.json()
    assert described['scope']['root_path'] == '/api'
    assert described['types']['root_path'] == 'str'


def test_url_path_prefix_env_var_sets_root_path(env_prefixed_server, http_client: httpx.Client):
    response = http_client.get(env_prefixed_server.url('/scope'))
    assert response.status_code == 200, response.text
    assert response.json()['scope']['root_path'] == '/from-env'
