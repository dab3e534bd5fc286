"""What a result depends on: the machine, the commit, tool versions, and which servers can run here."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from .servers import OURS_PYTHON, ROOT, SERVERS, ServerSpec

_PROBE = """
import importlib, importlib.metadata, json, sys
modules, distributions = json.loads(sys.argv[1])
found = {'python': sys.version.split()[0], 'modules': {}, 'versions': {}}
for name in modules:
    try:
        importlib.import_module(name)
        found['modules'][name] = None
    except Exception as error:
        found['modules'][name] = f'{type(error).__name__}: {error}'.splitlines()[0][:200]
for name in distributions:
    try:
        found['versions'][name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        found['versions'][name] = None
print(json.dumps(found))
"""


def probe(python: Path, modules: list[str], distributions: list[str]) -> dict:
    """Import `modules` and read the versions of `distributions` in the interpreter `python` (bounded)."""
    if not python.exists():
        missing = f'{python} does not exist'
        return {'python': None, 'modules': dict.fromkeys(modules, missing), 'versions': dict.fromkeys(distributions)}
    try:
        done = subprocess.run(
            [str(python), '-c', _PROBE, json.dumps([modules, distributions])],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as error:
        failure = f'probe failed: {error}'
        return {'python': None, 'modules': dict.fromkeys(modules, failure), 'versions': dict.fromkeys(distributions)}
    return json.loads(done.stdout)


def server_availability(specs: list[ServerSpec]) -> dict[str, dict]:
    """For each server: `version`, and `problem` (None when it can run)."""
    by_python: dict[Path, list[ServerSpec]] = {}
    for spec in specs:
        by_python.setdefault(spec.python, []).append(spec)
    found = {}
    for python, group in by_python.items():
        report = probe(python, [spec.module for spec in group], [spec.distribution for spec in group])
        for spec in group:
            problem = report['modules'].get(spec.module)
            version = report['versions'].get(spec.distribution)
            if spec.name == 'granian-2.8.1' and problem is None and version != '2.8.1':
                problem = f'granian {version} is installed in benchmarks/.venv-peers, not 2.8.1'
            if spec.python == OURS_PYTHON and problem is not None:
                problem = f'{problem} (build ours first: python3 tools/dev.py build)'
            found[spec.name] = {'version': version, 'problem': problem, 'python': report['python']}
    return found


def _first_line(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (subprocess.SubprocessError, OSError):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def _git(*args: str) -> str:
    try:
        done = subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (subprocess.SubprocessError, OSError):
        return ''
    return done.stdout.strip()


def machine() -> dict:
    """CPU model, cores, memory, kernel, and the Python that runs ours."""
    model = ''
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.partition(':')[2].strip()
                break
    except OSError:
        pass
    memory_kib = 0
    try:
        for line in Path('/proc/meminfo').read_text().splitlines():
            if line.startswith('MemTotal:'):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        'cpu': model or platform.processor(),
        'cores': os.cpu_count(),
        'memory_gib': round(memory_kib / 1024 / 1024, 1),
        'kernel': f'{platform.system()} {platform.release()}',
        'python': probe(OURS_PYTHON, [], [])['python'],
        'wrk': _first_line(['wrk', '--version']),
        'h2load': _first_line(['h2load', '--version']),
    }


def revision() -> dict:
    """The commit measured, and whether the working tree had changes."""
    return {
        'commit': _git('rev-parse', 'HEAD'),
        'subject': _git('log', '-1', '--format=%s'),
        'dirty': bool(_git('status', '--porcelain', '--untracked-files=no')),
    }


def now() -> str:
    """UTC time, ISO 8601, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def all_servers() -> list[ServerSpec]:
    """Every registered server."""
    return list(SERVERS.values())
