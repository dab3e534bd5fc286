"""Fixtures of the WSGI test suite: the WSGI test apps, servers for them, the standalone runner, raw clients."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests_support.server import RunningServer

WSGI_APPS_DIR = Path(__file__).resolve().parent / 'apps'
# Log records at these levels start their line with the level in brackets (granian.log's default format).
ERROR_RECORD = re.compile(r'^\[(ERROR|CRITICAL)\]', re.MULTILINE)


@pytest.fixture(scope='session')
def wsgi_apps_dir() -> Path:
    """Directory holding the WSGI test applications (pass it as the server's working dir)."""
    return WSGI_APPS_DIR


@pytest.fixture(scope='module')
def start_wsgi_app(server_factory, wsgi_apps_dir: Path) -> Callable[..., RunningServer]:
    """`start_wsgi_app(*extra_args, env=...)` serves `wsgi_app:app` with `--interface wsgi` for a module."""

    def start(*extra_args: str, env: dict[str, str] | None = None) -> RunningServer:
        return server_factory(
            'wsgi_app:app', working_dir=wsgi_apps_dir, interface='wsgi', extra_args=list(extra_args), env=env
        )

    return start


@pytest.fixture(scope='module')
def wsgi_server(start_wsgi_app) -> RunningServer:
    """One worker with 4 blocking threads serving `wsgi_app:app` (`--interface wsgi`), shared by a module's tests."""
    return start_wsgi_app('--blocking-threads', '4')


@pytest.fixture(scope='session')
def input_ops() -> ModuleType:
    """The `input_ops` helper of the test app, loaded from its file (the apps directory is not on sys.path)."""
    spec = importlib.util.spec_from_file_location('granian_wsgi_tests_input_ops', WSGI_APPS_DIR / 'input_ops.py')
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def make_client() -> Callable[[str], httpx.Client]:
    """`make_client(http_version)`: a new httpx client (own connections and cookie jar), for '1.1' or '2' (h2c)."""

    def make(http_version: str) -> httpx.Client:
        http2 = http_version == '2'
        return httpx.Client(http1=not http2, http2=http2, timeout=httpx.Timeout(30.0))

    return make


def error_records(log: str) -> list[str]:
    """The ERROR and CRITICAL log records (their first lines) in `log`."""
    return [line for line in log.splitlines() if ERROR_RECORD.match(line)]


@pytest.fixture(scope='session')
def count_error_records() -> Callable[[str], list[str]]:
    """`count_error_records(log)` returns the first line of every ERROR/CRITICAL record in a slice of server log."""
    return error_records


class StandaloneWSGIServer(RunningServer):
    """`python -m granian.wsgi TARGET --host H --port P --working-dir D ARGS`: the runner that needs no granian-cli.

    `python` picks the interpreter (another virtual environment); `pass_port=False` leaves the port to
    $GRANIAN_PORT, which the caller then sets in `env` (the readiness check still uses `port`).
    """

    def __init__(
        self, target: str, *, python: str | Path = sys.executable, pass_port: bool = True, **kwargs: object
    ) -> None:
        super().__init__(target, interface='wsgi', **kwargs)
        self.python = str(python)
        self.pass_port = pass_port

    @property
    def command(self) -> list[str]:
        argv = [self.python, '-m', 'granian.wsgi', self.target, '--host', self.host]
        if self.pass_port:
            argv += ['--port', str(self.port)]
        if self.working_dir is not None:
            argv += ['--working-dir', str(self.working_dir)]
        return [*argv, *self.extra_args]


@pytest.fixture(scope='module')
def standalone_factory() -> Iterator[Callable[..., StandaloneWSGIServer]]:
    """Start `python -m granian.wsgi` servers with `standalone_factory(target, **kwargs)`; all stop at module end."""
    servers: list[StandaloneWSGIServer] = []

    def start(target: str, **kwargs: object) -> StandaloneWSGIServer:
        server = StandaloneWSGIServer(target, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.close()
