"""An empty or reversed file range (rsgi.md section 5.2)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.usefixtures('server')


@pytest.mark.requirement('http-response-file-range-invalid')
@pytest.mark.parametrize(('start', 'end'), [(10, 10), (0, 0), (20, 10)])
def test_start_not_before_end_raises_value_error_and_sends_nothing(server, start, end):
    response = httpx.get(server.url(f'/http/file-range-invalid?start={start}&end={end}'), timeout=10)
    # The app answers with what the call did; had the call sent a response, the app's answer would be ignored.
    assert 'x-range-call' not in response.headers
    assert response.status_code == 200, response.text
    result = response.json()
    assert result['outcome'] == 'raised', result
    assert result['type'] == 'ValueError', result
