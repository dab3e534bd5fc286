"""Server configuration: one frozen object built and validated from the `Granian(...)` arguments.

Every default lives in the signature of `granian.server.Server` and in `granian.http`; this module
only derives the values that depend on others (backpressure, runtime mode) and checks ranges.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..constants import HTTPModes, Interfaces, Loops, RuntimeModes
from ..errors import ConfigurationError
from ..http import HTTP1Settings, HTTP2Settings


@dataclass(frozen=True)
class BindSpec:
    """Where the server listens."""

    address: str
    port: int
    backlog: int

    @property
    def url(self) -> str:
        """The address as a URL, for humans."""
        host = f'[{self.address}]' if ':' in self.address else self.address
        return f'http://{host}:{self.port}'


@dataclass(frozen=True)
class WorkerSettings:
    """What each worker process needs; pickled to spawned workers, so plain data only."""

    target: str
    interface: str
    factory: bool
    working_dir: str | None
    url_path_prefix: str | None
    loop: str
    http: str
    runtime_mode: str
    runtime_threads: int
    backpressure: int
    blocking_threads: int
    blocking_threads_idle_timeout: float
    workers: int
    http1: HTTP1Settings
    http2: HTTP2Settings
    log_enabled: bool
    log_level: str
    log_dictconfig: dict[str, Any] | None


@dataclass(frozen=True)
class ServerConfig:
    """The complete, validated configuration of one server."""

    bind: BindSpec
    workers: int
    worker: WorkerSettings

    def with_worker(self, **changes: Any) -> ServerConfig:
        """A copy with some worker settings changed."""
        return dataclasses.replace(self, worker=dataclasses.replace(self.worker, **changes))


def _enum_value(enum: Any, value: Any, name: str) -> str:
    try:
        return str(enum(str(value)).value)
    except ValueError:
        choices = ', '.join(repr(str(m.value)) for m in enum)
        raise ConfigurationError(f'{name} must be one of {choices}, not {value!r}', key=name) from None


def _at_least(value: Any, minimum: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(f'{name} must be an integer >= {minimum}, not {value!r}', key=name)
    return value


def build_config(
    *,
    target: str,
    address: str,
    port: int,
    interface: Any,
    workers: int,
    runtime_threads: int,
    runtime_mode: Any,
    loop: Any,
    http: Any,
    backlog: int,
    backpressure: int | None,
    http1_settings: HTTP1Settings | None,
    http2_settings: HTTP2Settings | None,
    log_enabled: bool,
    log_level: Any,
    log_dictconfig: dict[str, Any] | None,
    factory: bool,
    working_dir: str | os.PathLike | None,
    url_path_prefix: str | None = None,
    blocking_threads: int | None = None,
    blocking_threads_idle_timeout: float = 30,
) -> ServerConfig:
    """Validate the arguments and derive dependent defaults."""
    if not isinstance(target, str) or not target:
        raise ConfigurationError('target must be an import string such as "main:app"', key='target')
    interface_name = _enum_value(Interfaces, interface, 'interface')
    http_mode = _enum_value(HTTPModes, http, 'http')
    mode = _enum_value(RuntimeModes, runtime_mode, 'runtime_mode')
    workers = _at_least(workers, 1, 'workers')
    runtime_threads = _at_least(runtime_threads, 1, 'runtime_threads')
    backlog = max(128, _at_least(backlog, 1, 'backlog'))
    if backpressure is None:
        backpressure = max(1, backlog // workers)
    backpressure = _at_least(backpressure, 1, 'backpressure')
    if blocking_threads is None:
        # WSGI apps run on the blocking pool: it may grow to half the backpressure (threads are
        # only started when work stalls). Async interfaces use one thread for file work.
        blocking_threads = max(1, backpressure // 2) if interface_name == Interfaces.WSGI else 1
    blocking_threads = _at_least(blocking_threads, 1, 'blocking_threads')
    if blocking_threads > 1 and interface_name != Interfaces.WSGI:
        raise ConfigurationError(
            f'blocking_threads > 1 only applies to the WSGI interface, not {interface_name!r}', key='blocking_threads'
        )
    if not isinstance(blocking_threads_idle_timeout, (int, float)) or blocking_threads_idle_timeout <= 0:
        raise ConfigurationError(
            f'blocking_threads_idle_timeout must be a positive number of seconds, not {blocking_threads_idle_timeout!r}',
            key='blocking_threads_idle_timeout',
        )
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigurationError(f'port must be between 0 and 65535, not {port!r}', key='port')
    if mode == RuntimeModes.auto:
        # One thread: single-thread runtime, no work stealing. More threads: one shared runtime.
        mode = RuntimeModes.st.value if runtime_threads == 1 else RuntimeModes.mt.value
    loop_name = str(loop.value if isinstance(loop, Loops) else loop)
    if url_path_prefix:
        if not url_path_prefix.startswith('/'):
            raise ConfigurationError(
                f'url_path_prefix must start with "/", not {url_path_prefix!r}', key='url_path_prefix'
            )
        url_path_prefix = url_path_prefix.rstrip('/') or None
    return ServerConfig(
        bind=BindSpec(address=str(address), port=port, backlog=backlog),
        workers=workers,
        worker=WorkerSettings(
            target=target,
            interface=interface_name,
            factory=bool(factory),
            working_dir=str(Path(working_dir).resolve()) if working_dir else None,
            url_path_prefix=url_path_prefix or None,
            loop=loop_name,
            http=http_mode,
            runtime_mode=mode,
            runtime_threads=runtime_threads,
            backpressure=backpressure,
            blocking_threads=blocking_threads,
            blocking_threads_idle_timeout=float(blocking_threads_idle_timeout),
            workers=workers,
            http1=http1_settings or HTTP1Settings(),
            http2=http2_settings or HTTP2Settings(),
            log_enabled=bool(log_enabled),
            log_level=str(log_level.value if hasattr(log_level, 'value') else log_level),
            log_dictconfig=log_dictconfig,
        ),
    )
