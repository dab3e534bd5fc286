"""granian-core + granian-wsgi alone in a fresh virtual environment: WSGI serves, nothing else comes along.

Builds both wheels (maturin for the core, pip wheel for granian-wsgi), installs only them into a new venv, checks
which granian modules import, then installs Flask from PyPI and serves a tiny Flask app with
`python -m granian.wsgi`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests_support.server import server_env
from tests_support.wheels import PIP_TIMEOUT, build_wheels

# Building the Rust core can wait for another cargo build of the same workspace to finish.
pytestmark = pytest.mark.timeout(3000)

REPO_ROOT = Path(__file__).resolve().parents[3]
PROBED_MODULES = ['granian.wsgi', 'click', 'granian.cli', 'granian.asgi', 'granian.rsgi']
PROBE = """
import importlib, json, sys
outcome = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        outcome[name] = type(exc).__name__
    else:
        outcome[name] = 'ok'
print(json.dumps(outcome))
"""
FLASK_APP = """
from flask import Flask

app = Flask(__name__)


@app.get('/')
def index():
    return 'hello'
"""


@dataclass
class FreshVenv:
    python: Path
    wheels: dict[str, Path]
    imports: dict[str, str]
    workdir: Path


def isolated_env() -> dict[str, str]:
    """Our environment without anything that would point a subprocess at the development venv."""
    env = server_env()
    for key in ('VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME'):
        env.pop(key, None)
    return env


def run(argv: list[str | Path], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=isolated_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f'{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}'
    return result


@pytest.fixture(scope='module')
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    """Both wheels built and installed (with --no-index) into a new venv; the import probe ran before anything else."""
    wheels = build_wheels(tmp_path_factory.mktemp('wsgi-wheels'), ['granian-wsgi'])
    assert sorted(wheels) == ['granian-core', 'granian-wsgi'], sorted(wheels)

    workdir = tmp_path_factory.mktemp('fresh-venv')
    venv_dir = workdir / 'venv'
    run([sys.executable, '-m', 'venv', venv_dir], PIP_TIMEOUT)
    python = venv_dir / ('Scripts/python.exe' if os.name == 'nt' else 'bin/python')
    run(
        [python, '-m', 'pip', 'install', '--quiet', '--no-index', wheels['granian-core'], wheels['granian-wsgi']],
        PIP_TIMEOUT,
        cwd=workdir,
    )
    probe = run([python, '-c', PROBE, *PROBED_MODULES], 120, cwd=workdir)
    return FreshVenv(python=python, wheels=wheels, imports=json.loads(probe.stdout), workdir=workdir)


@pytest.fixture(scope='module')
def flask_venv(fresh_venv: FreshVenv) -> FreshVenv:
    """The fresh venv plus Flask from PyPI, and a directory holding a tiny Flask app."""
    run([fresh_venv.python, '-m', 'pip', 'install', '--quiet', 'flask'], PIP_TIMEOUT, cwd=fresh_venv.workdir)
    app_dir = fresh_venv.workdir / 'app'
    app_dir.mkdir(exist_ok=True)
    (app_dir / 'app.py').write_text(FLASK_APP, encoding='utf-8')
    return fresh_venv


def test_wsgi_wheel_holds_only_its_subpackage(fresh_venv: FreshVenv):
    names = zipfile.ZipFile(fresh_venv.wheels['granian-wsgi']).namelist()
    files = [name for name in names if not name.split('/')[0].endswith('.dist-info')]
    assert files, names
    assert 'granian/__init__.py' not in files, 'granian/__init__.py belongs to granian-core'
    assert all(name.startswith('granian/wsgi/') for name in files), files
    assert 'granian/wsgi/py.typed' in files


def test_granian_wsgi_imports(fresh_venv: FreshVenv):
    assert fresh_venv.imports['granian.wsgi'] == 'ok', fresh_venv.imports


def test_click_is_not_installed(fresh_venv: FreshVenv):
    assert fresh_venv.imports['click'] == 'ModuleNotFoundError', 'granian-core/granian-wsgi pulled in click'


@pytest.mark.parametrize('module', ['granian.cli', 'granian.asgi', 'granian.rsgi'])
def test_other_granian_packages_are_not_installed(fresh_venv: FreshVenv, module: str):
    assert fresh_venv.imports[module] == 'ModuleNotFoundError', fresh_venv.imports


def test_serves_a_flask_app(flask_venv: FreshVenv, standalone_factory):
    server = standalone_factory(
        'app:app', working_dir=flask_venv.workdir / 'app', python=flask_venv.python, ready_timeout=60
    )
    with httpx.Client(timeout=30) as client:
        response = client.get(server.url('/'))
    assert (response.status_code, response.text) == (200, 'hello')
