"""Fixtures shared by every package's tests: real granian servers in subprocesses and HTTP clients for them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests_support.freshvenv import Distributions
    from tests_support.server import RunningServer

REPO_ROOT = Path(__file__).resolve().parent
# --import-mode=importlib leaves sys.path alone; test modules import the helper package from the repository root.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

RSGI_APPS_DIR = REPO_ROOT / 'packages' / 'granian-rsgi' / 'tests' / 'apps'

ServerFactory = Callable[..., 'RunningServer']


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """The monorepo root directory."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def rsgi_apps_dir() -> Path:
    """Directory holding the RSGI test applications (pass it as the server's working dir)."""
    return RSGI_APPS_DIR


@pytest.fixture(scope='module')
def server_factory() -> Iterator[ServerFactory]:
    """Start servers with `server_factory(target, **RunningServer kwargs)`; all stop when the module ends."""
    from tests_support.server import RunningServer

    servers: list[RunningServer] = []

    def start(target: str, **kwargs: object) -> RunningServer:
        server = RunningServer(target, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.close()


@pytest.fixture(scope='module')
def rsgi_server(server_factory: ServerFactory, rsgi_apps_dir: Path) -> RunningServer:
    """One worker serving `rsgi_app:app`, shared by the tests of a module."""
    return server_factory('rsgi_app:app', working_dir=rsgi_apps_dir)


@pytest.fixture(scope='module', params=['1.1', '2'], ids=['http1.1', 'h2c'])
def http_version(request: pytest.FixtureRequest) -> str:
    """The HTTP version a test speaks, as RSGI reports it in `scope.http_version`."""
    return request.param


@pytest.fixture(scope='module')
def http_client(http_version: str) -> Iterator[httpx.Client]:
    """An httpx client speaking HTTP/1.1, or HTTP/2 with prior knowledge (h2c) over http://."""
    http2 = http_version == '2'
    with httpx.Client(http1=not http2, http2=http2, timeout=httpx.Timeout(30.0)) as client:
        yield client


@pytest.fixture(scope='session')
def open_pending_request() -> Callable[..., object]:
    """`open_pending_request(port, path, http_version)` sends a GET over HTTP/1.1 or h2c without reading the answer."""
    from tests_support.pending import open_pending_request

    return open_pending_request


@pytest.fixture(scope='session')
def read_marker() -> Callable[[Path], object]:
    """`read_marker(path)` returns the JSON document an app wrote to a marker file."""
    from tests_support.pending import read_marker

    return read_marker


@pytest.fixture(scope='session')
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """Wheels and sdists of all five distributions, built once per run by `tools/dist.py build`."""
    from tests_support.freshvenv import build_distributions

    return build_distributions(tmp_path_factory.mktemp('dist'))
