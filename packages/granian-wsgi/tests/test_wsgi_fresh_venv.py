"""granian-core + granian-wsgi alone in a fresh virtual environment: WSGI serves, nothing else comes along.

Installs only the two wheels `tools/dist.py build` made (shared `distributions` fixture) into a new venv,
checks which granian modules import, then installs Flask from PyPI and serves a tiny Flask app with
`python -m granian.wsgi`. The other interfaces' cells of the install matrix are in
packages/granian-core/tests/test_install_matrix.py.
"""

from __future__ import annotations

import httpx
import pytest

from tests_support.freshvenv import Distributions, FreshVenv, require_no_failures

# The shared build may still be running when this module is first.
pytestmark = pytest.mark.timeout(1800)

FLASK_APP = """
from flask import Flask

app = Flask(__name__)


@app.get('/')
def index():
    return 'hello'
"""


@pytest.fixture(scope='module')
def fresh_venv(distributions: Distributions, tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    """A new venv with only the two wheels installed (--no-index)."""
    venv = FreshVenv(tmp_path_factory.mktemp('wsgi-alone'))
    venv.pip_install('--no-index', distributions.wheel('granian-core'), distributions.wheel('granian-wsgi'))
    return venv


@pytest.fixture(scope='module')
def imports(fresh_venv: FreshVenv) -> dict[str, str]:
    return fresh_venv.imports('granian.wsgi', 'click', 'granian.cli', 'granian.asgi', 'granian.rsgi')


@pytest.fixture(scope='module')
def flask_venv(fresh_venv: FreshVenv, imports: dict[str, str]) -> FreshVenv:
    """The fresh venv (probed first) plus Flask from PyPI, and a directory holding a tiny Flask app."""
    fresh_venv.pip_install('flask')
    (fresh_venv.workdir / 'app').mkdir(exist_ok=True)
    fresh_venv.write('app/app.py', FLASK_APP)
    return fresh_venv


def test_granian_wsgi_imports_and_nothing_else_came_along(imports: dict[str, str]):
    require_no_failures(
        imports, present=['granian.wsgi'], absent=['click', 'granian.cli', 'granian.asgi', 'granian.rsgi']
    )


def test_serves_a_flask_app(flask_venv: FreshVenv, standalone_factory):
    server = standalone_factory(
        'app:app', working_dir=flask_venv.workdir / 'app', python=flask_venv.python, ready_timeout=60
    )
    with httpx.Client(timeout=30) as client:
        response = client.get(server.url('/'))
    assert (response.status_code, response.text) == (200, 'hello')
