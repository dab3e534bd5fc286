"""The option registry: one declarative description of every server option.

`OPTIONS` (in `_registry.py`) names each option's type, default, range or choices, help text,
environment variable, keyword argument, command line flags, group and the version that added it.
Everything else is derived from it: the `granian` command (granian-cli), the click-free runners
(`python -m granian.wsgi`, through `granian.options.runner`), the validation of `Granian(...)` and of
the `granian.http` settings dataclasses, the settings handed to workers, and docs/options.md.

This module is cheap to import (no server machinery), so `granian --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._kinds import Choice, Directory, Duration, File, Flag, Integer, JsonObjectFile, Kind, Permissions, Text, shown
from ._registry import OPTIONS
from ._spec import GROUPS, SECTIONS, Option, OptionError, Section

__all__ = [
    'GROUPS',
    'OPTIONS',
    'OPTIONS_BY_NAME',
    'SECTIONS',
    'Choice',
    'Directory',
    'Duration',
    'File',
    'Flag',
    'Integer',
    'JsonObjectFile',
    'Kind',
    'Option',
    'OptionError',
    'Permissions',
    'Section',
    'Text',
    'check_kwargs',
    'check_section',
    'kwargs_from_values',
    'options_for',
    'section_class',
    'section_options',
]

OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def section_options(section: str) -> tuple[Option, ...]:
    """The options set through the settings dataclass of `section` ('http1', 'http2'), in field order."""
    return tuple(option for option in OPTIONS if option.section == section)


def section_class(section: str) -> type:
    """The `granian.http` dataclass of `section`."""
    from .. import http

    return getattr(http, SECTIONS[section].class_name)


def check_section(settings: Any, section: str) -> None:
    """Validate (and normalise) every field of a `granian.http` settings dataclass instance."""
    for option in section_options(section):
        value = getattr(settings, option.field)
        checked = option.check(value)
        if checked is not value:
            object.__setattr__(settings, option.field, checked)


def check_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Validate `Granian(...)` keyword arguments; returns every option's value by option name.

    Options missing from `kwargs` take their default; the settings dataclasses are flattened into
    their options (`http1_settings.max_buffer_size` becomes `http1_buffer_size`).
    """
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.section is None:
            values[option.name] = option.check(kwargs.get(option.name, option.default))
    for section, spec in SECTIONS.items():
        settings_class = section_class(section)
        settings = kwargs.get(spec.kwarg)
        if settings is None:
            settings = settings_class()
        elif not isinstance(settings, settings_class):
            raise OptionError(
                f'Invalid {spec.kwarg}: {shown(settings)} is not a granian.http.{spec.class_name} or None.',
                key=spec.kwarg,
            )
        for option in section_options(section):
            values[option.name] = option.check(getattr(settings, option.field))
    return values


def kwargs_from_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Turn option values by name (as a command line parsed them) into `Granian(...)` keyword arguments."""
    kwargs: dict[str, Any] = {}
    fields: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for option in OPTIONS:
        if option.name not in values:
            continue
        value = values[option.name]
        if option.multiple:
            # Command lines give a (possibly empty) sequence; none given means unset.
            value = list(value) if value else option.default
        if option.section is None:
            kwargs[option.name] = value
        else:
            fields[option.section][option.field] = value
    for section, spec in SECTIONS.items():
        kwargs[spec.kwarg] = section_class(section)(**fields[section])
    return kwargs


def options_for(interface: str | None = None, exclude: Iterable[str] = ()) -> tuple[Option, ...]:
    """The options that apply to `interface` (all when None), without the names in `exclude`."""
    skipped = set(exclude)
    return tuple(
        option
        for option in OPTIONS
        if option.name not in skipped and (interface is None or option.applies_to(interface))
    )
