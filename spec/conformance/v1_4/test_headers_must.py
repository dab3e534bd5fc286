"""headers.get_all (rsgi.md section 4, since 1.4)."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.requirement('headers-get-all')
def test_get_all(server):
    response = httpx.get(server.url('/scope'), headers=[('x-one', '1'), ('x-multi', 'a'), ('x-multi', 'b')], timeout=10)
    headers = response.json()['headers']
    assert headers['get_all_x_multi'] == ['a', 'b']
    assert headers['get_all_missing'] == []
