"""Every server option, in the order of `Granian(...)`'s keyword arguments (Granian 2.8's order).

To add an option: add an `Option` here, run `python tools/options.py` (it rewrites the generated parts
of `Granian(...)`'s signature, the `granian.http` dataclasses and docs/options.md), then write the code
that uses `settings.<name>` in the worker. The command lines, validation and tests pick it up.
"""

from __future__ import annotations

from typing import Any

from ..constants import HTTPModes, Interfaces, LogLevels, Loops, RuntimeModes, SSLProtocols, TaskImpl
from ._kinds import Choice, Directory, Duration, File, Flag, Integer, JsonObjectFile, Permissions, Text
from ._spec import Option, OptionError

__all__ = ['OPTIONS']

# Limits that come from the protocol or from the Rust types the values end up in.
_U31 = 2**31 - 1  # HTTP/2 flow-control windows (RFC 9113, 6.9.1); listen(2) backlog (C int)
_U32 = 2**32 - 1  # HTTP/2 SETTINGS values and hyper/h2 sizes
_MIN_FRAME, _MAX_FRAME = 2**14, 2**24 - 1  # SETTINGS_MAX_FRAME_SIZE bounds (RFC 9113, 6.5.2)
_MAX_WORKERS = 1024
_ASYNC_INTERFACES = frozenset({'asgi', 'asginl', 'rsgi'})
_MAX_THREADS = 1024


def _interface_installed(value: str) -> str:
    from .._interfaces import interface_available, interface_package

    if not interface_available(value):
        package = interface_package(value)
        raise OptionError(
            f"The '{value}' interface needs the {package} package: pip install {package}", key='interface'
        )
    return value


def _loop_available(value: str) -> str:
    if value == Loops.auto:
        return value
    from .._loops import loops

    if value not in loops:
        raise ValueError(f'the {value!r} event loop is not available here (it needs the {value} package)')
    return value


def _field(section: str, field: str, kind: Any, default: Any, help: str, **extra: Any) -> Option:
    """An option set through a `granian.http` settings dataclass; named `<section>_<field>` unless given."""
    name = extra.pop('name', f'{section}_{field}')
    return Option(name, kind, default, help, section, section=section, field=field, **extra)


def _reload_pattern(value: str) -> str:
    from ..server.reload import check_pattern

    return check_pattern(value)


def _static_route(value: str) -> str:
    if not value.startswith('/'):
        raise ValueError(f'{value!r} does not start with "/"')
    if any(char in value for char in '?#%\\') or any(char.isspace() for char in value):
        raise ValueError(f'{value!r} is not a plain URL path')
    return value.rstrip('/') or '/'


def _access_log_format(value: str) -> str:
    from .. import _core

    _core.check_access_log_format(value)
    return value


def _url_path(value: str) -> Any:
    if not value.startswith('/'):
        raise ValueError(f'{value!r} does not start with "/"')
    return value.rstrip('/') or None


