"""Run the granian command line with ``python -m granian``."""

from __future__ import annotations

import sys


def main() -> None:
    """Start the granian command line, or explain how to install it."""
    try:
        from granian.cli import entrypoint
    except ModuleNotFoundError as exc:
        if exc.name != 'granian.cli':
            raise
        print('The granian command needs the granian-cli package: pip install granian-cli', file=sys.stderr)
        raise SystemExit(2) from None
    entrypoint()


if __name__ == '__main__':
    main()
