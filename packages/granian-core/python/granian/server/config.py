"""Server configuration: the validated option values plus what is derived from several of them.

Values, defaults and ranges come from the option registry (`granian.options`); this module only
derives the values that depend on other options (backpressure, blocking threads, runtime mode) and
checks the combinations the registry cannot see one option at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..constants import Interfaces, RuntimeModes
from ..errors import ConfigurationError, TLSError
from ..log import DEFAULT_ACCESSLOG_FMT
from ..options import OPTIONS_BY_NAME
from .listen import BindSpec


class WorkerSettings:
    """What each worker needs: `target` and the value of every option by its registry name, as attributes.

    Read-only and picklable (it is sent to spawned workers). The Rust workers read the attributes they
    use by name, as Python code does (`settings.backpressure`, `settings.http2_max_frame_size`).
    """

    __slots__ = ('_values',)

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, '_values', dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f'WorkerSettings has no {name!r}') from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError('WorkerSettings is read-only; use replace()')

    def __reduce__(self) -> tuple[Any, ...]:
        return (WorkerSettings, (self._values,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkerSettings) and other._values == self._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f'WorkerSettings({self._values!r})'

    def as_dict(self) -> dict[str, Any]:
        """A copy of every value by name."""
        return dict(self._values)

    def replace(self, **changes: Any) -> WorkerSettings:
        """A copy with some values changed."""
        return WorkerSettings({**self._values, **changes})


@dataclass(frozen=True)
class ServerConfig:
    """The complete, validated configuration of one server."""

    bind: BindSpec
    workers: int
    worker: WorkerSettings

    def with_worker(self, **changes: Any) -> ServerConfig:
        """A copy with some worker settings changed."""
        return ServerConfig(self.bind, self.workers, self.worker.replace(**changes))


def check_tls(settings: WorkerSettings) -> None:
    """Read and check the TLS files as every worker will, so a bad one stops the server before it serves."""
    if settings.ssl_cert is None and settings.ssl_key is None:
        return
    from .. import _core

    try:
        _core.check_tls(settings)
    except ValueError as exc:
        raise TLSError(str(exc)) from None


def static_mounts(routes: list[str] | None, directories: list[str] | None) -> list[tuple[str, str]]:
    """Pair `static_path_route` with `static_path_mount`: one route per directory, in order; a single
    directory without a route is served under `/static`."""
    directories = list(directories or [])
    if not directories:
        if routes:
            raise ConfigurationError(
                'Invalid static_path_route: it needs a static_path_mount to serve.', key='static_path_route'
            )
        return []
    if routes is None:
        if len(directories) > 1:
            raise ConfigurationError(
                f'Invalid static_path_route: give one for each of the {len(directories)} static_path_mount '
                'directories.',
                key='static_path_route',
            )
        routes = ['/static']
    if len(routes) != len(directories):
        raise ConfigurationError(
            f'Invalid static_path_route: {len(routes)} route(s) for {len(directories)} static_path_mount '
            'directories; give one route for each.',
            key='static_path_route',
        )
    if len(set(routes)) != len(routes):
        raise ConfigurationError('Invalid static_path_route: each route may be given once.', key='static_path_route')
    return list(zip(routes, directories, strict=True))


def build_config(target: str, values: Mapping[str, Any]) -> ServerConfig:
    """Derive the dependent values from validated option `values` (see `granian.options.check_kwargs`)."""
    if not isinstance(target, str) or not target:
        raise ConfigurationError('target must be an import string such as "main:app"', key='target')
    resolved = dict(values)
    wsgi = resolved['interface'] == Interfaces.WSGI
    if resolved['backpressure'] is None:
        resolved['backpressure'] = max(1, resolved['backlog'] // resolved['workers'])
    if resolved['blocking_threads'] is None:
        # WSGI apps run on the blocking pool: it may grow to half the backpressure (threads are only
        # started when work stalls). Async interfaces use one thread for file work.
        most = OPTIONS_BY_NAME['blocking_threads'].kind.maximum  # type: ignore[attr-defined]
        resolved['blocking_threads'] = min(most, max(1, resolved['backpressure'] // 2)) if wsgi else 1
    elif resolved['blocking_threads'] > 1 and not wsgi:
        raise ConfigurationError(
            f'Invalid blocking_threads: more than 1 applies only to the wsgi interface, not {resolved["interface"]!r}.',
            key='blocking_threads',
        )
    if resolved['runtime_mode'] == RuntimeModes.auto:
        # One thread: single-thread runtime, no work stealing. More threads: one shared runtime.
        resolved['runtime_mode'] = RuntimeModes.st.value if resolved['runtime_threads'] == 1 else RuntimeModes.mt.value
    if resolved['fd'] is not None and resolved['uds'] is not None:
        raise ConfigurationError('Invalid fd: give either fd or uds, not both.', key='fd')
    if resolved['reuse_port'] and (resolved['fd'] is not None or resolved['uds'] is not None):
        raise ConfigurationError('Invalid reuse_port: it applies to a TCP address, not to uds or fd.', key='reuse_port')
    if resolved['http3']:
        if resolved['ssl_cert'] is None or resolved['ssl_key'] is None:
            raise ConfigurationError(
                'Invalid http3: HTTP/3 runs over TLS; give ssl_cert and ssl_key (--ssl-certificate, --ssl-keyfile) too.',
                key='http3',
            )
        if resolved['uds'] is not None:
            raise ConfigurationError('Invalid http3: it needs a TCP address, not uds.', key='http3')
    resolved['static_mounts'] = static_mounts(resolved['static_path_route'], resolved['static_path_mount'])
    if resolved['log_access_format'] is None:
        resolved['log_access_format'] = DEFAULT_ACCESSLOG_FMT
    # Set by the supervisor when metrics are on: the shared region, and each worker's slot of it.
    resolved['metrics_region'] = None
    resolved['metrics_slot'] = None
    # Set in each worker with --http3: its slot's UDP socket, bound by the supervisor, and the lock
    # file it holds while serving the socket (none for the embedded server's single worker).
    resolved['http3_udp_fd'] = None
    resolved['http3_slot_lock'] = None
    if wsgi:
        resolved['websockets'] = False  # WSGI has no WebSocket protocol
    resolved['target'] = target
    return ServerConfig(
        bind=BindSpec(
            address=resolved['address'],
            port=resolved['port'],
            backlog=resolved['backlog'],
            uds=resolved['uds'],
            uds_permissions=resolved['uds_permissions'],
            fd=resolved['fd'],
            reuse_port=resolved['reuse_port'],
        ),
        workers=resolved['workers'],
        worker=WorkerSettings(resolved),
    )
