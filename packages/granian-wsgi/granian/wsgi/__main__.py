"""`python -m granian.wsgi APP`: serve a WSGI app with granian, without the granian-cli package.

Options have the names, environment variables (`GRANIAN_*`) and defaults of the `granian` command;
the defaults come from `granian.server.Server`, the one place they are defined.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from granian.errors import ConfigurationError, FatalError
from granian.log import LogLevels
from granian.server import Server
from granian.server.defaults import SERVER_DEFAULTS

# (flag, Server argument, type, help); the environment variable is GRANIAN_ + the flag's name.
OPTIONS: list[tuple[str, str, Any, str]] = [
    ('--host', 'address', str, 'Host address to bind to.'),
    ('--port', 'port', int, 'Port to bind to.'),
    ('--workers', 'workers', int, 'Number of worker processes.'),
    ('--blocking-threads', 'blocking_threads', int, 'Most threads running the app per worker.'),
    ('--blocking-threads-idle-timeout', 'blocking_threads_idle_timeout', float, 'Seconds before an idle thread exits.'),
    ('--backlog', 'backlog', int, 'Maximum number of pending connections.'),
    ('--backpressure', 'backpressure', int, 'Maximum number of requests each worker handles at once.'),
    ('--http', 'http', str, 'HTTP version to serve: auto, 1 or 2.'),
    ('--runtime-threads', 'runtime_threads', int, 'Number of Rust runtime threads per worker.'),
    ('--runtime-mode', 'runtime_mode', str, 'Rust runtime threading: auto, mt or st.'),
    ('--url-path-prefix', 'url_path_prefix', str, 'URL path the app is mounted at (SCRIPT_NAME).'),
    ('--working-dir', 'working_dir', str, 'Directory to import APP from.'),
    ('--log-level', 'log_level', str, 'Server log level.'),
]


def _env_name(flag: str) -> str:
    return 'GRANIAN_' + flag.lstrip('-').replace('-', '_').upper()


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {'1', 'true', 'yes', 'on'}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; defaults are the environment's GRANIAN_* values, else the server's."""
    parser = argparse.ArgumentParser(
        prog='python -m granian.wsgi',
        description='Serve a WSGI application with granian.',
        epilog='Every option can also be set with its GRANIAN_* environment variable.',
    )
    parser.add_argument('app', metavar='APP', help='Application target, e.g. "app:app" or "path/to/app.py:app".')
    for flag, name, kind, text in OPTIONS:
        env = _env_name(flag)
        default = SERVER_DEFAULTS[name]
        if env in os.environ:
            default = os.environ[env]
        parser.add_argument(
            flag, dest=name, type=kind, default=default, help=f'{text} [default: {SERVER_DEFAULTS[name]}; env: {env}]'
        )
    parser.add_argument(
        '--factory',
        action=argparse.BooleanOptionalAction,
        default=_env_flag('GRANIAN_FACTORY', SERVER_DEFAULTS['factory']),
        help='Treat APP as a factory that returns the application [env: GRANIAN_FACTORY].',
    )
    parser.add_argument(
        '--log',
        dest='log_enabled',
        action=argparse.BooleanOptionalAction,
        default=_env_flag('GRANIAN_LOG_ENABLED', SERVER_DEFAULTS['log_enabled']),
        help='Enable the server log [env: GRANIAN_LOG_ENABLED].',
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse the options and serve until SIGINT/SIGTERM."""
    parser = build_parser()
    options = vars(parser.parse_args(argv))
    target = options.pop('app')
    for _, name, kind, _ in OPTIONS:
        # Values from the environment arrive as strings; convert them as the flag would.
        if isinstance(options[name], str) and kind is not str:
            try:
                options[name] = kind(options[name])
            except ValueError:
                parser.error(f'invalid value for {name}: {options[name]!r}')
    if options['log_level'] not in set(LogLevels):
        parser.error(f'--log-level must be one of {", ".join(LogLevels)}')
    try:
        Server(target, interface='wsgi', **options).serve()
    except ConfigurationError as exc:
        parser.error(str(exc))
    except FatalError as exc:
        if not exc.logged and str(exc):
            print(f'Error: {exc}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
