"""Serving a project's app with a `granian` installed elsewhere (pipx, a system package, another venv).

The app's dependencies live in the project's virtualenv, not in granian's. Before the app is imported,
the command finds that virtualenv (`--venv PATH`, else an active `$VIRTUAL_ENV`, else `.venv` in the
working directory) and adds its site-packages after granian's own (`site.addsitedir`, so `.pth` files
of editable installs work). Worker processes are spawned with the supervisor's `sys.path`, so they see
the same packages. The virtualenv must be of the same Python version as granian's interpreter:
compiled packages built for another version would fail later, in a worker, with a confusing error.
"""

from __future__ import annotations

import os
import re
import site
import sys
from dataclasses import dataclass
from pathlib import Path


class VenvError(Exception):
    """A virtualenv that cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class ProjectVenv:
    path: Path
    #: how it was found: '--venv', '$VIRTUAL_ENV' or '.venv'
    found_by: str
    site_packages: Path


def _is_running_interpreter(path: Path) -> bool:
    return path.resolve() in {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}


def _python_version(path: Path, found_by: str) -> tuple[int, int]:
    config = path / 'pyvenv.cfg'
    if not config.is_file():
        raise VenvError(f'{found_by} {path}: not a virtualenv (no pyvenv.cfg)')
    text = config.read_text(encoding='utf-8', errors='replace')
    # `version_info` (venv, Python >= 3.11) or `version` (virtualenv, uv, older venv)
    match = re.search(r'^\s*version(?:_info)?\s*=\s*(\d+)\.(\d+)', text, re.MULTILINE)
    if match is None:
        raise VenvError(f'{found_by} {path}: pyvenv.cfg does not say which Python it is for')
    return int(match.group(1)), int(match.group(2))


def _site_packages(path: Path, version: tuple[int, int]) -> Path:
    if os.name == 'nt':
        return path / 'Lib' / 'site-packages'
    return path / 'lib' / f'python{version[0]}.{version[1]}' / 'site-packages'


def find(explicit: str | None, working_dir: str | None) -> ProjectVenv | None:
    """The project's virtualenv, if there is one to add; raise VenvError if it cannot be used."""
    if explicit:
        path, found_by = Path(explicit).expanduser().absolute(), '--venv'
        if not path.is_dir():
            raise VenvError(f'--venv {path}: no such directory')
    elif os.environ.get('VIRTUAL_ENV'):
        path, found_by = Path(os.environ['VIRTUAL_ENV']).absolute(), '$VIRTUAL_ENV'
        if not path.is_dir():
            return None  # a stale variable from a removed venv: nothing to add
    else:
        path, found_by = Path(working_dir or os.getcwd()).absolute() / '.venv', '.venv'
        if not (path / 'pyvenv.cfg').is_file():
            return None
    if _is_running_interpreter(path):
        return None  # granian runs inside it: its packages are already there
    version = _python_version(path, found_by)
    if version != sys.version_info[:2]:
        running = f'{sys.version_info[0]}.{sys.version_info[1]}'
        raise VenvError(
            f'{found_by} {path} is for Python {version[0]}.{version[1]}, but granian runs on Python {running}; '
            f'install granian with that Python (pipx install --python python{version[0]}.{version[1]} granian-cli)'
        )
    site_packages = _site_packages(path, version)
    if not site_packages.is_dir():
        raise VenvError(f'{found_by} {path}: no site-packages directory at {site_packages}')
    return ProjectVenv(path, found_by, site_packages)


def activate(venv: ProjectVenv) -> None:
    """Add the virtualenv's packages after granian's own, in this process and the workers it spawns."""
    site.addsitedir(str(venv.site_packages))
