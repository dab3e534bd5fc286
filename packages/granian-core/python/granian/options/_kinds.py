"""Value kinds of server options: how a value is read from text, checked, and described.

Every kind has two entry points. `parse(text)` reads what a command line or an environment variable
gave; `check(value)` accepts a Python value from `Granian(...)`. Both return the normalised value or
raise `ValueError` whose message completes the sentence "Invalid <option>: ...". Both front ends and
the API call the same code, so a value is accepted or refused the same way everywhere.
"""

from __future__ import annotations

import math
import os
import re
from enum import Enum
from typing import Any

__all__ = [
    'Choice',
    'Directory',
    'Duration',
    'Flag',
    'Integer',
    'JsonObjectFile',
    'Kind',
    'Permissions',
    'Text',
]

_TRUE_WORDS = frozenset({'1', 'true', 't', 'yes', 'y', 'on'})
_FALSE_WORDS = frozenset({'0', 'false', 'f', 'no', 'n', 'off'})
_DURATION_UNITS = {'d': 86_400, 'h': 3_600, 'm': 60, 's': 1}
_DURATION_PATTERN = re.compile(r'(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?')
# Longest text echoed back in an error message; the rest is cut so a message stays one short line.
_ECHO_LIMIT = 60


def shown(value: Any) -> str:
    """`repr(value)` on one line and cut to a readable length, for error messages."""
    text = repr(value)
    if len(text) > _ECHO_LIMIT:
        text = text[: _ECHO_LIMIT - 3] + '...'
    return text


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class Kind:
    """What values an option takes. Subclasses override `parse`, `check` and the descriptions."""

    #: The placeholder shown in `--help` after the flag.
    metavar = 'TEXT'
    #: True for on/off options, which the command lines spell `--x/--no-x`.
    is_flag = False

    def parse(self, text: str) -> Any:
        """Read a value given as text (command line, environment variable)."""
        return self.check(text)

    def check(self, value: Any) -> Any:
        """Accept a Python value or raise ValueError."""
        raise NotImplementedError

    def expectation(self) -> str:
        """What a valid value is, completing "... is not <expectation>"."""
        raise NotImplementedError

    def annotation(self, optional: bool) -> str:
        """The type annotation of the keyword argument in `Granian(...)`."""
        base = self._annotation()
        return f'{base} | None' if optional else base

    def _annotation(self) -> str:
        return 'str'

    def describe(self) -> str:
        """A short description for the option reference ("integer, 0 to 65535")."""
        return self.expectation()

    def refuse(self, value: Any) -> ValueError:
        """The error for a value that is not of this kind."""
        return ValueError(f'{shown(value)} is not {self.expectation()}')


class Integer(Kind):
    """A whole number within a range (both ends included); `unit` is only for humans."""

    metavar = 'INTEGER'

    def __init__(self, minimum: int, maximum: int, unit: str = '') -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.unit = unit

    def parse(self, text: str) -> Any:
        """Read a decimal integer."""
        stripped = text.strip()
        if not re.fullmatch(r'[+-]?\d{1,30}', stripped):
            raise self.refuse(text)
        return self.check(int(stripped))

    def check(self, value: Any) -> int:
        """Accept an int (not a bool) within the range."""
        if not _is_integer(value) or not self.minimum <= value <= self.maximum:
            raise self.refuse(value)
        return int(value)

    def expectation(self) -> str:
        """Text like: an integer from MIN to MAX [unit]."""
        unit = f' {self.unit}' if self.unit else ''
        return f'an integer from {self.minimum} to {self.maximum}{unit}'

    def _annotation(self) -> str:
        return 'int'

    def describe(self) -> str:
        """Text like: integer, MIN to MAX unit."""
        unit = f' {self.unit}' if self.unit else ''
        return f'integer, {self.minimum} to {self.maximum}{unit}'


class Permissions(Kind):
    """File permission bits, written in octal on the command line (`660`, `0o660`) and as an int in
    Python (`0o660`), as chmod takes them."""

    metavar = 'OCTAL'

    def parse(self, text: str) -> Any:
        """Read octal digits, with or without a leading `0o` or `0`."""
        stripped = text.strip().lower().removeprefix('0o')
        if not re.fullmatch(r'[0-7]{1,4}', stripped):
            raise self.refuse(text)
        return self.check(int(stripped, 8))

    def check(self, value: Any) -> int:
        """Accept an int from 0 to 0o777."""
        if not _is_integer(value) or not 0 <= value <= 0o777:
            raise self.refuse(value)
        return int(value)

    def expectation(self) -> str:
        """Text like: octal permissions from 000 to 777."""
        return 'octal permissions from 000 to 777'

    def _annotation(self) -> str:
        return 'int'

    def describe(self) -> str:
        """Text like: octal permissions."""
        return 'octal permissions (660, or 0o660 in Python)'


class Duration(Kind):
    """A number of seconds: `90`, `2.5`, or with units as in `1h30m` (d, h, m, s); finite, within a range."""

    metavar = 'DURATION'

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def parse(self, text: str) -> Any:
        """Read seconds, a decimal number of seconds, or a `1d2h3m4s` duration."""
        stripped = text.strip().lower()
        if re.fullmatch(r'\d{1,30}', stripped):
            return self.check(int(stripped))
        if re.fullmatch(r'\d{1,20}\.\d{1,20}', stripped):
            return self.check(float(stripped))
        match = _DURATION_PATTERN.fullmatch(stripped)
        if not stripped or match is None:
            raise self.refuse(text)
        seconds = sum(int(amount) * _DURATION_UNITS[unit] for unit, amount in match.groupdict().items() if amount)
        return self.check(seconds)

    def check(self, value: Any) -> float:
        """Accept an int or float number of seconds: finite, within the range."""
        if not (_is_integer(value) or isinstance(value, float)):
            raise self.refuse(value)
        if not math.isfinite(value) or not self.minimum <= value <= self.maximum:
            raise self.refuse(value)
        return value

    def expectation(self) -> str:
        """Text like: a duration from MIN to MAX seconds."""
        low, high = _number_text(self.minimum), _number_text(self.maximum)
        return f'a duration from {low} to {high} seconds (such as 90, 2.5 or 1h30m)'

    def _annotation(self) -> str:
        return 'float'

    def describe(self) -> str:
        """Text like: duration, MIN to MAX s."""
        return f'duration, {_number_text(self.minimum)} to {_number_text(self.maximum)} s'


