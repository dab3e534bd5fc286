"""Request bodies of the sizes every interface's echo tests use, and the check of an echo."""

from __future__ import annotations

import httpx

BODY_SIZES = {'0B': 0, '1KiB': 1024, '10MiB': 10 * 1024 * 1024}


def check_echo(response: httpx.Response, body: bytes) -> None:
    """The response is a 200 whose content is exactly `body`."""
    assert response.status_code == 200, response.text[:200]
    # Compare lengths first so a mismatch reports sizes instead of megabytes of bytes.
    assert len(response.content) == len(body)
    assert response.content == body
