#!/usr/bin/env python3
"""Set up the development environment from a fresh clone, then serve the example app or run the tests.

    python3 tools/dev.py serve    # build everything, serve examples/rsgi_hello on 127.0.0.1:8000
    python3 tools/dev.py test     # build everything, run the whole test suite (Rust and Python)
    python3 tools/dev.py build    # only build (into .venv)

Needs Python >= 3.10 and a Rust toolchain (cargo). Everything else is installed into .venv from PyPI
and crates.io. The Rust core is built once, in release mode, and installed into .venv.
"""

from __future__ import annotations

import os
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


def build() -> None:
    """Create .venv, install the tools, build the core in release mode and install every package."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this script may be started by any python3
        sys.exit('granian needs Python >= 3.10')
    if not PYTHON.exists():
        venv.create(VENV, with_pip=True)
    run(PYTHON, '-m', 'pip', 'install', '--quiet', '--upgrade', 'pip>=25.1')
    run(PYTHON, '-m', 'pip', 'install', '--quiet', '--group', 'build', '--group', 'test', '--group', 'lint')
    env_bin = str(BIN)
    os.environ['PATH'] = env_bin + os.pathsep + os.environ.get('PATH', '')
    os.environ['VIRTUAL_ENV'] = str(VENV)
    run(BIN / 'maturin', 'develop', '--release', '--quiet', '-m', 'packages/granian-core/Cargo.toml')
    editable = [arg for package in THIN_PACKAGES for arg in ('-e', package)]
    run(PYTHON, '-m', 'pip', 'install', '--quiet', '--no-deps', *editable)


def serve(extra: list[str]) -> None:
    """Serve the example RSGI app on 127.0.0.1:8000."""
    args = ['--interface', 'rsgi', '--working-dir', 'examples/rsgi_hello', *extra, 'main:app']
    os.execv(str(PYTHON), [str(PYTHON), '-m', 'granian', *args])


def test(extra: list[str]) -> None:
    """Run the Rust unit tests, then the Python test suite against the built packages."""
    run('cargo', 'test', '--quiet', '--workspace')
    run(PYTHON, '-m', 'pytest', *extra)


def main() -> None:
    command, extra = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ('', [])
    if command not in {'build', 'serve', 'test'}:
        sys.exit(__doc__)
    build()
    if command == 'serve':
        serve(extra)
    elif command == 'test':
        test(extra)


if __name__ == '__main__':
    main()
