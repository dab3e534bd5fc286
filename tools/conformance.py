#!/usr/bin/env python3
"""Run the RSGI conformance suite (spec/conformance) against our server or upstream Granian 2.8.1.

    python tools/conformance.py                 # against ours (the granian in this Python's environment)
    python tools/conformance.py --upstream      # against granian==2.8.1 (benchmark peers, or .venv-upstream)
    python tools/conformance.py --save          # both, writing spec/conformance/results/{granian,granian-2.8.1}.{md,json}

Other servers: `pytest spec/conformance --server-cmd '...'` (spec/conformance/README.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests_support.conformance import (
    REPO_ROOT,
    SUITE,
    UPSTREAM_VERSION,
    our_server_cmd,
    run_suite,
    upstream_granian,
    upstream_server_cmd,
)

RESULTS = SUITE / 'results'


def run(name: str, server_cmd: str, save: bool) -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        target = RESULTS if save else Path(scratch)
        target.mkdir(parents=True, exist_ok=True)
        result, report = run_suite(server_cmd, target / f'{name}.json', target / f'{name}.md')
        if save:  # saved reports name paths relative to the repository, not this machine's checkout
            for saved in (target / f'{name}.json', target / f'{name}.md'):
                saved.write_text(saved.read_text().replace(f'{REPO_ROOT}/', ''))
    print(f'== {name}: {server_cmd}')
    for level, counts in report['totals'].items():
        print(f'   {level:6} ' + ', '.join(f'{count} {status}' for status, count in counts.items()))
    for row in report['requirements']:
        if row['status'] in {'failed', 'untested'}:
            print(f'   {row["status"]:8} {row["level"]:6} {row["id"]}')
    return result.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--upstream', action='store_true', help=f'run against granian=={UPSTREAM_VERSION} only')
    parser.add_argument('--save', action='store_true', help='run against both and save the reports in results/')
    args = parser.parse_args()
    ok = True
    if args.save or not args.upstream:
        ok = run('granian', our_server_cmd(), args.save) and ok
    if args.save or args.upstream:
        run(f'granian-{UPSTREAM_VERSION}', upstream_server_cmd(upstream_granian()), args.save)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
