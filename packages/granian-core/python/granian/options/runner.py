"""A click-free command line built from the option registry, for runners such as `python -m granian.wsgi`.

It has the `granian` command's flags, environment variables, defaults and messages (all come from the
registry), grouped the same way in `--help`; only options that apply to the runner's interface appear.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ..errors import ConfigurationError, FatalError
from . import GROUPS, Option, kwargs_from_values, options_for

__all__ = ['build_parser', 'parse_command_line', 'run']


class _Parser(argparse.ArgumentParser):
    """Reports a usage error as one line, like the `granian` command."""

    def error(self, message: str) -> NoReturn:
        """Print ``Error: <message>`` and exit with 2."""
        self.exit(2, f'Error: {message}; see {self.prog} --help\n')


class _Switch(argparse.Action):
    """`--x` stores True, `--no-x` stores False."""

    def __init__(self, option_strings: Sequence[str], dest: str, negative: str = '', **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)
        self.negative = negative

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, option_string != self.negative)


def build_parser(prog: str, description: str, options: Sequence[Option]) -> argparse.ArgumentParser:
    """An argument parser with one argument per option; values stay unparsed until `parse_command_line`."""
    parser = _Parser(
        prog=prog,
        description=description,
        epilog='Every option can also be set with its GRANIAN_* environment variable; a flag beats its variable.',
    )
    parser.add_argument('app', metavar='APP', help='Application target, e.g. "app:app" or "path/to/app.py:app".')
    for group, title in GROUPS.items():
        members = [option for option in options if option.group == group]
        if not members:
            continue
        section = parser.add_argument_group(title)
        for option in members:
            # argparse %-formats help texts: a literal % (access log formats) must be doubled.
            text = f'{option.help} [default: {option.default_display()}; env: {option.env}]'.replace('%', '%%')
            if option.kind.is_flag:
                positive, _, negative = option.flags[0].partition('/')
                section.add_argument(
                    positive, negative, dest=option.name, action=_Switch, negative=negative, default=None, help=text
                )
            else:
                section.add_argument(
                    *option.flags,
                    dest=option.name,
                    metavar=option.kind.metavar,
                    action='append' if option.multiple else 'store',
                    default=None,
                    help=text,
                )
    return parser


def _value(option: Option, given: Any) -> Any:
    if isinstance(given, list):
        return [option.parse(item) for item in given]
    return option.parse(given) if isinstance(given, str) else option.check(given)


# Marks option values in argv: no argument can contain NUL, and a marked value is never mistaken by argparse
# for an option or for its `--` separator, so `--port -1` and `--url-path-prefix --` reach the registry as
# click hands them over.
_VALUE_MARK = '\x00'


def _mark_values(options: Sequence[Option], argv: Sequence[str]) -> list[str]:
    """Write `--flag VALUE` and `--flag=VALUE` as `--flag=<mark>VALUE`."""
    takes_value = {flag for option in options if not option.kind.is_flag for flag in option.flags}
    marked: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == '--':
            marked += [token, *tokens]
            break
        flag, equals, value = token.partition('=')
        if flag in takes_value:
            if not equals:
                following = next(tokens, None)
                if following is None:
                    marked.append(token)
                    continue
                value = following
            token = f'{flag}={_VALUE_MARK}{value}'
        marked.append(token)
    return marked


def _unmark(given: Any) -> Any:
    if isinstance(given, list):
        return [_unmark(item) for item in given]
    return given.removeprefix(_VALUE_MARK) if isinstance(given, str) else given


def parse_command_line(
    parser: argparse.ArgumentParser,
    options: Sequence[Option],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The app target and the option values given on the command line or in the environment.

    Options given neither way are left out (the server uses its defaults); an empty variable counts as
    unset, as with click. Raises `OptionError`.
    """
    environ = os.environ if environ is None else environ
    namespace = parser.parse_args(_mark_values(options, sys.argv[1:] if argv is None else argv))
    values: dict[str, Any] = {}
    for option in options:
        given = _unmark(getattr(namespace, option.name))
        if given is None and environ.get(option.env):
            text = environ[option.env]
            given = text.split() if option.multiple else text
        if given is not None:
            values[option.name] = _value(option, given)
    return namespace.app, values


def run(interface: str, prog: str, description: str, argv: Sequence[str] | None = None) -> None:
    """Parse the command line, then serve with `interface` until SIGINT/SIGTERM; exits on errors."""
    options = options_for(interface, exclude=('interface',))
    parser = build_parser(prog, description, options)
    try:
        target, values = parse_command_line(parser, options, argv)
        from ..server import Server

        Server(target, interface=interface, **kwargs_from_values(values)).serve()
    except ConfigurationError as exc:
        print(f'Error: {exc}', file=sys.stderr)
        sys.exit(2)
    except FatalError as exc:
        if not exc.logged and str(exc):
            print(f'Error: {exc}', file=sys.stderr)
        sys.exit(1)
