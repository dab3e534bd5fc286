#!/usr/bin/env python3
"""Run Autobahn|Testsuite (the WebSocket conformance suite) against granian's RSGI and ASGI echo apps.

    python tools/autobahn.py                       # every case, both interfaces (slow: wstest is
                                                   # single-threaded Python, and 12.* and 13.* push
                                                   # hundreds of MB through its deflate)
    python tools/autobahn.py --jobs 2              # the same in two wstest processes at once
    python tools/autobahn.py --cases '1.*,2.*'     # a subset (CI runs cases 1 to 10)
    python tools/autobahn.py --interface rsgi      # one interface

With --jobs N the case patterns are dealt out to N wstest processes, each against a server of its
own, so give patterns fine enough to share out ('*' is split into Autobahn's case groups).
Uses shared/tools/autobahn.sh beside the repository (or $AUTOBAHN_SH), installing wstest on first
use. Exits 1 when any case is FAILED or UNIMPLEMENTED; reports go to autobahn-report/<interface>/
(one folder per job with --jobs; git ignores them).
Run it with the development environment's Python (.venv), after `python3 tools/dev.py build`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests_support.server import RunningServer

APPS = {
    'rsgi': ('rsgi_ws_app:app', ROOT / 'packages' / 'granian-rsgi' / 'tests' / 'apps'),
    'asgi': ('asgi_ws_app:app', ROOT / 'packages' / 'granian-asgi' / 'tests' / 'apps'),
}
CI_CASES = '1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*'
# Autobahn's case groups, for sharing '*' out among jobs (8 and 11 do not exist). The slow groups
# (12: compressed messages, 13: deflate parameters) come first so the jobs end together.
ALL_GROUPS = [
    *(f'13.{n}.*' for n in range(1, 8)),
    *(f'12.{n}.*' for n in range(1, 6)),
    *(f'{n}.*' for n in (1, 2, 3, 4, 5, 6, 7, 9, 10)),
]


def autobahn_script() -> Path:
    """Where autobahn.sh is."""
    candidates = [os.environ.get('AUTOBAHN_SH'), ROOT.parent / 'shared' / 'tools' / 'autobahn.sh']
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise SystemExit('autobahn.sh not found: set AUTOBAHN_SH or put shared/tools/autobahn.sh beside the repository')


def run_interface(script: Path, interface: str, cases: list[str], report_dir: Path) -> tuple[int, int]:
    """Runs the cases against one interface; returns (passed, failed)."""
    target, apps_dir = APPS[interface]
    report_dir.mkdir(parents=True, exist_ok=True)
    with RunningServer(target, working_dir=apps_dir, interface=interface) as server:
        url = f'ws://{server.host}:{server.port}/echo'
        result = subprocess.run(
            ['bash', str(script), 'run', url, json.dumps(cases), str(report_dir)],
            check=False,
            capture_output=True,
            text=True,
            timeout=4 * 3600,
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
    print(f'{interface} {cases_text(cases)}: {len(outcomes)} cases, {counts}; failed: {" ".join(bad) or "none"}')
    return len(outcomes) - len(bad), len(bad)


def cases_text(cases: list[str]) -> str:
    return ','.join(cases) if len(cases) <= 4 else f'{",".join(cases[:3])},... ({len(cases)} patterns)'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', default='*', help='comma-separated case patterns, e.g. "1.*,2.*" (default: all)')
    parser.add_argument('--interface', choices=[*APPS, 'all'], default='all')
    parser.add_argument('--jobs', type=int, default=1, help='wstest processes to run at once (default: 1)')
    args = parser.parse_args()
    script = autobahn_script()
    install = subprocess.run(['bash', str(script), 'install'], check=False, capture_output=True, text=True)
    if install.returncode != 0:
        print(install.stdout[-2000:], install.stderr[-2000:], file=sys.stderr)
        raise SystemExit('installing Autobahn|Testsuite failed')
    cases = [case.strip() for case in args.cases.split(',') if case.strip()]
    jobs = max(1, args.jobs)
    if jobs > 1 and cases == ['*']:
        cases = ALL_GROUPS
    shards = [cases[index::jobs] for index in range(min(jobs, len(cases)))]
    runs = [
        (interface, shard, ROOT / 'autobahn-report' / interface / (f'job{index}' if len(shards) > 1 else ''))
        for interface in (APPS if args.interface == 'all' else [args.interface])
        for index, shard in enumerate(shards)
    ]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda run: run_interface(script, *run), runs))
    passed = sum(ok for ok, _ in results)
    failed = sum(bad for _, bad in results)
    print(f'autobahn: {passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
