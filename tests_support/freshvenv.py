"""Built distributions and fresh virtual environments: what a user gets from `pip install`.

`build_distributions` runs the one build command (tools/dist.py build); `FreshVenv` is a new venv that
knows nothing of the development environment, with helpers to install into it, probe which modules
import, and start a server from it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .server import RunningServer, server_env

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Building the core links it in release mode (fat LTO): minutes on 2 busy cores.
BUILD_TIMEOUT = 1800
PIP_TIMEOUT = 600
DISTRIBUTIONS = ['granian-core', 'granian-asgi', 'granian-rsgi', 'granian-wsgi', 'granian-cli']
_PROBE = """
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


@dataclass(frozen=True)
class Distributions:
    """The wheels and sdists `tools/dist.py build` wrote into `directory`."""

    directory: Path

    def _find(self, distribution: str, suffix: str) -> Path:
        prefix = distribution.replace('-', '_') + '-'
        found = [
            path for path in self.directory.iterdir() if path.name.startswith(prefix) and path.name.endswith(suffix)
        ]
        assert len(found) == 1, (distribution, suffix, sorted(p.name for p in self.directory.iterdir()))
        return found[0]

    def wheel(self, distribution: str) -> Path:
        return self._find(distribution, '.whl')

    def sdist(self, distribution: str) -> Path:
        return self._find(distribution, '.tar.gz')


def isolated_env(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment without anything that would point a subprocess at the development venv."""
    env = server_env()
    for key in ('VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME'):
        env.pop(key, None)
    # the development venv's bin/ first on PATH would shadow the fresh venv's console scripts
    dev_bin = str(Path(sys.executable).parent)
    env['PATH'] = os.pathsep.join(p for p in env.get('PATH', '').split(os.pathsep) if p != dev_bin)
    env.update(overrides or {})
    return env


def run(
    argv: Iterable[str | Path], timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in an isolated environment (bounded); fail the test with its output if it fails."""
    argv = [str(arg) for arg in argv]
    result = subprocess.run(
        argv, cwd=cwd, env=isolated_env(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f'{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}'
    return result


def build_distributions(out: Path) -> Distributions:
    """Wheels and sdists of every distribution, built by tools/dist.py for the interpreter running the tests.

    One build at a time across test processes: two maturin builds of the same crate race when they
    move the built library out of the shared target directory (the second finds it gone)."""
    lock_path = REPO_ROOT / 'target' / 'dist-build.lock'
    lock_path.parent.mkdir(exist_ok=True)
    with lock_path.open('w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run([sys.executable, REPO_ROOT / 'tools' / 'dist.py', 'build', '--out', out], BUILD_TIMEOUT, cwd=REPO_ROOT)
    return Distributions(out)


@dataclass
class FreshVenv:
    """A new virtual environment in `workdir / 'venv'`, created by `python` (default: the running one)."""

    workdir: Path
    python_base: str = sys.executable

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        run([self.python_base, '-m', 'venv', self.workdir / 'venv'], PIP_TIMEOUT)

    @property
    def bin(self) -> Path:
        return self.workdir / 'venv' / ('Scripts' if os.name == 'nt' else 'bin')

    @property
    def python(self) -> Path:
        return self.bin / ('python.exe' if os.name == 'nt' else 'python')

    def pip_install(self, *args: str | Path, env: dict[str, str] | None = None) -> None:
        run([self.python, '-m', 'pip', 'install', '--quiet', *args], PIP_TIMEOUT, cwd=self.workdir, env=env)

    def imports(self, *modules: str) -> dict[str, str]:
        """Module name -> 'ok' or the name of the exception importing it raised, in this venv."""
        probe = run([self.python, '-c', _PROBE, *modules], 120, cwd=self.workdir)
        return json.loads(probe.stdout)

    def run(
        self, *argv: str | Path, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command of this venv (`'python'`, `'granian'`, ... resolve to its bin/) in `workdir`."""
        program = self.bin / str(argv[0]) if (self.bin / str(argv[0])).exists() else argv[0]
        return run([program, *argv[1:]], timeout, cwd=self.workdir, env=env)

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text, encoding='utf-8')
        return path


class CommandServer(RunningServer):
    """A server started by any argv, with `{port}` filled in: a fresh venv's `granian`, a script calling Granian()."""

    def __init__(self, argv: Iterable[str | Path], **kwargs: object) -> None:
        kwargs.setdefault('ready_timeout', 60)
        super().__init__('', **kwargs)
        self.argv = [str(arg) for arg in argv]

    @property
    def command(self) -> list[str]:
        return [arg.replace('{port}', str(self.port)) for arg in self.argv]

    def process_env(self) -> dict[str, str]:
        return isolated_env(self.env)


def require_no_failures(imports: dict[str, str], present: Iterable[str], absent: Iterable[str]) -> None:
    """Fail unless each of `present` imports and each of `absent` is missing (ModuleNotFoundError)."""
    wrong = {name: imports[name] for name in present if imports[name] != 'ok'}
    wrong |= {name: imports[name] for name in absent if imports[name] != 'ModuleNotFoundError'}
    if wrong:
        pytest.fail(f'unexpected import outcomes: {wrong} (all: {imports})')
