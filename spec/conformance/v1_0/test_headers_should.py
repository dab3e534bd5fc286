"""Case-insensitive header lookups (rsgi.md section 4)."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.requirement('headers-case-insensitive')
def test_lookups_ignore_case(server):
    response = httpx.get(server.url('/scope'), headers=[('x-one', '1'), ('x-multi', 'a'), ('x-multi', 'b')], timeout=10)
    headers = response.json()['headers']
    assert headers['mixed_case_getitem'] == '1'
    assert headers['mixed_case_get'] == '1'
    assert headers['mixed_case_contains'] is True
    assert headers['mixed_case_get_all'] == ['a', 'b']