OPTIONS: tuple[Option, ...] = (
    Option(
        'address',
        Text(),
        '127.0.0.1',
        'Host address to bind to.',
        'bind',
        flags=('--host',),
        env='GRANIAN_HOST',
        example='0.0.0.0',
    ),
    Option('port', Integer(0, 65535), 8000, 'Port to bind to (0 picks a free port).', 'bind'),
    Option(
        'uds',
        File(),
        None,
        'Unix domain socket to listen on instead of the host address and port.',
        'bind',
        note=(
            'A socket file left by a server that is gone is replaced; one a live server listens on stops the'
            ' start. The file is removed when the server stops.'
        ),
        example='/run/granian.sock',
    ),
    Option(
        'uds_permissions',
        Permissions(),
        None,
        'Permissions of the Unix domain socket file, in octal.',
        'bind',
        default_text='from the umask',
        example=0o660,
    ),
    Option(
        'interface',
        Choice(Interfaces),
        Interfaces.RSGI.value,
        'Application interface: asgi, asginl (ASGI without lifespan), rsgi or wsgi.',
        'protocols',
        constraint=_interface_installed,
        note='Each interface ships in its own package (granian-asgi, granian-rsgi, granian-wsgi).',
    ),
    Option('workers', Integer(1, _MAX_WORKERS), 1, 'Number of worker processes.', 'workers'),
    Option(
        'blocking_threads',
        Integer(1, 65535),
        None,
        'Most threads running the WSGI app per worker; threads start only when requests stall.',
        'workers',
        default_text='WSGI: backpressure / 2, otherwise 1',
        note='Values above 1 apply to the WSGI interface only.',
    ),
    Option(
        'blocking_threads_idle_timeout',
        Duration(5, 600),
        30,
        'Seconds an idle blocking thread waits for work before it exits.',
        'workers',
    ),
    Option('runtime_threads', Integer(1, _MAX_THREADS), 1, 'Number of Rust runtime threads per worker.', 'workers'),
    Option(
        'runtime_blocking_threads',
        Integer(1, 65_536),
        512,
        'Most threads each Rust runtime starts for blocking work (opening files the app sends).',
        'workers',
    ),
    Option(
        'runtime_mode',
        Choice(RuntimeModes),
        RuntimeModes.auto.value,
        'Rust runtime threading: st (one single-threaded runtime), mt (multi-threaded) or auto.',
        'workers',
        note='auto picks st for one runtime thread and mt otherwise.',
    ),
    Option(
        'loop',
        Choice(Loops),
        Loops.auto.value,
        'Event loop of each worker; auto picks rloop, uvloop, winloop, then asyncio.',
        'workers',
        constraint=_loop_available,
        example='asyncio',
    ),
    Option(
        'task_impl',
        Choice(TaskImpl),
        TaskImpl.asyncio.value,
        'How async apps run: as asyncio tasks (both values; see the note).',
        'workers',
        interfaces=_ASYNC_INTERFACES,
        note=(
            "Granian 2.8's experimental `rust` task implementation (Python < 3.12 only) does not exist here:"
            ' `rust` is accepted for compatibility, logs a warning and uses asyncio tasks, which the request'
            ' hand-over already batches.'
        ),
    ),
    Option(
        'http',
        Choice(HTTPModes),
        HTTPModes.auto.value,
        'HTTP version to serve: 1, 2, or auto (HTTP/1.1 and HTTP/2 prior knowledge on one port).',
        'protocols',
    ),
    Option(
        'http3',
        Flag(),
        False,
        'Also serve HTTP/3 over QUIC, on UDP at the same address and port (needs TLS).',
        'http3',
        note=(
            'TCP responses then carry `Alt-Svc: h3=":PORT"` so that clients can switch. Each worker slot has a'
            ' UDP socket of its own (SO_REUSEPORT), kept across replacements; see docs/http3.md for several workers.'
        ),
    ),
    Option(
        'http3_idle_timeout',
        Duration(1, 86_400),
        30.0,
        'Seconds a QUIC connection may stay silent before the server closes it.',
        'http3',
    ),
    Option(
        'http3_max_concurrent_streams',
        Integer(1, 65_535),
        100,
        'Most requests a client may have in flight on one HTTP/3 connection.',
        'http3',
    ),
    Option(
        'max_request_body_size',
        Integer(1, 2**63 - 1, 'bytes'),
        None,
        'Largest request body accepted, in bytes; a larger one is answered with 413 Content Too Large.',
        'protocols',
        default_text='no limit',
        note='A declared Content-Length over the limit is refused before the app runs; a body of '
        "undeclared length (chunked, HTTP/2 without content-length) fails the app's read once it "
        'outgrows the limit. HTTP/1 connections close after a 413.',
    ),
    Option(
        'websockets',
        Flag(),
        True,
        'Serve WebSocket connections (HTTP/1.1 upgrade and HTTP/2 extended CONNECT).',
        'websockets',
        flags=('--ws/--no-ws',),
        interfaces=_ASYNC_INTERFACES,
        note='Off, an upgrade request reaches the app as plain HTTP. WSGI serves no WebSockets.',
    ),
    Option(
        'backlog',
        Integer(128, _U31),
        1024,
        'Maximum number of connections waiting to be accepted.',
        'bind',
        note='Linux also caps it at net.core.somaxconn; the server logs when it does.',
    ),
    Option(
        'backpressure',
        Integer(1, _U31),
        None,
        'Maximum number of requests each worker hands to the app at once.',
        'workers',
        default_text='backlog / workers',
        note='Requests beyond it wait in the worker, not in the app.',
    ),
    _field(
        'http1',
        'header_read_timeout',
        Integer(1, 60_000, 'ms'),
        30_000,
        'Time allowed to receive the request headers, in milliseconds.',
        note=(
            'It runs from when a connection waits for a request (once opened, or once the last response is out) '
            'until the headers are complete, never while a request is answered: an idle keep-alive connection '
            'is closed when it runs out.'
        ),
    ),
    _field(
        'http1',
        'keep_alive',
        Flag(),
        True,
        'Keep HTTP/1.1 connections open between requests.',
    ),
    _field(
        'http1',
        'max_buffer_size',
        Integer(8192, _U32, 'bytes'),
        8192 + 4096 * 100,
        'Maximum size of the per-connection read buffer, in bytes.',
        name='http1_buffer_size',
    ),
    _field(
        'http1',
        'pipeline_flush',
        Flag(),
        False,
        'Batch the flushing of pipelined HTTP/1.1 responses (experimental: hyper then buffers response bodies '
        'without a limit, so a large file is held in memory whole and is never sent with sendfile).',
    ),
    _field(
        'http2',
        'adaptive_window',
        Flag(),
        False,
        'Size flow-control windows from a bandwidth-delay estimate, starting at 64 KiB (replaces the initial window sizes).',
    ),
    _field(
        'http2',
        'initial_connection_window_size',
        Integer(1024, _U31, 'bytes'),
        1024 * 1024,
        'Initial flow-control window of each connection, in bytes.',
    ),
    _field(
        'http2',
        'initial_stream_window_size',
        Integer(1024, _U31, 'bytes'),
        1024 * 1024,
        'Initial flow-control window of each stream, in bytes.',
    ),
    _field(
        'http2',
        'keep_alive_interval',
        Integer(1, 60_000, 'ms'),
        None,
        'Interval between keep-alive pings, in milliseconds.',
        default_text='off',
    ),
    _field(
        'http2',
        'keep_alive_timeout',
        Duration(1, 86_400),
        20,
        'Time to wait for a keep-alive ping reply, in seconds.',
    ),
    _field(
        'http2',
        'max_concurrent_streams',
        Integer(10, _U32),
        200,
        'Maximum number of concurrent streams per connection.',
    ),
    _field(
        'http2',
        'max_frame_size',
        Integer(_MIN_FRAME, _MAX_FRAME, 'bytes'),
        _MIN_FRAME,
        'Largest frame payload the server accepts, in bytes.',
        note='HTTP/2 allows 16384 to 16777215 (RFC 9113, section 6.5.2).',
    ),
    _field(
        'http2',
        'max_headers_size',
        Integer(1, _U32, 'bytes'),
        16 * 1024 * 1024,
        'Maximum size of the received header list, in bytes.',
    ),
    _field(
        'http2',
        'max_send_buffer_size',
        Integer(1024, _U32, 'bytes'),
        1024 * 400,
        'Maximum data buffered for sending on each stream, in bytes.',
    ),
    Option('log_enabled', Flag(), True, 'Enable the server log.', 'logging', flags=('--log/--no-log',)),
    Option(
        'log_level',
        Choice(LogLevels, case_sensitive=False),
        LogLevels.info.value,
        'Server log level.',
        'logging',
    ),
    Option(
        'log_dictconfig',
        JsonObjectFile(),
        None,
        'JSON file with a logging dictConfig, merged over the default configuration.',
        'logging',
        flags=('--log-config',),
        env='GRANIAN_LOG_CONFIG',
        note='Top-level keys replace those of the default configuration.',
    ),
    Option(
        'log_access',
        Flag(),
        False,
        'Write one access log line per request to the `granian.access` logger.',
        'logging',
        flags=('--access-log/--no-access-log',),
        env='GRANIAN_LOG_ACCESS_ENABLED',
        note=(
            'Lines are built by the core and handed to the logger in batches; static files, WebSocket'
            ' upgrades (101) and the responses the server makes itself (400, 404, 500, 503) are logged too.'
        ),
    ),
    Option(
        'log_access_format',
        Text(),
        None,
        'Access log line format: `%`-style fields naming atoms, such as `%(status)d` (see docs/logging.md).',
        'logging',
        flags=('--access-log-fmt',),
        env='GRANIAN_LOG_ACCESS_FMT',
        default_text='[%(time)s] %(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f',
        constraint=_access_log_format,
        example='%(addr)s %(status)d %(response_size)d',
    ),
    Option(
        'ssl_cert',
        File(),
        None,
        'TLS certificate chain (PEM, the server certificate first); with --ssl-keyfile, serves HTTPS.',
        'tls',
        flags=('--ssl-certificate',),
        env='GRANIAN_SSL_CERTIFICATE',
    ),
    Option(
        'ssl_key',
        File(),
        None,
        'Private key of the certificate (PEM: PKCS#8, encrypted PKCS#8, PKCS#1 or SEC1).',
        'tls',
        flags=('--ssl-keyfile',),
        env='GRANIAN_SSL_KEYFILE',
    ),
    Option(
        'ssl_key_password',
        Text(),
        None,
        'Password of an encrypted (PKCS#8) private key.',
        'tls',
        flags=('--ssl-keyfile-password',),
        env='GRANIAN_SSL_KEYFILE_PASSWORD',
        example='secret',
    ),
    Option(
        'ssl_protocol_min',
        Choice(SSLProtocols),
        SSLProtocols.tls13.value,
        'Lowest TLS version accepted.',
        'tls',
    ),
    Option(
        'ssl_ca',
        File(),
        None,
        'CA certificates (PEM) that sign client certificates: clients may present one (mTLS).',
        'tls',
    ),
    Option(
        'ssl_crl',
        File(),
        None,
        'Certificate revocation list (PEM) for client certificates; repeat for several.',
        'tls',
        multiple=True,
    ),
    Option(
        'ssl_client_verify',
        Flag(),
        False,
        'Require a client certificate signed by --ssl-ca.',
        'tls',
    ),
    Option(
        'url_path_prefix',
        Text(),
        None,
        'URL path the app is mounted at (ASGI root_path, WSGI SCRIPT_NAME).',
        'app',
        constraint=_url_path,
        example='/api',
    ),
    Option(
        'respawn_failed_workers',
        Flag(),
        False,
        'Replace a worker that exits unexpectedly instead of stopping the server.',
        'lifecycle',
        note=(
            'A worker that fails 5 times within 60 seconds is a crash loop: the server stops with one line'
            ' that says so.'
        ),
    ),
    Option(
        'respawn_interval',
        Duration(0, 3600),
        3.5,
        'Seconds to wait after a replacement worker is serving before the next step of a reload or respawn.',
        'lifecycle',
    ),
    Option(
        'workers_max_rss',
        Integer(1, 2**40, 'MiB'),
        None,
        'Resident memory, in MiB, above which a worker is replaced by a fresh one (one at a time).',
        'lifecycle',
        default_text='no limit',
        note='Checked every --rss-sample-interval; --rss-samples readings in a row must be over the limit.',
    ),
    Option(
        'rss_sample_interval',
        Duration(1, 300),
        30,
        "Seconds between two readings of each worker's resident memory (with --workers-max-rss).",
        'lifecycle',
    ),
    Option(
        'rss_samples',
        Integer(1, 1000),
        1,
        'Readings in a row over --workers-max-rss that make a worker due for replacement.',
        'lifecycle',
    ),
    Option(
        'workers_lifetime',
        Duration(60, 10 * 365 * 86_400),
        None,
        'Seconds after which a worker is replaced by a fresh one; workers are replaced one at a time.',
        'lifecycle',
        default_text='never',
    ),
    Option(
        'workers_lifetime_jitter',
        Duration(0, 10 * 365 * 86_400),
        0,
        "Up to this many seconds added at random to each worker's lifetime, so workers started together"
        ' are not due together.',
        'lifecycle',
    ),
    Option(
        'workers_max_requests',
        Integer(1, 2**63 - 1),
        None,
        'Requests after which a worker is replaced by a fresh one (it serves until the new one is ready).',
        'lifecycle',
        default_text='no limit',
    ),
    Option(
        'workers_max_requests_jitter',
        Integer(0, 2**63 - 1),
        0,
        "Up to this many requests added at random to each worker's --workers-max-requests.",
        'lifecycle',
    ),
    Option(
        'workers_drain_timeout',
        Duration(0.1, 86_400),
        None,
        'Seconds a stopping worker lets in-flight requests finish; then it closes the connections left and exits.',
        'lifecycle',
        default_text='wait until they finish',
        note='Idle keep-alive connections are closed at once when the worker stops, whatever this is.',
    ),
    Option(
        'workers_kill_timeout',
        Duration(1, 1800),
        None,
        'Seconds a stopping worker may take to drain before it is killed (SIGKILL).',
        'lifecycle',
        default_text='wait until it exits',
    ),
    Option('factory', Flag(), False, 'Treat APP as a factory that returns the application.', 'app'),
    Option('working_dir', Directory(), None, 'Directory to import APP from.', 'app'),
    Option(
        'env_files',
        File(),
        None,
        'File of environment variables (dotenv format) to load before the workers start; repeat for several.',
        'process',
        multiple=True,
        note=(
            'Needs python-dotenv (pip install granian-core[dotenv]). Variables already in the environment win;'
            ' the files are read again on reload.'
        ),
    ),
    Option(
        'static_path_route',
        Text(),
        None,
        'URL path under which --static-path-mount is served; repeat, one for each mount.',
        'static',
        multiple=True,
        default_text='/static for a single mount',
        constraint=_static_route,
        example='/assets',
    ),
    Option(
        'static_path_mount',
        Directory(),
        None,
        'Directory of static files served by the core before the app; repeat for several.',
        'static',
        multiple=True,
        note=(
            'Requests under its route never reach the app: the file, 304, 206, 416 or 404. Files are found'
            ' only inside the directory (no `..`, encoded separators or symlinks leading out).'
        ),
    ),
    Option(
        'static_path_dir_to_file',
        Text(),
        None,
        'File served for a request naming a directory of a static mount (such as index.html).',
        'static',
        example='index.html',
    ),
    Option(
        'static_path_expires',
        Duration(0, 10 * 365 * 86_400),
        86_400,
        'Seconds static files may be cached (Cache-Control: max-age); 0 sends no Cache-Control.',
        'static',
    ),
    Option(
        'metrics_enabled',
        Flag(),
        False,
        'Serve Prometheus metrics of every worker from the supervisor (Linux).',
        'metrics',
        flags=('--metrics/--no-metrics',),
        note='Counters of replaced workers stay in the totals of their worker number (see docs/metrics.md).',
    ),
    Option(
        'metrics_scrape_interval',
        Duration(1, 60),
        15,
        'Accepted for compatibility with Granian 2.8, whose workers send their counters at this interval.',
        'metrics',
        note='Workers count into memory the supervisor reads at each scrape, so every scrape is current.',
    ),
    Option('metrics_address', Text(), '127.0.0.1', 'Address of the metrics endpoint.', 'metrics'),
    Option('metrics_port', Integer(1, 65535), 9090, 'Port of the metrics endpoint.', 'metrics'),
    Option(
        'process_name',
        Text(),
        None,
        'Title of the server process; workers get it with " worker-N" added.',
        'process',
        note='Needs setproctitle (pip install granian-core[pname]), which also gives default titles without it.',
        example='myapp',
    ),
    Option(
        'pid_file',
        File(),
        None,
        "File to write the server's process id to; removed when the server stops.",
        'process',
        note='A file left by a process that is gone is replaced; one naming a running process stops the start.',
    ),
    Option(
        'reload',
        Flag(),
        False,
        'Replace the workers when a watched file changes (development).',
        'reload',
        note='Needs watchfiles (pip install granian-core[reload]). Workers are replaced one at a time.',
    ),
    Option(
        'reload_paths',
        File(),
        None,
        'File or directory to watch for --reload; repeat for several.',
        'reload',
        multiple=True,
        default_text='the working directory',
    ),
    Option(
        'reload_ignore_dirs',
        Text(),
        None,
        'Directory name whose changes --reload ignores, besides .git, __pycache__ and the like; repeat for several.',
        'reload',
        multiple=True,
        example='node_modules',
    ),
    Option(
        'reload_ignore_patterns',
        Text(),
        None,
        'Regular expression of file or directory names whose changes --reload ignores; repeat for several.',
        'reload',
        multiple=True,
        constraint=_reload_pattern,
        example=r'.*\.log$',
    ),
    Option(
        'reload_ignore_paths',
        File(),
        None,
        'File or directory whose changes --reload ignores; repeat for several.',
        'reload',
        multiple=True,
    ),
    Option(
        'reload_tick',
        Integer(50, 5000, 'ms'),
        50,
        'How often --reload looks for changes, in milliseconds.',
        'reload',
    ),
    Option(
        'reload_ignore_worker_failure',
        Flag(),
        False,
        'With --reload, keep serving when a worker fails (it is started again at the next change).',
        'reload',
    ),
    Option(
        'ws_max_size',
        Integer(1, _U31, 'bytes'),
        16 * 1024 * 1024,
        'Largest WebSocket message accepted, in bytes; a larger one closes the connection with 1009.',
        'websockets',
        interfaces=_ASYNC_INTERFACES,
    ),
    Option(
        'ws_ping_interval',
        Duration(0, 86_400),
        20.0,
        'Seconds between the pings the server sends on each WebSocket; 0 sends none.',
        'websockets',
        interfaces=_ASYNC_INTERFACES,
    ),
    Option(
        'ws_ping_timeout',
        Duration(0.1, 86_400),
        20.0,
        'Seconds a ping may go unanswered before the server drops the WebSocket.',
        'websockets',
        interfaces=_ASYNC_INTERFACES,
    ),
    Option(
        'ws_per_message_deflate',
        Flag(),
        True,
        'Compress WebSocket messages with permessage-deflate when the client offers it.',
        'websockets',
        interfaces=_ASYNC_INTERFACES,
    ),
    Option(
        'fd',
        Integer(0, _U31),
        None,
        'Serve the listening socket on this inherited file descriptor instead of binding one.',
        'bind',
        note=(
            'The socket may be TCP or Unix and must already listen. With systemd socket activation'
            ' (LISTEN_FDS) the activated socket is served without this option; with several, it picks one.'
        ),
        example=3,
    ),
    Option(
        'reuse_port',
        Flag(),
        False,
        'Give each worker its own listening socket (SO_REUSEPORT) so the kernel spreads connections evenly.',
        'bind',
        note=(
            'By default the workers share one socket, which keeps queued connections when a worker is replaced'
            ' but can favour some workers when many connections arrive at once. With reuse_port, a replaced'
            " worker's queued connections are reset unless net.ipv4.tcp_migrate_req=1. TCP only."
        ),
    ),
)
