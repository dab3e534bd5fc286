"""Soak run: about a million requests per interface against one worker, with its memory (RSS) and open
descriptors sampled; prints a table and exits 1 when a run does not hold (see tests_support/soak.py).

    python tools/soak.py                              # 1,000,000 requests per interface (a few minutes each)
    python tools/soak.py --requests 200000 --interfaces wsgi

Needs wrk (apt-get install wrk) and the built core in .venv; run it from the repository root.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests_support.soak import report, soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--requests',
        type=int,
        default=1_000_000,
        help='requests per interface: sets the run length at an assumed 20,000 req/s; the table shows the real count',
    )
    parser.add_argument('--interfaces', default='rsgi,asgi,wsgi', help='comma-separated')
    parser.add_argument('--max-growth', type=float, default=0.10, help='RSS growth allowed after the warm-up')
    args = parser.parse_args()
    results = []
    for interface in args.interfaces.split(','):
        print(f'soak: {interface}, about {args.requests:,} requests', file=sys.stderr, flush=True)
        results.append(soak(interface.strip(), args.requests))
    print(report(results, args.max_growth))
    return 0 if all(result.holds(args.max_growth) for result in results) else 1


if __name__ == '__main__':
    sys.exit(main())
