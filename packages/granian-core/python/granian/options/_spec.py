"""`Option`: the declarative description of one server option, and the error it raises."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ._kinds import Kind, shown

__all__ = ['GROUPS', 'SECTIONS', 'Option', 'OptionError', 'Section']

#: Option groups, in the order `--help` and the option reference show them.
GROUPS: dict[str, str] = {
    'bind': 'Binding',
    'protocols': 'Protocols',
    'workers': 'Workers and concurrency',
    'lifecycle': 'Worker lifecycle',
    'http1': 'HTTP/1',
    'http2': 'HTTP/2',
    'http3': 'HTTP/3 (experimental)',
    'websockets': 'WebSockets',
    'logging': 'Logging',
    'tls': 'TLS',
    'app': 'Application',
    'static': 'Static files',
    'metrics': 'Metrics',
    'process': 'Process',
    'reload': 'Reload (development)',
}


@dataclass(frozen=True)
class Section:
    """A settings dataclass of `granian.http` that `Granian(...)` takes as one keyword argument."""

    #: The keyword argument of `Granian(...)`, e.g. ``http1_settings``.
    kwarg: str
    #: The dataclass name in `granian.http`, e.g. ``HTTP1Settings``.
    class_name: str


SECTIONS: dict[str, Section] = {
    'http1': Section('http1_settings', 'HTTP1Settings'),
    'http2': Section('http2_settings', 'HTTP2Settings'),
}


class OptionError(ConfigurationError):
    """An option has a value the server cannot use; the message is one line naming every way to set it."""


@dataclass(frozen=True)
class Option:
    """One server option. Everything else (CLIs, `Granian(...)`, worker settings, docs) is derived from these.

    `name` is the option's attribute on the settings handed to workers and, for top-level options, the
    keyword argument of `Granian(...)`. Options with a `section` are fields of a `granian.http` settings
    dataclass instead (`field`), as in Granian 2.8.
    """

    name: str
    kind: Kind
    default: Any
    help: str
    group: str
    #: The version of granian that added the option.
    since: str = '0.1.0'
    #: Command line flags; derived from `name` when empty (`--name-with-dashes`, `--x/--no-x` for flags).
    flags: tuple[str, ...] = ()
    #: Environment variable; derived from `name` when None (`GRANIAN_NAME`).
    env: str | None = None
    #: `granian.http` section and field name, for options set through a settings dataclass.
    section: str | None = None
    field: str | None = None
    #: Shown instead of the default where it is computed from other options.
    default_text: str | None = None
    #: Repeatable on the command line; the value is then a list.
    multiple: bool = False
    #: The interfaces the option applies to; None for all.
    interfaces: frozenset[str] | None = None
    #: A value used in examples and tests, when the kind cannot invent a good one.
    example: Any = None
    #: A further check after the kind's: returns the (possibly normalised) value or raises ValueError/OptionError.
    constraint: Callable[[Any], Any] | None = dataclasses.field(default=None, compare=False)
    #: An extra sentence for the option reference (adjustments the server makes, caveats).
    note: str = ''

    def __post_init__(self) -> None:
        if not self.flags:
            dashed = '--' + self.name.replace('_', '-')
            object.__setattr__(self, 'flags', (f'{dashed}/--no-{dashed[2:]}',) if self.kind.is_flag else (dashed,))
        if self.env is None:
            object.__setattr__(self, 'env', 'GRANIAN_' + self.name.upper())
        if self.group not in GROUPS:
            raise ValueError(f'option {self.name!r} has unknown group {self.group!r}')
        if (self.section is None) != (self.field is None):
            raise ValueError(f'option {self.name!r} needs both section and field, or neither')

    @property
    def kwarg(self) -> str | None:
        """The keyword argument of `Granian(...)`, or None for a settings-dataclass field."""
        return None if self.section else self.name

    @property
    def optional(self) -> bool:
        """Whether None is a valid value (it means "unset" or "computed from other options")."""
        return self.default is None

    @property
    def switches(self) -> tuple[str, ...]:
        """Every command line spelling: `--x/--no-x` gives `--x` and `--no-x`."""
        return tuple(part for flag in self.flags for part in flag.split('/'))

    @property
    def annotation(self) -> str:
        """The type annotation of the keyword argument or dataclass field."""
        if self.multiple:
            base = f'list[{self.kind.annotation(False)}]'
            return f'{base} | None' if self.optional else base
        return self.kind.annotation(self.optional)

    @property
    def python_form(self) -> str:
        """How Python code sets it: `Granian(port=...)` or `HTTP1Settings(max_buffer_size=...)`."""
        if self.section is not None:
            return f'{SECTIONS[self.section].class_name}({self.field}=...)'
        return f'Granian({self.name}=...)'

    def error(self, reason: str) -> OptionError:
        """The one-line error for this option, naming the flag, the variable and the keyword."""
        where = f'{self.flags[0]}, {self.env} or {self.python_form}'
        return OptionError(f'Invalid {self.name}: {reason}; set it with {where}.', key=self.name)

    def check(self, value: Any) -> Any:
        """Validate a Python value from `Granian(...)` or a settings dataclass; returns it normalised."""
        if value is None and self.optional:
            return None
        if self.multiple:
            if not isinstance(value, (list, tuple)):
                raise self.error(f'{shown(value)} is not a list')
            return [self._accept(self.kind.check, item) for item in value]
        return self._accept(self.kind.check, value)

    def parse(self, text: str) -> Any:
        """Read a value given as text on a command line or in the environment; returns it normalised."""
        return self._accept(self.kind.parse, text)

    def _accept(self, convert: Callable[[Any], Any], value: Any) -> Any:
        try:
            value = convert(value)
            return self.constraint(value) if self.constraint is not None else value
        except OptionError:
            raise
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def applies_to(self, interface: str) -> bool:
        """Whether the option matters for `interface`."""
        return self.interfaces is None or interface in self.interfaces

    def default_display(self) -> str:
        """The default as `--help` and the reference show it."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None:
            return 'unset'
        if isinstance(self.default, bool):
            return 'enabled' if self.default else 'disabled'
        return str(self.default)
