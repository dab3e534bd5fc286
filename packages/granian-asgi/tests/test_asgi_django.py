"""A real Django app under granian's ASGI interface: request bodies in sync and async views, Django's own 404."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope='module')
def django_server(server_factory, asgi_apps_dir: Path):
    # Django rejects the lifespan scope: the server must carry on serving (see test_asgi_lifespan).
    return server_factory('django_app:application', working_dir=asgi_apps_dir, interface='asgi')


def test_get(django_server, http_client: httpx.Client):
    response = http_client.get(django_server.url('/'))
    assert response.status_code == 200, response.text
    assert response.text == 'hello from django'


def test_post_body_in_sync_view(django_server, http_client: httpx.Client):
    response = http_client.post(django_server.url('/reverse'), content=b'hello granian')
    assert response.status_code == 200, response.text
    assert response.content == b'nainarg olleh'


@pytest.mark.parametrize('size', [0, 100, 300_000])
def test_post_body_in_async_view(django_server, http_client: httpx.Client, size: int):
    response = http_client.post(django_server.url('/length'), content=os.urandom(size))
    assert response.status_code == 200, response.text
    assert response.json() == {'method': 'POST', 'length': size}


def test_unknown_url_is_djangos_404(django_server, http_client: httpx.Client):
    response = http_client.get(django_server.url('/no/such/page'))
    assert response.status_code == 404
    assert 'Not Found' in response.text


def test_server_keeps_serving(django_server, http_client: httpx.Client):
    assert http_client.get(django_server.url('/')).status_code == 200
