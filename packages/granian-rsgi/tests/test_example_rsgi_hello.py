"""The examples/rsgi_hello app serves its greeting."""

from __future__ import annotations

from pathlib import Path

import httpx


def test_rsgi_hello_example(server_factory, repo_root: Path):
    server = server_factory('main:app', working_dir=repo_root / 'examples' / 'rsgi_hello')
    response = httpx.get(server.url('/'), timeout=30)
    assert response.status_code == 200
    assert response.headers['content-type'] == 'text/plain; charset=utf-8'
    assert response.text == 'Hello, world!'
