"""The ``granian`` command line: parse options, then run a granian server for the given app."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any, NoReturn

import click

from granian._interfaces import interface_available, interface_package
from granian._loops import loops
from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes
from granian.errors import ConfigurationError, FatalError
from granian.http import HTTP1Settings, HTTP2Settings
from granian.log import LogLevels
from granian.server.defaults import SERVER_DEFAULTS

from .types import Duration

__all__ = ['cli', 'entrypoint']

_SETTINGS_FIELDS = {
    settings: {field.name: field for field in dataclasses.fields(settings)}
    for settings in (HTTP1Settings, HTTP2Settings)
}

_option = functools.partial(click.option, show_default=True, show_envvar=True)


def _settings_option(settings: type, field_name: str, *param_decls: str, type_: type = click.IntRange) -> Any:
    """Declare an option whose default, range and help come from a field of an HTTP settings dataclass."""
    field = _SETTINGS_FIELDS[settings][field_name]
    meta = field.metadata
    extra: dict[str, Any] = {}
    if 'min' in meta:
        extra['type'] = type_(meta['min'], meta['max'])
        if field.default is None:
            extra['show_default'] = 'disabled'
    return _option(*param_decls, default=field.default, help=meta['help'], **extra)


def _choices(enum: Any) -> click.Choice:
    return click.Choice([member.value for member in enum])


def _loop_choices() -> click.Choice:
    # Only loops whose packages are importable now; `auto` always resolves to one of them.
    return click.Choice(['auto', *(key for key in loops if key != 'auto')])


def _granian_version() -> str:
    import granian

    version = getattr(granian, '__version__', None)
    if version:
        return str(version)
    from importlib import metadata

    for distribution in ('granian-core', 'granian-cli'):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return 'unknown'


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f'granian {_granian_version()}')
    ctx.exit()


def _fail(ctx: click.Context, message: str, exit_code: int) -> NoReturn:
    """Print ``message`` as one line on stderr and leave with ``exit_code``."""
    if message:
        click.echo(f'Error: {message.splitlines()[0]}', err=True)
    ctx.exit(exit_code)


def _read_log_config(ctx: click.Context, path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding='utf-8'))
    except OSError as exc:
        _fail(ctx, f"Cannot read the log config file '{path}' ({exc.strerror or exc}); check the path.", 1)
    except json.JSONDecodeError as exc:
        _fail(ctx, f"The log config file '{path}' is not valid JSON ({exc.msg} at line {exc.lineno}).", 1)
    except UnicodeDecodeError:
        _fail(ctx, f"The log config file '{path}' is not UTF-8 text; save it as UTF-8 JSON.", 1)
    if not isinstance(document, dict):
        _fail(ctx, f"The log config file '{path}' must hold a JSON object in logging dictConfig format.", 1)
    return document


def _require_interface_package(ctx: click.Context, interface: Interfaces) -> None:
    try:
        available = interface_available(interface)
    except (ImportError, ValueError):
        available = False
    if not available:
        package = interface_package(interface)
        _fail(ctx, f"The '{interface}' interface needs the {package} package: pip install {package}", 2)


@click.command(
    'granian',
    context_settings={'auto_envvar_prefix': 'GRANIAN', 'max_content_width': 120},
    help='Serve APP, a Python import target such as "module:app" or "path/to/file.py:app" (attribute defaults to app).',
)
@click.argument('app', required=True)
@_option('--host', default=SERVER_DEFAULTS['address'], help='Host address to bind to.')
@_option('--port', type=click.IntRange(0, 65535), default=SERVER_DEFAULTS['port'], help='Port to bind to.')
@_option('--interface', type=_choices(Interfaces), default=Interfaces.RSGI.value, help='Application interface type.')
@_option('--http', type=_choices(HTTPModes), default=HTTPModes.auto.value, help='HTTP version to serve.')
@_option(
    '--workers', type=click.IntRange(min=1), default=SERVER_DEFAULTS['workers'], help='Number of worker processes.'
)
@_option(
    '--runtime-threads',
    type=click.IntRange(min=1),
    default=SERVER_DEFAULTS['runtime_threads'],
    help='Number of Rust runtime threads per worker.',
)
@_option(
    '--runtime-mode',
    type=_choices(RuntimeModes),
    default=RuntimeModes.auto.value,
    help='Rust runtime threading: mt (multi-threaded), st (single-threaded) or auto.',
)
@_option('--loop', type=_loop_choices(), default=Loops.auto.value, help='Event loop implementation.')
@_option(
    '--backlog',
    type=click.IntRange(min=128),
    default=SERVER_DEFAULTS['backlog'],
    help='Maximum number of pending connections.',
)
@_option(
    '--backpressure',
    type=click.IntRange(min=1),
    default=None,
    show_default='backlog / workers',
    help='Maximum number of requests each worker handles at once.',
)
@_option(
    '--blocking-threads',
    type=click.IntRange(min=1),
    default=None,
    show_default='WSGI: backpressure / 2, otherwise 1',
    help='Most threads running a WSGI app per worker (started only when requests stall).',
)
@_option(
    '--blocking-threads-idle-timeout',
    type=Duration(5, 600),
    default=SERVER_DEFAULTS['blocking_threads_idle_timeout'],
    help='Seconds an idle blocking thread waits before it exits.',
)
@_settings_option(HTTP1Settings, 'max_buffer_size', '--http1-buffer-size')
@_settings_option(HTTP1Settings, 'header_read_timeout', '--http1-header-read-timeout')
@_settings_option(HTTP1Settings, 'keep_alive', '--http1-keep-alive/--no-http1-keep-alive')
@_settings_option(HTTP1Settings, 'pipeline_flush', '--http1-pipeline-flush/--no-http1-pipeline-flush')
@_settings_option(HTTP2Settings, 'adaptive_window', '--http2-adaptive-window/--no-http2-adaptive-window')
@_settings_option(HTTP2Settings, 'initial_connection_window_size', '--http2-initial-connection-window-size')
@_settings_option(HTTP2Settings, 'initial_stream_window_size', '--http2-initial-stream-window-size')
@_settings_option(HTTP2Settings, 'keep_alive_interval', '--http2-keep-alive-interval')
@_settings_option(HTTP2Settings, 'keep_alive_timeout', '--http2-keep-alive-timeout', type_=Duration)
@_settings_option(HTTP2Settings, 'max_concurrent_streams', '--http2-max-concurrent-streams')
@_settings_option(HTTP2Settings, 'max_frame_size', '--http2-max-frame-size')
@_settings_option(HTTP2Settings, 'max_headers_size', '--http2-max-headers-size')
@_settings_option(HTTP2Settings, 'max_send_buffer_size', '--http2-max-send-buffer-size')
@_option('--log/--no-log', 'log_enabled', default=True, help='Enable the server log.')
@_option(
    '--log-level',
    type=click.Choice([member.value for member in LogLevels], case_sensitive=False),
    default=LogLevels.info.value,
    help='Server log level.',
)
@_option(
    '--log-config',
    type=click.Path(path_type=Path),
    default=None,
    metavar='FILE',
    help='JSON file with a logging dictConfig, merged over the default configuration.',
)
@_option(
    '--url-path-prefix',
    default=None,
    metavar='PREFIX',
    help='URL path the app is mounted at (ASGI root_path).',
)
@_option('--factory/--no-factory', default=False, help='Treat APP as a factory that returns the application.')
@_option(
    '--working-dir',
    type=click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path),
    default=None,
    help='Directory to import APP from.',
)
@click.option(
    '--version',
    is_flag=True,
    expose_value=False,
    is_eager=True,
    allow_from_autoenv=False,
    callback=_print_version,
    help='Show the granian version and exit.',
)
@click.pass_context
def cli(
    ctx: click.Context,
    app: str,
    host: str,
    port: int,
    interface: str,
    http: str,
    workers: int,
    runtime_threads: int,
    runtime_mode: str,
    loop: str,
    backlog: int,
    backpressure: int | None,
    blocking_threads: int | None,
    blocking_threads_idle_timeout: int,
    http1_buffer_size: int,
    http1_header_read_timeout: int,
    http1_keep_alive: bool,
    http1_pipeline_flush: bool,
    http2_adaptive_window: bool,
    http2_initial_connection_window_size: int,
    http2_initial_stream_window_size: int,
    http2_keep_alive_interval: int | None,
    http2_keep_alive_timeout: int,
    http2_max_concurrent_streams: int,
    http2_max_frame_size: int,
    http2_max_headers_size: int,
    http2_max_send_buffer_size: int,
    log_enabled: bool,
    log_level: str,
    log_config: Path | None,
    url_path_prefix: str | None,
    factory: bool,
    working_dir: Path | None,
) -> None:
    """Run a granian server for APP with the given options."""
    log_dictconfig = _read_log_config(ctx, log_config) if log_config is not None else None
    _require_interface_package(ctx, Interfaces(interface))
    try:
        http1_settings = HTTP1Settings(
            header_read_timeout=http1_header_read_timeout,
            keep_alive=http1_keep_alive,
            max_buffer_size=http1_buffer_size,
            pipeline_flush=http1_pipeline_flush,
        )
        http2_settings = HTTP2Settings(
            adaptive_window=http2_adaptive_window,
            initial_connection_window_size=http2_initial_connection_window_size,
            initial_stream_window_size=http2_initial_stream_window_size,
            keep_alive_interval=http2_keep_alive_interval,
            keep_alive_timeout=http2_keep_alive_timeout,
            max_concurrent_streams=http2_max_concurrent_streams,
            max_frame_size=http2_max_frame_size,
            max_headers_size=http2_max_headers_size,
            max_send_buffer_size=http2_max_send_buffer_size,
        )
    except ConfigurationError as exc:
        _fail(ctx, str(exc), 2)

    # Imported here so that `granian --help` does not pay for loading the server machinery.
    from granian.server import Server

    try:
        Server(
            target=app,
            address=host,
            port=port,
            interface=Interfaces(interface),
            workers=workers,
            runtime_threads=runtime_threads,
            runtime_mode=RuntimeModes(runtime_mode),
            loop=Loops(loop) if loop in {member.value for member in Loops} else loop,
            http=HTTPModes(http),
            backlog=backlog,
            backpressure=backpressure,
            http1_settings=http1_settings,
            http2_settings=http2_settings,
            log_enabled=log_enabled,
            log_level=LogLevels(log_level.lower()),
            log_dictconfig=log_dictconfig,
            factory=factory,
            working_dir=working_dir,
            url_path_prefix=url_path_prefix,
            blocking_threads=blocking_threads,
            blocking_threads_idle_timeout=blocking_threads_idle_timeout,
        ).serve()
    except FatalError as exc:
        # The server logs its own reason before raising; repeat only what it did not log.
        message = '' if getattr(exc, 'logged', False) else str(exc)
        _fail(ctx, message, 2 if isinstance(exc, ConfigurationError) else 1)


def entrypoint() -> None:
    """Console script entry point of the ``granian`` command."""
    cli(auto_envvar_prefix='GRANIAN')
