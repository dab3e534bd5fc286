"""A real FastAPI app under granian's ASGI interface: JSON with validation, streaming, lifespan state."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope='module')
def fastapi_server(server_factory, asgi_apps_dir: Path):
    return server_factory('fastapi_app:app', working_dir=asgi_apps_dir, interface='asgi')


def test_path_param_and_pydantic_body(fastapi_server, http_client: httpx.Client):
    item = {'name': 'widget', 'price': 9.5, 'tags': ['a', 'b']}
    response = http_client.post(fastapi_server.url('/items/42'), json=item)
    assert response.status_code == 200, response.text
    assert response.headers['content-type'] == 'application/json'
    assert response.json() == {'item_id': 42, **item}


@pytest.mark.parametrize(
    ('path', 'body'),
    [('/items/42', {'name': 'widget', 'price': 'not a number'}), ('/items/not-an-int', {'name': 'w', 'price': 1})],
    ids=['invalid-body', 'invalid-path-param'],
)
def test_validation_errors_are_422(fastapi_server, http_client: httpx.Client, path: str, body: dict):
    response = http_client.post(fastapi_server.url(path), json=body)
    assert response.status_code == 422, response.text
    assert 'detail' in response.json()


def test_streaming_response(fastapi_server, http_client: httpx.Client):
    with http_client.stream('GET', fastapi_server.url('/stream')) as response:
        assert response.status_code == 200
        assert response.headers['content-type'].startswith('text/plain')
        received = b''.join(response.iter_raw())
    assert received == b''.join(f'line {index}\n'.encode() for index in range(5))


def test_lifespan_state_reaches_request_state(fastapi_server, http_client: httpx.Client):
    response = http_client.get(fastapi_server.url('/greeting'))
    assert response.status_code == 200, response.text
    assert response.json() == {'greeting': 'hi'}


def test_unknown_route_is_404(fastapi_server, http_client: httpx.Client):
    response = http_client.get(fastapi_server.url('/nope'))
    assert response.status_code == 404
    assert response.json() == {'detail': 'Not Found'}
