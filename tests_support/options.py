"""Values to feed each registry option in tests: valid ones, and extreme or malformed ones, as text and as Python.

None of the invalid values is filtered through the registry: each must be refused, so a kind that starts
accepting one of them fails the tests.

Everything is derived from the option's kind and range, so a new option is covered without editing tests.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from granian.options import (
    Choice,
    Directory,
    Duration,
    File,
    Flag,
    Integer,
    JsonObjectFile,
    Option,
    OptionError,
    Permissions,
    Text,
)

_SCRATCH = Path(tempfile.mkdtemp(prefix='granian-options-'))
_VALID_JSON = _SCRATCH / 'valid.json'
_VALID_JSON.write_text('{"version": 1}', encoding='utf-8')
_BAD_JSON = {
    'truncated.json': b'{"version": 1,',
    'list.json': b'[1, 2]',
    'latin1.json': b'{"a": "\xff"}',
}
for _name, _content in _BAD_JSON.items():
    (_SCRATCH / _name).write_bytes(_content)
_A_FILE = _SCRATCH / 'not-a-directory.txt'
_A_FILE.write_text('x', encoding='utf-8')
_MISSING = str(_SCRATCH / 'missing' / 'nothing')

# Text that no option accepts, whatever its kind.
_GARBAGE_TEXT = ['', '   ', 'x' * 5000, 'nan', 'inf', '-inf', '1e309', '0x10', '--', '\u00e9\u00e8']


def parses(option: Option, text: str) -> bool:
    """Whether the registry accepts a text value for `option`."""
    try:
        option.parse(text)
    except OptionError:
        return False
    return True


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def valid_texts(option: Option) -> list[str]:
    """Text values the option accepts (range ends, choices, words for flags)."""
    kind = option.kind
    if isinstance(kind, (Integer, Duration)):
        texts = [_number_text(kind.minimum), _number_text(kind.maximum)]
        if isinstance(kind, Duration) and kind.minimum <= 90 <= kind.maximum:
            texts.append('1m30s')
        return texts
    if isinstance(kind, Flag):
        return ['true', 'false', '1', '0', 'YES', 'off']
    if isinstance(kind, Choice):
        return [value for value in kind.values if parses(option, value)]
    if isinstance(kind, Directory):
        return [str(_SCRATCH)]
    if isinstance(kind, File):
        # Any path: the file is read (and its absence reported) when the server starts.
        return [str(_A_FILE), _MISSING]
    if isinstance(kind, JsonObjectFile):
        return [str(_VALID_JSON)]
    if isinstance(kind, Permissions):
        return ['660', '0o600', '0777', '0']
    if isinstance(kind, Text):
        return [option.example if option.example is not None else 'text']
    raise AssertionError(f'no valid texts for {option.kind!r}')


def sample_text(option: Option) -> str:
    """One valid text value that differs from the default."""
    for text in valid_texts(option):
        if option.parse(text) != option.default:
            return text
    raise AssertionError(f'{option.name}: no valid value other than the default')


def invalid_texts(option: Option) -> list[str]:
    """Text values the option must refuse: just out of range, huge, malformed."""
    kind = option.kind
    texts = list(_GARBAGE_TEXT)
    if isinstance(kind, Integer):
        texts += [str(kind.minimum - 1), str(kind.maximum + 1), str(2**64), str(-(2**63)), '1.5', '12abc']
    elif isinstance(kind, Duration):
        texts += [_number_text(kind.maximum + 1), '-1', '1x', '1.5.5', '99999999999999999999d', str(2**64)]
        if kind.minimum > 0:
            texts.append('0')
    elif isinstance(kind, Flag):
        texts += ['maybe', '2', 'truee', '-1']
    elif isinstance(kind, Choice):
        texts += ['nope', '3']
        if kind.case_sensitive:
            texts += [value.upper() for value in kind.values if value.upper() != value]
    elif isinstance(kind, Directory):
        texts = [_MISSING, str(_A_FILE)]
    elif isinstance(kind, File):
        texts = ['']  # any other text is a path; NUL bytes cannot reach a command line or a variable
    elif isinstance(kind, JsonObjectFile):
        texts = [_MISSING, *(str(_SCRATCH / name) for name in _BAD_JSON), str(_SCRATCH)]
    elif isinstance(kind, Permissions):
        texts += ['8', '1000', '-1', '0o', '77a', '0x1ff', '07777']
    elif isinstance(kind, Text):
        texts = ['']
        if option.example is not None and str(option.example).startswith('/'):
            texts.append('no-leading-slash')
    return texts


def invalid_values(option: Option) -> list[Any]:
    """Python values `Granian(...)` must refuse for the option."""
    kind = option.kind
    values: list[Any] = [[], object(), b'1', math.nan, math.inf, -math.inf, 2**64, -(2**63), '']
    if not isinstance(kind, Flag):
        values.append(True)
    if not isinstance(kind, JsonObjectFile):
        values.append({})
    if not option.optional:
        values.append(None)
    if isinstance(kind, Integer):
        values += [kind.minimum - 1, kind.maximum + 1, 1.5, str(kind.minimum)]
    elif isinstance(kind, Duration):
        values += [kind.maximum + 1, -1, '30', 1e309]
    elif isinstance(kind, Flag):
        values += [1, 0, 'true']
    elif isinstance(kind, Choice):
        values += ['nope', 1]
    elif isinstance(kind, Directory):
        values += [_MISSING, _A_FILE, 1]
    elif isinstance(kind, File):
        values += [1, 'a\x00b', _SCRATCH.as_posix().encode()]
    elif isinstance(kind, JsonObjectFile):
        values += ['{}', str(_VALID_JSON), 1, [('version', 1)]]
    elif isinstance(kind, Text):
        values += [1, '\x00']
    if option.multiple:
        # A list option refuses what is not a list, and lists holding a bad item.
        singles = [value for value in values if not isinstance(value, (list, tuple))]
        return [*singles, *([value] for value in singles if value is not None)]
    return values
