"""`pipx install granian-cli`, then serve a project whose dependencies live in the project's own virtualenv.

Real pipx (from PyPI, in a venv of its own, with its home in a temporary directory) installs granian-cli
from the artifacts `tools/dist.py build` made. The project's virtualenv holds a module the app imports,
and a `.pth` file (as editable installs write) pointing at a source directory; granian finds the
virtualenv through `.venv` in the working directory, `$VIRTUAL_ENV`, or `--venv`.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests_support.freshvenv import CommandServer, Distributions, FreshVenv, isolated_env

# The shared build may still be running when this module is first; pipx and pip download from PyPI.
pytestmark = pytest.mark.timeout(1800)

APP = """
import projlib
import projsrc


async def app(scope, protocol):
    protocol.response_str(200, [('content-type', 'text/plain')], f'{projlib.NAME} {projsrc.NAME}')
"""


@dataclass(frozen=True)
class Pipx:
    #: the pipx command itself, and the granian command it installed
    pipx: Path
    granian: Path
    env: dict[str, str]


@pytest.fixture(scope='module')
def pipx(distributions: Distributions, tmp_path_factory: pytest.TempPathFactory) -> Pipx:
    """granian-cli installed by pipx (PIPX_HOME and PIPX_BIN_DIR in a temporary directory)."""
    tool = FreshVenv(tmp_path_factory.mktemp('pipx-tool'))
    tool.pip_install('pipx')
    home = tmp_path_factory.mktemp('pipx-home')
    env = {'PIPX_HOME': str(home / 'home'), 'PIPX_BIN_DIR': str(home / 'bin'), 'PIPX_MAN_DIR': str(home / 'man')}
    pip_args = f'--find-links {distributions.directory}'
    argv = [tool.bin / 'pipx', 'install', '--python', sys.executable, '--pip-args', pip_args, 'granian-cli']
    result = subprocess.run(
        [str(a) for a in argv], env=isolated_env(env), capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Pipx(pipx=tool.bin / 'pipx', granian=home / 'bin' / 'granian', env=env)


def _project_venv(root: Path, name: str) -> Path:
    """A virtualenv at `root/.venv` holding `projlib` (a module) and a .pth pointing at `root/src` (`projsrc`)."""
    venv = root / '.venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', venv], check=True, timeout=120)
    (site_packages,) = venv.glob('lib/python*/site-packages')
    (site_packages / 'projlib.py').write_text(f'NAME = {name!r}\n')
    (root / 'src').mkdir()
    (root / 'src' / 'projsrc.py').write_text("NAME = 'src'\n")
    (site_packages / '_projsrc.pth').write_text(str(root / 'src') + '\n')
    (root / 'app.py').write_text(APP)
    return venv


@pytest.fixture(scope='module')
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('project')
    _project_venv(root, 'project')
    return root


def _serve(pipx: Pipx, workdir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    argv = [pipx.granian, '--interface', 'rsgi', '--port', '{port}', *args, 'app:app']
    server = CommandServer(argv, working_dir=workdir, env={**pipx.env, **(env or {})})
    with server, httpx.Client(timeout=30) as client:
        return client.get(server.url('/')).text


def _fails(pipx: Pipx, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(pipx.granian), '--interface', 'rsgi', *args, 'app:app']
    return subprocess.run(
        argv, cwd=workdir, env=isolated_env(pipx.env), capture_output=True, text=True, timeout=60, check=False
    )


def test_pipx_granian_is_isolated_from_the_project(pipx: Pipx, project: Path) -> None:
    result = subprocess.run(
        [str(pipx.granian), '--version'], env=isolated_env(pipx.env), capture_output=True, text=True, check=True
    )
    assert 'granian-cli' in result.stdout
    # the app's dependencies are not in pipx's venv: without a virtualenv to use, the app cannot import
    other = project.parent / 'no-venv-here'
    other.mkdir(exist_ok=True)
    (other / 'app.py').write_text(APP)
    failed = _fails(pipx, other)
    assert failed.returncode == 1, failed.stderr
    assert "No module named 'projlib'" in failed.stdout + failed.stderr


def test_dot_venv_in_the_working_directory(pipx: Pipx, project: Path) -> None:
    assert _serve(pipx, project) == 'project src'


def test_an_active_virtual_env(pipx: Pipx, project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    venv = _project_venv(elsewhere, 'activated')
    # $VIRTUAL_ENV wins over .venv in the working directory
    assert _serve(pipx, project, env={'VIRTUAL_ENV': str(venv)}) == 'activated src'


def test_venv_option_and_variable(pipx: Pipx, project: Path, tmp_path: Path) -> None:
    chosen = tmp_path / 'chosen'
    chosen.mkdir()
    venv = _project_venv(chosen, 'chosen')
    assert _serve(pipx, project, '--venv', str(venv), env={'VIRTUAL_ENV': '/nonexistent'}) == 'chosen src'
    assert _serve(pipx, project, env={'GRANIAN_VENV': str(venv)}) == 'chosen src'


def test_a_venv_of_another_python_is_refused_in_one_line(pipx: Pipx, project: Path, tmp_path: Path) -> None:
    other = tmp_path / 'py39'
    (other / 'lib' / 'python3.9' / 'site-packages').mkdir(parents=True)
    (other / 'pyvenv.cfg').write_text('home = /usr/bin\nversion = 3.9.18\n')
    failed = _fails(pipx, project, '--venv', str(other))
    assert failed.returncode == 1
    running = f'{sys.version_info[0]}.{sys.version_info[1]}'
    assert failed.stderr.strip() == (
        f'Error: --venv {other} is for Python 3.9, but granian runs on Python {running}; '
        'install granian with that Python (pipx install --python python3.9 granian-cli)'
    )


def test_a_directory_that_is_no_venv_is_refused_in_one_line(pipx: Pipx, project: Path, tmp_path: Path) -> None:
    failed = _fails(pipx, project, '--venv', str(tmp_path))
    assert failed.returncode == 1
    assert failed.stderr.strip() == f'Error: --venv {tmp_path}: not a virtualenv (no pyvenv.cfg)'


def test_pipx_inject_adds_an_extra(pipx: Pipx, project: Path) -> None:
    """`pipx inject granian-cli python-dotenv` gives the pipx install --env-files (the dotenv extra)."""
    (project / '.env').write_text('FROM_DOTENV=1\n')
    before = _fails(pipx, project, '--env-files', '.env')
    assert before.returncode != 0
    assert 'pip install granian-core[dotenv]' in before.stderr
    subprocess.run(
        [str(pipx.pipx), 'inject', 'granian-cli', 'python-dotenv'],
        env=isolated_env(pipx.env),
        capture_output=True,
        check=True,
        timeout=600,
    )
    assert _serve(pipx, project, '--env-files', '.env') == 'project src'
