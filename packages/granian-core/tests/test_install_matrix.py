"""The install matrix: each distribution installed alone, from the artifacts `tools/dist.py build` made,
into a fresh virtual environment, does its job and brings nothing it should not.

- granian-rsgi alone: the RSGI types import, an app is served through `Granian(...)`.
- granian-asgi alone + FastAPI from PyPI: a FastAPI app with a lifespan is served through `Granian(...)`.
- granian-cli with every extra: `granian --version` names every distribution; the extras' features work
  (uvloop and rloop loops, --env-files, --process-name, --reload).
- granian-wsgi alone + Flask: packages/granian-wsgi/tests/test_wsgi_fresh_venv.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests_support.freshvenv import DISTRIBUTIONS, CommandServer, Distributions, FreshVenv, require_no_failures
from tests_support.waiting import wait_until

# The shared build may still be running when this module is first; pip then downloads from PyPI.
pytestmark = pytest.mark.timeout(1800)

PROBED = ['granian.rsgi', 'granian.asgi', 'granian.wsgi', 'granian.cli', 'click']
SERVE_WITH_GRANIAN = """
import sys

from granian import Granian

Granian('app:app', interface=sys.argv[1], address='127.0.0.1', port=int(sys.argv[2])).serve()
"""
RSGI_APP = """
from granian.rsgi import HTTPProtocol, Scope


async def app(scope: Scope, protocol: HTTPProtocol) -> None:
    protocol.response_str(200, [('content-type', 'text/plain')], f'rsgi {scope.rsgi_version} {scope.path}')
"""
FASTAPI_APP = """
from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app):
    app.state.started = True
    yield


app = FastAPI(lifespan=lifespan)


@app.get('/items/{item}')
async def read(item: int):
    return {'item': item, 'started': app.state.started}
"""
CLI_APP = """
import asyncio
import os


async def app(scope, protocol):
    loop = type(asyncio.get_running_loop()).__module__.split('.')[0]
    protocol.response_str(200, [('content-type', 'text/plain')], f"{VERSION} {os.environ.get('FROM_DOTENV')} {loop}")


VERSION = 'first'
"""


def _alone(distributions: Distributions, workdir: Path, interface: str) -> FreshVenv:
    venv = FreshVenv(workdir)
    venv.pip_install('--no-index', distributions.wheel('granian-core'), distributions.wheel(f'granian-{interface}'))
    venv.write('serve.py', SERVE_WITH_GRANIAN)
    return venv


def _get(url: str) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.get(url)


# granian-rsgi alone


@pytest.fixture(scope='module')
def rsgi_venv(distributions: Distributions, tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    return _alone(distributions, tmp_path_factory.mktemp('rsgi-alone'), 'rsgi')


def test_rsgi_alone_imports_nothing_else(rsgi_venv: FreshVenv) -> None:
    imports = rsgi_venv.imports(*PROBED)
    require_no_failures(
        imports, present=['granian.rsgi'], absent=['granian.asgi', 'granian.wsgi', 'granian.cli', 'click']
    )


def test_rsgi_alone_ships_the_types(rsgi_venv: FreshVenv) -> None:
    code = (
        'import typing, granian.rsgi as r\n'
        "names = ['Scope', 'Headers', 'HTTPProtocol', 'WebsocketProtocol', 'WebsocketTransport', 'WebsocketMessage']\n"
        'print(all(getattr(getattr(r, n), "_is_protocol", False) for n in names))'
    )
    assert rsgi_venv.run('python', '-c', code).stdout.strip() == 'True'


def test_rsgi_alone_serves_through_granian(rsgi_venv: FreshVenv) -> None:
    rsgi_venv.write('app.py', RSGI_APP)
    argv = [rsgi_venv.python, 'serve.py', 'rsgi', '{port}']
    with CommandServer(argv, working_dir=rsgi_venv.workdir) as server:
        response = _get(server.url('/hello'))
    assert (response.status_code, response.text) == (200, 'rsgi 1.6 /hello')


# granian-asgi alone, with FastAPI


@pytest.fixture(scope='module')
def asgi_alone(distributions: Distributions, tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    return _alone(distributions, tmp_path_factory.mktemp('asgi-alone'), 'asgi')


@pytest.fixture(scope='module')
def asgi_imports(asgi_alone: FreshVenv) -> dict[str, str]:
    return asgi_alone.imports(*PROBED)


@pytest.fixture(scope='module')
def asgi_venv(asgi_alone: FreshVenv, asgi_imports: dict[str, str]) -> FreshVenv:
    """The same venv, probed first, plus FastAPI from PyPI."""
    asgi_alone.pip_install('fastapi')
    return asgi_alone


def test_asgi_alone_imports_nothing_else(asgi_imports: dict[str, str]) -> None:
    imports = asgi_imports
    require_no_failures(
        imports, present=['granian.asgi'], absent=['granian.rsgi', 'granian.wsgi', 'granian.cli', 'click']
    )


def test_asgi_alone_serves_fastapi_with_its_lifespan(asgi_venv: FreshVenv) -> None:
    asgi_venv.write('app.py', FASTAPI_APP)
    argv = [asgi_venv.python, 'serve.py', 'asgi', '{port}']
    with CommandServer(argv, working_dir=asgi_venv.workdir) as server:
        response = _get(server.url('/items/7'))
    assert response.status_code == 200, response.text
    assert response.json() == {'item': 7, 'started': True}


# granian-cli with every extra


@pytest.fixture(scope='module')
def cli_venv(distributions: Distributions, tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    """Our five wheels (never anything of that name from PyPI), then the extras' dependencies from PyPI."""
    venv = FreshVenv(tmp_path_factory.mktemp('cli-all'))
    venv.pip_install('--no-index', '--no-deps', *(distributions.wheel(name) for name in DISTRIBUTIONS))
    venv.pip_install('--find-links', distributions.directory, 'granian-cli[all,rloop]')
    venv.write('.env', 'FROM_DOTENV=loaded\n')
    return venv


