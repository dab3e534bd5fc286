"""The requirements of the RSGI specification, read from rsgi.md (the one source of truth).

A requirement is a line of the form

    <a id="scope-path"></a>**[scope-path]** MUST · since 1.0 — ...

Implementation-defined points have an anchor but no level and are not requirements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SPEC_PATH = Path(__file__).resolve().parent.parent / 'rsgi.md'
LEVELS = ('MUST', 'SHOULD', 'MAY')
_REQUIREMENT = re.compile(
    r'<a id="(?P<id>[a-z0-9-]+)"></a>\*\*\[(?P=id)\]\*\* (?P<level>MUST|SHOULD|MAY) · since (?P<since>\d+\.\d+)'
)
_SPEC_VERSION = re.compile(r'^# RSGI: .*, version (?P<version>\d+\.\d+)\s*$', re.MULTILINE)


@dataclass(frozen=True)
class Requirement:
    id: str
    level: str  # MUST, SHOULD or MAY
    since: str  # the spec version that introduced it, e.g. '1.4'

    @property
    def anchor(self) -> str:
        return f'rsgi.md#{self.id}'


def version_key(version: str) -> tuple[int, ...]:
    """'1.10' sorts after '1.9'."""
    return tuple(int(part) for part in version.split('.'))


def spec_version(text: str | None = None) -> str:
    """The version of the specification document."""
    match = _SPEC_VERSION.search(SPEC_PATH.read_text(encoding='utf-8') if text is None else text)
    if match is None:
        raise ValueError(f'{SPEC_PATH}: no "# RSGI: ..., version X.Y" title')
    return match['version']


def load_requirements(text: str | None = None) -> dict[str, Requirement]:
    """Every requirement of the spec, by identifier, in document order."""
    text = SPEC_PATH.read_text(encoding='utf-8') if text is None else text
    found: dict[str, Requirement] = {}
    for match in _REQUIREMENT.finditer(text):
        if match['id'] in found:
            raise ValueError(f'{SPEC_PATH}: requirement {match["id"]} is defined twice')
        found[match['id']] = Requirement(match['id'], match['level'], match['since'])
    return found
