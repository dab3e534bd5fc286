"""`python -m granian.wsgi APP`: serve a WSGI app with granian, without the granian-cli package.

The options are the `granian` command's (names, GRANIAN_* variables, defaults, checks and messages all
come from the option registry, `granian.options`), less those that do not apply to WSGI.
"""

from __future__ import annotations

from collections.abc import Sequence

from granian.options.runner import run

PROG = 'python -m granian.wsgi'
DESCRIPTION = 'Serve a WSGI application with granian.'


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and serve until SIGINT/SIGTERM."""
    run('wsgi', PROG, DESCRIPTION, argv)


if __name__ == '__main__':
    main()
