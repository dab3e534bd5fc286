"""String enumerations for granian's choice-valued settings; members compare equal to plain strings."""

from __future__ import annotations

import enum

__all__ = ['HTTPModes', 'Interfaces', 'LogLevels', 'Loops', 'RuntimeModes', 'SSLProtocols', 'StrEnum', 'TaskImpl']

try:
    from enum import StrEnum
except ImportError:  # Python 3.10 has no enum.StrEnum

    class StrEnum(str, enum.Enum):
        """An enum whose members are strings and format as their value."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, format_spec: str) -> str:
            return str(self.value).__format__(format_spec)


class Interfaces(StrEnum):
    """Application protocols the server can speak to the Python app."""

    ASGI = 'asgi'
    ASGINL = 'asginl'
    RSGI = 'rsgi'
    WSGI = 'wsgi'


class HTTPModes(StrEnum):
    """HTTP versions the server accepts."""

    auto = 'auto'
    http1 = '1'
    http2 = '2'


class Loops(StrEnum):
    """Event loop implementations known to granian."""

    auto = 'auto'
    asyncio = 'asyncio'
    rloop = 'rloop'
    uvloop = 'uvloop'
    winloop = 'winloop'


class RuntimeModes(StrEnum):
    """Threading model of the Rust runtime in each worker."""

    auto = 'auto'
    mt = 'mt'
    st = 'st'


class TaskImpl(StrEnum):
    """How Python coroutines of async apps are driven."""

    asyncio = 'asyncio'
    rust = 'rust'


class LogLevels(StrEnum):
    """Names accepted for the granian log level."""

    critical = 'critical'
    error = 'error'
    warning = 'warning'
    warn = 'warn'
    info = 'info'
    debug = 'debug'
    notset = 'notset'


class SSLProtocols(StrEnum):
    """The lowest TLS version the server accepts."""

    tls12 = 'tls1.2'
    tls13 = 'tls1.3'
