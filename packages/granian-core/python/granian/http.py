"""Tuning settings for the HTTP/1 and HTTP/2 protocol handlers, as Granian 2.8 names them.

The fields are generated from the option registry (`granian.options`) by `tools/options.py`: the
registry holds their defaults, ranges and help, and validates every instance.
"""

from __future__ import annotations

import dataclasses

from .options import check_section

__all__ = ['HTTP1Settings', 'HTTP2Settings']


@dataclasses.dataclass(frozen=True)
class HTTP1Settings:
    """Settings of the HTTP/1.1 protocol handler."""

    # BEGIN GENERATED: http1 fields (tools/options.py)
    header_read_timeout: int = 30000
    """Time allowed to receive the request headers, in milliseconds."""
    keep_alive: bool = True
    """Keep HTTP/1.1 connections open between requests."""
    max_buffer_size: int = 417792
    """Maximum size of the per-connection read buffer, in bytes."""
    pipeline_flush: bool = False
    """Batch the flushing of pipelined HTTP/1.1 responses (experimental: hyper then buffers response bodies without a limit, so a large file is held in memory whole and is never sent with sendfile)."""
    # END GENERATED

    def __post_init__(self) -> None:
        check_section(self, 'http1')


@dataclasses.dataclass(frozen=True)
class HTTP2Settings:
    """Settings of the HTTP/2 protocol handler."""

    # BEGIN GENERATED: http2 fields (tools/options.py)
    adaptive_window: bool = False
    """Size flow-control windows from a bandwidth-delay estimate, starting at 64 KiB (replaces the initial window sizes)."""
    initial_connection_window_size: int = 1048576
    """Initial flow-control window of each connection, in bytes."""
    initial_stream_window_size: int = 1048576
    """Initial flow-control window of each stream, in bytes."""
    keep_alive_interval: int | None = None
    """Interval between keep-alive pings, in milliseconds."""
    keep_alive_timeout: float = 20
    """Time to wait for a keep-alive ping reply, in seconds."""
    max_concurrent_streams: int = 200
    """Maximum number of concurrent streams per connection."""
    max_frame_size: int = 16384
    """Largest frame payload the server accepts, in bytes."""
    max_headers_size: int = 16777216
    """Maximum size of the received header list, in bytes."""
    max_send_buffer_size: int = 409600
    """Maximum data buffered for sending on each stream, in bytes."""
    # END GENERATED

    def __post_init__(self) -> None:
        check_section(self, 'http2')
