#!/usr/bin/env python3
"""Run Autobahn|Testsuite (the WebSocket conformance suite) against granian's RSGI and ASGI echo apps.

    python tools/autobahn.py                       # every case, both interfaces (very slow: wstest's
                                                   # pure-Python deflate makes 12.* and 13.* take
                                                   # well over 45 minutes per interface on 2 cores)
    python tools/autobahn.py --cases '1.*,2.*'     # a subset (CI runs cases 1 to 10)
    python tools/autobahn.py --interface rsgi      # one interface

Uses shared/tools/autobahn.sh beside the repository (or $AUTOBAHN_SH), installing wstest on first
use. Exits 1 when any case is FAILED or UNIMPLEMENTED; reports go to autobahn-report/<interface>/
(git ignores it).
Run it with the development environment's Python (.venv), after `python3 tools/dev.py build`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests_support.server import RunningServer

APPS = {
    'rsgi': ('rsgi_ws_app:app', ROOT / 'packages' / 'granian-rsgi' / 'tests' / 'apps'),
    'asgi': ('asgi_ws_app:app', ROOT / 'packages' / 'granian-asgi' / 'tests' / 'apps'),
}
CI_CASES = '1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*'


def autobahn_script() -> Path:
    """Where autobahn.sh is."""
    candidates = [os.environ.get('AUTOBAHN_SH'), ROOT.parent / 'shared' / 'tools' / 'autobahn.sh']
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise SystemExit('autobahn.sh not found: set AUTOBAHN_SH or put shared/tools/autobahn.sh beside the repository')


def run_interface(script: Path, interface: str, cases: list[str]) -> tuple[int, int]:
    """Runs the cases against one interface; returns (passed, failed)."""
    target, apps_dir = APPS[interface]
    report_dir = ROOT / 'autobahn-report' / interface
    report_dir.mkdir(parents=True, exist_ok=True)
    with RunningServer(target, working_dir=apps_dir, interface=interface) as server:
        url = f'ws://{server.host}:{server.port}/echo'
        result = subprocess.run(
            ['bash', str(script), 'run', url, json.dumps(cases), str(report_dir)],
            check=False,
            capture_output=True,
            text=True,
            timeout=3600,
        )
    index = report_dir / 'index.json'
    if not index.exists():
        print(result.stdout, result.stderr, file=sys.stderr)
        return 0, 1
    outcomes = next(iter(json.loads(index.read_text()).values()))
    bad = sorted(
        case
        for case, outcome in outcomes.items()
        if outcome['behavior'] in ('FAILED', 'UNIMPLEMENTED') or outcome['behaviorClose'] in ('FAILED', 'UNIMPLEMENTED')
    )
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome['behavior']] = counts.get(outcome['behavior'], 0) + 1
    print(f'{interface}: {len(outcomes)} cases, {counts}; failed: {" ".join(bad) or "none"}')
    return len(outcomes) - len(bad), len(bad)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', default='*', help='comma-separated case patterns, e.g. "1.*,2.*" (default: all)')
    parser.add_argument('--interface', choices=[*APPS, 'all'], default='all')
    args = parser.parse_args()
    script = autobahn_script()
    install = subprocess.run(['bash', str(script), 'install'], check=False, capture_output=True, text=True)
    if install.returncode != 0:
        print(install.stdout[-2000:], install.stderr[-2000:], file=sys.stderr)
        raise SystemExit('installing Autobahn|Testsuite failed')
    cases = [case.strip() for case in args.cases.split(',') if case.strip()]
    passed = failed = 0
    for interface in APPS if args.interface == 'all' else [args.interface]:
        ok, bad = run_interface(script, interface, cases)
        passed, failed = passed + ok, failed + bad
    print(f'autobahn: {passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
