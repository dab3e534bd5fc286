"""Tuning settings for the HTTP/1 and HTTP/2 protocol handlers.

Each field carries its help text and accepted range in ``dataclasses.field(metadata=...)``; the command line
reads defaults, ranges and help from here so that they are written down only once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import ConfigurationError

__all__ = ['HTTP1Settings', 'HTTP2Settings']

# RFC 9113 section 6.5.2 upper bounds.
_MAX_WINDOW_SIZE = 2**31 - 1
_MAX_FRAME_SIZE = 2**24 - 1


def _flag(default: bool, help_text: str) -> Any:
    return dataclasses.field(default=default, metadata={'help': help_text})


def _number(default: int | None, help_text: str, *, minimum: int, maximum: int | None = None, unit: str = '') -> Any:
    meta = {'help': help_text, 'min': minimum, 'max': maximum, 'unit': unit}
    return dataclasses.field(default=default, metadata=meta)


def _describe_range(meta: dict[str, Any]) -> str:
    unit = f' {meta["unit"]}' if meta['unit'] else ''
    if meta['max'] is None:
        return f'an integer of at least {meta["min"]}{unit}'
    return f'an integer from {meta["min"]} to {meta["max"]}{unit}'


def _validate(settings: object) -> None:
    """Raise ConfigurationError for the first field of ``settings`` whose value is out of range."""
    owner = type(settings).__name__
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        meta = field.metadata
        name = f'{owner}.{field.name}'
        if 'min' not in meta:
            if not isinstance(value, bool):
                raise ConfigurationError(f'{name} must be True or False, got {value!r}.', key=field.name)
            continue
        if value is None and field.default is None:
            continue
        in_range = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= meta['min']
            and (meta['max'] is None or value <= meta['max'])
        )
        if not in_range:
            optional = ' or None' if field.default is None else ''
            raise ConfigurationError(
                f'{name} must be {_describe_range(meta)}{optional}, got {value!r}.', key=field.name
            )


@dataclasses.dataclass(frozen=True)
class HTTP1Settings:
    """Settings of the HTTP/1.1 protocol handler."""

    header_read_timeout: int = _number(
        30_000, 'Time allowed to receive the request headers, in milliseconds.', minimum=1, maximum=60_000, unit='ms'
    )
    keep_alive: bool = _flag(True, 'Keep HTTP/1.1 connections open between requests.')
    max_buffer_size: int = _number(
        8192 + 4096 * 100, 'Maximum size of the per-connection read buffer, in bytes.', minimum=8192, unit='bytes'
    )
    pipeline_flush: bool = _flag(False, 'Batch the flushing of pipelined HTTP/1.1 responses (experimental).')

    def __post_init__(self) -> None:
        _validate(self)


@dataclasses.dataclass(frozen=True)
class HTTP2Settings:
    """Settings of the HTTP/2 protocol handler."""

    adaptive_window: bool = _flag(False, 'Size flow-control windows from a bandwidth-delay estimate.')
    initial_connection_window_size: int = _number(
        1024 * 1024,
        'Initial flow-control window of each connection, in bytes.',
        minimum=1024,
        maximum=_MAX_WINDOW_SIZE,
        unit='bytes',
    )
    initial_stream_window_size: int = _number(
        1024 * 1024,
        'Initial flow-control window of each stream, in bytes.',
        minimum=1024,
        maximum=_MAX_WINDOW_SIZE,
        unit='bytes',
    )
    keep_alive_interval: int | None = _number(
        None,
        'Interval between keep-alive pings, in milliseconds; unset disables pings.',
        minimum=1,
        maximum=60_000,
        unit='ms',
    )
    keep_alive_timeout: int = _number(20, 'Time to wait for a keep-alive ping reply, in seconds.', minimum=1, unit='s')
    max_concurrent_streams: int = _number(200, 'Maximum number of concurrent streams per connection.', minimum=10)
    max_frame_size: int = _number(
        16_384,
        'Largest frame payload the server accepts, in bytes.',
        minimum=1024,
        maximum=_MAX_FRAME_SIZE,
        unit='bytes',
    )
    max_headers_size: int = _number(
        16 * 1024 * 1024, 'Maximum size of the received header list, in bytes.', minimum=1, unit='bytes'
    )
    max_send_buffer_size: int = _number(
        1024 * 400, 'Maximum data buffered for sending on each stream, in bytes.', minimum=1024, unit='bytes'
    )

    def __post_init__(self) -> None:
        _validate(self)
