"""Parameter types of the granian command line."""

from __future__ import annotations

import re
from typing import Any

import click

__all__ = ['Duration']

_DURATION_PATTERN = re.compile(r'(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?')
_UNIT_SECONDS = {'d': 86_400, 'h': 3_600, 'm': 60, 's': 1}


class Duration(click.IntRange):
    """A number of seconds, given as an integer (``90``) or with units (``1d2h3m4s``, ``1h30m``), within a range."""

    name = 'duration'

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Turn ``value`` into whole seconds and check the range."""
        if isinstance(value, str):
            text = value.strip().lower()
            if not text.isdigit():
                match = _DURATION_PATTERN.fullmatch(text)
                if not text or match is None:
                    self.fail(f'{value!r} is not a duration; give seconds (90) or units like 1h30m or 2d.', param, ctx)
                value = sum(int(amount) * _UNIT_SECONDS[unit] for unit, amount in match.groupdict().items() if amount)
        return super().convert(value, param, ctx)