class Flag(Kind):
    """On or off. Text accepts 1/0, true/false, yes/no, on/off (any case)."""

    metavar = 'BOOLEAN'
    is_flag = True

    def parse(self, text: str) -> Any:
        """Read one of the words for true or false."""
        word = text.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise self.refuse(text)

    def check(self, value: Any) -> bool:
        """Accept True or False only."""
        if not isinstance(value, bool):
            raise self.refuse(value)
        return value

    def expectation(self) -> str:
        """Text like: true or false."""
        return 'true or false (or 1/0, yes/no, on/off)'

    def _annotation(self) -> str:
        return 'bool'

    def describe(self) -> str:
        """Text like: flag."""
        return 'flag'


class Choice(Kind):
    """One of a fixed set of words, usually the values of a `StrEnum` from `granian.constants`."""

    metavar = 'CHOICE'

    def __init__(self, enum: type[Enum], *, case_sensitive: bool = True) -> None:
        self.enum = enum
        self.values = tuple(str(member.value) for member in enum)
        self.case_sensitive = case_sensitive
        self.metavar = f'[{"|".join(self.values)}]'

    def check(self, value: Any) -> str:
        """Accept a member of the enum or its string value; returns the plain string."""
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, str):
            candidate = value if self.case_sensitive else value.lower()
            if candidate in self.values:
                return candidate
        raise self.refuse(value)

    def expectation(self) -> str:
        """Text like: one of 'a', 'b'."""
        return 'one of ' + ', '.join(repr(value) for value in self.values)

    def _annotation(self) -> str:
        return f'{self.enum.__name__} | str'

    def describe(self) -> str:
        """Text like: a | b | c."""
        return ' | '.join(self.values)


class Text(Kind):
    """A non-empty string."""

    metavar = 'TEXT'

    def check(self, value: Any) -> str:
        """Accept a non-empty str without NUL characters."""
        if not isinstance(value, str) or not value or '\x00' in value:
            raise self.refuse(value)
        return value

    def expectation(self) -> str:
        """Text like: a non-empty string."""
        return 'a non-empty string'

    def describe(self) -> str:
        """Text like: text."""
        return 'text'


def _path_text(kind: Kind, value: Any) -> str:
    """The path a str or path-like names; refuses anything else (and NUL bytes)."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value) or '\x00' in os.fspath(value):
        raise kind.refuse(value)
    return os.fspath(value)


class Directory(Kind):
    """An existing directory; kept as an absolute path string."""

    metavar = 'DIRECTORY'

    def check(self, value: Any) -> str:
        """Accept a str or path-like naming an existing directory."""
        path = _path_text(self, value)
        if not os.path.isdir(path):
            raise ValueError(f'{shown(path)} is not an existing directory')
        return os.path.realpath(path)

    def expectation(self) -> str:
        """Text like: an existing directory."""
        return 'an existing directory'

    def _annotation(self) -> str:
        return 'str | os.PathLike[str]'

    def describe(self) -> str:
        """Text like: directory."""
        return 'directory'


class File(Kind):
    """A file path, kept absolute. The code that reads the file when the server starts checks that it
    exists and can be used (TLS files: `granian.errors.TLSError`, naming the file and the problem)."""

    metavar = 'FILE'

    def check(self, value: Any) -> str:
        """Accept a str or path-like."""
        return os.path.abspath(_path_text(self, value))

    def expectation(self) -> str:
        """Text like: a file path."""
        return 'a file path'

    def _annotation(self) -> str:
        return 'str | os.PathLike[str]'

    def describe(self) -> str:
        """Text like: file."""
        return 'file'


class JsonObjectFile(Kind):
    """On the command line, a JSON file holding an object; in Python, that object (a dict)."""

    metavar = 'FILE'

    def parse(self, text: str) -> Any:
        """Read the file and return the JSON object it holds."""
        import json  # only when a file is given: keeps `--help` fast

        try:
            with open(text, encoding='utf-8') as file:
                document = json.load(file)
        except OSError as exc:
            raise ValueError(f'cannot read {shown(text)} ({exc.strerror or exc})') from None
        except UnicodeDecodeError:
            raise ValueError(f'{shown(text)} is not UTF-8 text') from None
        except json.JSONDecodeError as exc:
            raise ValueError(f'{shown(text)} is not valid JSON ({exc.msg} at line {exc.lineno})') from None
        if not isinstance(document, dict):
            raise ValueError(f'{shown(text)} must hold a JSON object, not {type(document).__name__}')  # noqa: TRY004
        return document

    def check(self, value: Any) -> dict[str, Any]:
        """Accept a dict."""
        if not isinstance(value, dict):
            raise ValueError(f'{shown(value)} is not a dict')  # noqa: TRY004 - reported as the option's error
        return value

    def expectation(self) -> str:
        """Text like: a JSON object."""
        return 'a JSON object'

    def _annotation(self) -> str:
        return 'dict[str, Any]'

    def describe(self) -> str:
        """Text like: JSON file."""
        return 'JSON file (Python: dict)'
