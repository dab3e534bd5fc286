"""RSGI 1.6 request bodies: `await protocol()`, `async for chunk in protocol`, and reading twice."""

from __future__ import annotations

import os

import httpx
import pytest

from tests_support.bodies import BODY_SIZES, check_echo


@pytest.fixture(scope='module', params=list(BODY_SIZES), ids=list(BODY_SIZES))
def body(request: pytest.FixtureRequest) -> bytes:
    return os.urandom(BODY_SIZES[request.param])


@pytest.mark.parametrize('route', ['/echo', '/stream-echo'], ids=['whole-body', 'streamed'])
def test_echo(rsgi_server, http_client: httpx.Client, body: bytes, route: str):
    check_echo(http_client.post(rsgi_server.url(route), content=body), body)


@pytest.mark.parametrize('route', ['/echo', '/stream-echo'], ids=['whole-body', 'streamed'])
def test_echo_request_body_sent_in_pieces(rsgi_server, http_client: httpx.Client, route: str):
    # A generator body has no length: HTTP/1.1 sends it chunked, HTTP/2 as several DATA frames.
    pieces = [os.urandom(size) for size in (1, 4096, 70000, 3)]
    response = http_client.post(rsgi_server.url(route), content=iter(pieces))
    check_echo(response, b''.join(pieces))


def test_second_body_read_raises_protocol_error(rsgi_server, http_client: httpx.Client):
    response = http_client.post(rsgi_server.url('/double-read'), content=b'abc')
    assert response.status_code == 200, response.text
    assert response.json() == {'first': 'abc', 'second': 'ProtocolError'}
