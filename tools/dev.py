#!/usr/bin/env python3
"""Set up the development environment from a fresh clone, then serve the example app or run the tests.

    python3 tools/dev.py serve    # build everything, serve examples/rsgi_hello on 127.0.0.1:8000
    python3 tools/dev.py test     # build everything, run the whole test suite (Rust and Python)
    python3 tools/dev.py build    # only build (into .venv)
    python3 tools/dev.py test-python 3.13 [--if-present] [PYTEST ARGS]
                                  # the tests (or those named) on another Python, in .venv-3.13;
                                  # --if-present: skip (exit 0, with a notice) when it is not installed

Needs Python >= 3.10 and a Rust toolchain (cargo). Everything else is installed into .venv from PyPI
and crates.io. The Rust core is built once, in release mode, and installed into .venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / '.venv'
BIN = VENV / ('Scripts' if os.name == 'nt' else 'bin')
PYTHON = BIN / ('python.exe' if os.name == 'nt' else 'python')
THIN_PACKAGES = ['packages/granian-asgi', 'packages/granian-rsgi', 'packages/granian-wsgi', 'packages/granian-cli']


def run(*cmd: str | os.PathLike) -> None:
    """Run a command from the repository root; stop with its exit code if it fails."""
    print('+', ' '.join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], check=False, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(result.returncode)


def build(
    venv_dir: Path = VENV, interpreter: str = sys.executable, groups: tuple[str, ...] = ('build', 'test', 'lint')
) -> Path:
    """Create `venv_dir` with `interpreter`, install the tools, build the core in release mode for that
    interpreter and install every package (editable). Returns the venv's python."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this script may be started by any python3
        sys.exit('granian needs Python >= 3.10')
    env_bin = venv_dir / BIN.relative_to(VENV)
    python = venv_dir / PYTHON.relative_to(VENV)
    if not python.exists():
        if interpreter == sys.executable:
            venv.create(venv_dir, with_pip=True)
        else:
            run(interpreter, '-m', 'venv', venv_dir)
    run(python, '-m', 'pip', 'install', '--quiet', '--upgrade', 'pip>=25.1')
    run(python, '-m', 'pip', 'install', '--quiet', *(arg for group in groups for arg in ('--group', group)))
    os.environ['PATH'] = str(env_bin) + os.pathsep + os.environ.get('PATH', '')
    os.environ['VIRTUAL_ENV'] = str(venv_dir)
    # maturin develop builds for $VIRTUAL_ENV's interpreter (cargo rebuilds only pyo3 and our crate when
    # it differs from the last build's)
    run(env_bin / 'maturin', 'develop', '--release', '--quiet', '-m', 'packages/granian-core/Cargo.toml')
    editable = [arg for package in THIN_PACKAGES for arg in ('-e', package)]
    run(python, '-m', 'pip', 'install', '--quiet', '--no-deps', *editable)
    return python


def find_python(version: str) -> str | None:
    """The interpreter for `version` (such as 3.13): one pyenv installed, else pythonX.Y on PATH.

    Each candidate must run: pyenv's shim for a version that is installed but not selected fails.
    """
    pyenv_root = Path(os.environ.get('PYENV_ROOT', Path.home() / '.pyenv'))
    candidates = [str(path) for path in sorted(pyenv_root.glob(f'versions/{version}.*/bin/python{version}'))[::-1]]
    candidates += [found] if (found := shutil.which(f'python{version}')) else []
    for candidate in candidates:
        probe = subprocess.run([candidate, '-c', 'import sys'], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def serve(extra: list[str]) -> None:
    """Serve the example RSGI app on 127.0.0.1:8000."""
    args = ['--interface', 'rsgi', '--working-dir', 'examples/rsgi_hello', *extra, 'main:app']
    os.execv(str(PYTHON), [str(PYTHON), '-m', 'granian', *args])


def parallel(extra: list[str]) -> list[str]:
    """pytest-xdist arguments for `extra`: one test process per core (at most 4), each taking whole
    files, so a module's server fixture starts once. Most tests wait on servers and sockets, so two
    processes halve the run even on two cores. `-n` in `extra` (`-n 0`: one process) overrides it."""
    if any(arg == '-n' or arg.startswith(('-n', '--numprocesses')) for arg in extra):
        return extra
    jobs = max(2, min(os.cpu_count() or 1, 4))
    return ['-n', str(jobs), '--dist', 'loadfile', *extra]


def test(extra: list[str]) -> None:
    """Run the Rust unit tests, then the Python test suite against the built packages."""
    run('cargo', 'test', '--quiet', '--workspace')
    # The core must also build without its optional HTTP/3 (it then refuses --http3 with one line).
    run('cargo', 'check', '--quiet', '-p', 'granian-core', '--no-default-features', '--features', 'crypto-ring')
    run(PYTHON, '-m', 'pytest', *parallel(extra))


def test_python(version: str, extra: list[str]) -> None:
    """Run the Python tests (all, or those in `extra`) on another Python, in .venv-VERSION."""
    if_present = '--if-present' in extra
    extra = [arg for arg in extra if arg != '--if-present']
    interpreter = find_python(version)
    if interpreter is None:
        message = f'python{version} not found (looked in pyenv and on PATH); install it, e.g. pyenv install {version}'
        if not if_present:
            sys.exit(message)
        print(f'*** test-python {version} SKIPPED: {message}', flush=True)
        return
    python = build(ROOT / f'.venv-{version}', interpreter, groups=('build', 'test'))
    run(python, '-m', 'pytest', *parallel(extra))


def main() -> None:
    command, extra = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ('', [])
    if command == 'test-python' and extra:
        test_python(extra[0], extra[1:])
        return
    if command not in {'build', 'serve', 'test'}:
        sys.exit(__doc__)
    build()
    if command == 'serve':
        serve(extra)
    elif command == 'test':
        test(extra)


if __name__ == '__main__':
    main()