def test_cli_version_names_every_distribution(cli_venv: FreshVenv) -> None:
    lines = cli_venv.run('granian', '--version').stdout.splitlines()
    version = lines[0].removeprefix('granian ')
    assert [line.split() for line in lines[1:6]] == [[name, version] for name in DISTRIBUTIONS]


def test_cli_all_extra_brings_its_dependencies(cli_venv: FreshVenv) -> None:
    imports = cli_venv.imports('uvloop', 'rloop', 'dotenv', 'watchfiles', 'setproctitle', 'click')
    require_no_failures(imports, present=list(imports), absent=[])


@pytest.mark.parametrize('loop', ['uvloop', 'rloop'])
def test_cli_serves_with_each_extra_loop_and_env_files(cli_venv: FreshVenv, loop: str) -> None:
    cli_venv.write('app.py', CLI_APP)
    argv = [cli_venv.bin / 'granian', '--interface', 'rsgi', '--port', '{port}', '--loop', loop]
    argv += ['--env-files', '.env', 'app:app']
    with CommandServer(argv, working_dir=cli_venv.workdir) as server:
        response = _get(server.url('/'))
    assert response.text == f'first loaded {loop}'


def _titles() -> list[str]:
    titles = []
    for cmdline in Path('/proc').glob('[0-9]*/cmdline'):
        try:
            titles.append(cmdline.read_bytes().replace(b'\0', b' ').decode(errors='replace').strip())
        except OSError:
            continue
    return titles


@pytest.mark.skipif(not Path('/proc/self/cmdline').exists(), reason='reads process titles from /proc')
def test_cli_process_name_and_reload(cli_venv: FreshVenv) -> None:
    cli_venv.write('app.py', CLI_APP)
    argv = [cli_venv.bin / 'granian', '--interface', 'rsgi', '--port', '{port}', '--process-name', 'matrix-cell-x1']
    argv += ['--reload', 'app:app']
    with CommandServer(argv, working_dir=cli_venv.workdir) as server:
        assert _get(server.url('/')).text.startswith('first ')
        assert any(title.startswith('matrix-cell-x1') for title in _titles()), 'no process took the title'
        time.sleep(0.5)  # a change in the same second as the start can be missed by mtime-based watchers
        cli_venv.write('app.py', CLI_APP.replace("VERSION = 'first'", "VERSION = 'second'"))

        def reloaded() -> bool:
            try:
                return _get(server.url('/')).text.startswith('second ')
            except httpx.TransportError:
                return False

        assert wait_until(reloaded, timeout=30), server.output
