"""Fetching what a test app reports about a request (its scope or environ, as JSON)."""

from __future__ import annotations

import httpx


def fetch_description(client: httpx.Client, url: str, method: str = 'GET', **kwargs) -> dict:
    """The JSON document the app answered `method url` with; the answer must be a 200."""
    response = client.request(method, url, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()
