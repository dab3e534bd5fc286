"""Running the RSGI conformance suite (spec/conformance) against a server: ours, or upstream Granian 2.8.1.

The suite is its own pytest project; it runs in a subprocess with a server command template and
writes a JSON report with one status per requirement. Used by packages/granian-rsgi/tests and by
tools/conformance.py.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import venv
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITE = REPO_ROOT / 'spec' / 'conformance'
UPSTREAM_VERSION = '2.8.1'
UPSTREAM_VENV = REPO_ROOT / '.venv-upstream'


def our_server_cmd(python: str = sys.executable) -> str:
    """The command template that serves the suite's app with our server."""
    return f'{shlex.quote(python)} -m granian --interface rsgi --port {{port}} {{app}}'


def upstream_server_cmd(granian: Path) -> str:
    return f'{shlex.quote(str(granian))} --interface rsgi --port {{port}} {{app}}'


def upstream_granian(cache: Path = UPSTREAM_VENV) -> Path:
    """The `granian` command of upstream Granian 2.8.1: the benchmark peers' one, else one installed from
    PyPI into `cache` (a virtualenv created on first use)."""
    peers = REPO_ROOT / 'benchmarks' / '.venv-peers' / 'bin' / 'granian'
    for candidate in (peers, cache / 'bin' / 'granian'):
        if candidate.exists():
            version = subprocess.run([candidate, '--version'], capture_output=True, text=True, check=False).stdout
            if version.split() == ['granian', UPSTREAM_VERSION]:
                return candidate
    venv.create(cache, with_pip=True, clear=True)
    subprocess.run(
        [cache / 'bin' / 'python', '-m', 'pip', 'install', '--quiet', f'granian=={UPSTREAM_VERSION}'],
        check=True,
        timeout=300,
    )
    return cache / 'bin' / 'granian'


def run_suite(
    server_cmd: str, report_json: Path, report_md: Path | None = None, extra: list[str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run the suite against `server_cmd`; returns the finished process and the JSON report."""
    command = [sys.executable, '-m', 'pytest', str(SUITE), '-q', '--server-cmd', server_cmd]
    command += ['--report-json', str(report_json)]
    if report_md is not None:
        command += ['--report-md', str(report_md)]
    result = subprocess.run(
        [*command, *(extra or [])], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    if not report_json.exists():
        raise AssertionError(f'the suite wrote no report:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result, json.loads(report_json.read_text())


def statuses(report: dict) -> dict[str, str]:
    """Requirement id -> passed, failed, skipped or untested."""
    return {row['id']: row['status'] for row in report['requirements']}
