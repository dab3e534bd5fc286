"""scope.authority (rsgi.md section 3, since 1.3)."""

from __future__ import annotations

import json
import socket

import httpx
import pytest


def request_scope(server, head: bytes) -> dict:
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(head)
        data = b''
        while chunk := sock.recv(65536):
            data += chunk
    text = data.decode()
    assert text.startswith('HTTP/1.1 200'), text
    return json.loads(text[text.index('{') : text.rindex('}') + 1])


@pytest.mark.requirement('scope-authority')
def test_authority_is_none_for_origin_form(server):
    scope = request_scope(server, b'GET /scope HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n')
    assert scope['authority'] is None


@pytest.mark.requirement('scope-authority')
def test_authority_of_absolute_form(server):
    head = b'GET http://example.test:8080/scope HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\r\n'
    scope = request_scope(server, head)
    assert scope['authority'] == 'example.test:8080'
    assert scope['path'] == '/scope'


@pytest.mark.requirement('scope-authority')
def test_authority_of_http2(server):
    try:
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            response = client.get(server.url('/scope'))
    except httpx.HTTPError as exc:
        pytest.skip(f'the server does not speak HTTP/2 without TLS (h2c prior knowledge): {exc!r}')
    assert response.json()['authority'] == f'127.0.0.1:{server.port}'
