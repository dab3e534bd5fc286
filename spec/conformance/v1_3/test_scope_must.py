"""scope.authority (rsgi.md section 3, since 1.3)."""

from __future__ import annotations

import pytest
from clients import connect, http2_get, json_in, read_all


def request_scope(server, head: bytes) -> dict:
    with connect(server) as sock:
        sock.sendall(head)
        data = read_all(sock)
    text = data.decode()
    assert text.startswith('HTTP/1.1 200'), text
    return json_in(data)


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
    assert http2_get(server, '/scope').json()['authority'] == f'127.0.0.1:{server.port}'
