"""Fixtures of the ASGI test suite: the ASGI test apps, a server for them, and requests left waiting on purpose."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests_support.server import RunningServer

ASGI_APPS_DIR = Path(__file__).resolve().parent / 'apps'


@pytest.fixture(scope='session')
def asgi_apps_dir() -> Path:
    """Directory holding the ASGI test applications (pass it as the server's working dir)."""
    return ASGI_APPS_DIR


@pytest.fixture(scope='module')
def asgi_server(server_factory, asgi_apps_dir: Path) -> RunningServer:
    """One worker serving `asgi_app:app` with lifespan (`--interface asgi`), shared by the tests of a module."""
    return server_factory('asgi_app:app', working_dir=asgi_apps_dir, interface='asgi')
