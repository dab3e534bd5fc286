"""The embedded server: serve an ASGI or RSGI app from inside a running asyncio program.

    server = Server(app, address='127.0.0.1', port=8000, interface='asgi')
    task = asyncio.create_task(server.serve())   # returns once the server has stopped
    ...
    server.reload()   # drain, run the app's shutdown and startup again, serve again
    server.stop()     # drain and return from serve()

One worker runs on the caller's event loop and in its process: no supervisor, no signals, no worker
processes. The Rust runtime serving the connections runs on its own thread, as in a worker process.
Options are `Granian(...)`'s, less those about processes (workers, lifecycle, reload, pid file);
the target is the app object itself (or its factory with `factory=True`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from .._interfaces import load_interface
from ..constants import HTTPModes, Interfaces, LogLevels, RuntimeModes, SSLProtocols, TaskImpl
from ..errors import ConfigurationError
from ..http import HTTP1Settings, HTTP2Settings
from ..log import configure_logging, logger
from ..options import OPTIONS, check_kwargs
from .config import ServerConfig, build_config, check_tls
from .listen import Listener, QuicSlot, open_listener, quic_socket, socket_address
from .worker import InterfaceWorker

__all__ = ['EMBEDDED_OPTIONS', 'Server']

#: Option groups that apply as a whole to an embedded server, and single options of other groups.
_EMBEDDED_GROUPS = frozenset({'bind', 'protocols', 'websockets', 'http1', 'http2', 'http3', 'logging', 'tls', 'static'})
_EMBEDDED_SINGLES = frozenset(
    {
        'blocking_threads',
        'blocking_threads_idle_timeout',
        'runtime_threads',
        'runtime_blocking_threads',
        'runtime_mode',
        'task_impl',
        'backpressure',
        'url_path_prefix',
        'factory',
        'workers_drain_timeout',
    }
)
#: The options an embedded server takes, in registry order (`tools/options.py` writes its signature);
#: reuse_port is about several workers.
EMBEDDED_OPTIONS = tuple(
    option
    for option in OPTIONS
    if (option.group in _EMBEDDED_GROUPS or option.name in _EMBEDDED_SINGLES) and option.name != 'reuse_port'
)
#: Interfaces that run on the caller's event loop (WSGI apps block it).
_ASYNC_INTERFACES = (Interfaces.ASGI, Interfaces.ASGINL, Interfaces.RSGI)


def _target_name(target: Any) -> str:
    """How the app is named in messages (the worker's `settings.target`)."""
    name = getattr(target, '__qualname__', None) or type(target).__qualname__
    return f'{getattr(target, "__module__", None) or type(target).__module__}:{name}'


class Server:
    """An ASGI or RSGI server run by `await server.serve()` on the caller's event loop."""

    def __init__(
        self,
        target: Any,
        # BEGIN GENERATED: embedded options (tools/options.py)
        address: str = '127.0.0.1',
        port: int = 8000,
        uds: str | os.PathLike[str] | None = None,
        uds_permissions: int | None = None,
        interface: Interfaces | str = 'rsgi',
        blocking_threads: int | None = None,
        blocking_threads_idle_timeout: float = 30,
        runtime_threads: int = 1,
        runtime_blocking_threads: int = 512,
        runtime_mode: RuntimeModes | str = 'auto',
        task_impl: TaskImpl | str = 'asyncio',
        http: HTTPModes | str = 'auto',
        http3: bool = False,
        http3_idle_timeout: float = 30.0,
        http3_max_concurrent_streams: int = 100,
        max_request_body_size: int | None = None,
        websockets: bool = True,
        backlog: int = 1024,
        backpressure: int | None = None,
        http1_settings: HTTP1Settings | None = None,
        http2_settings: HTTP2Settings | None = None,
        log_enabled: bool = True,
        log_level: LogLevels | str = 'info',
        log_dictconfig: dict[str, Any] | None = None,
        log_access: bool = False,
        log_access_format: str | None = None,
        ssl_cert: str | os.PathLike[str] | None = None,
        ssl_key: str | os.PathLike[str] | None = None,
        ssl_key_password: str | None = None,
        ssl_protocol_min: SSLProtocols | str = 'tls1.3',
        ssl_ca: str | os.PathLike[str] | None = None,
        ssl_crl: list[str | os.PathLike[str]] | None = None,
        ssl_client_verify: bool = False,
        url_path_prefix: str | None = None,
        workers_drain_timeout: float | None = None,
        factory: bool = False,
        static_path_route: list[str] | None = None,
        static_path_mount: list[str | os.PathLike[str]] | None = None,
        static_path_dir_to_file: str | None = None,
        static_path_expires: float = 86400,
        ws_max_size: int = 16777216,
        ws_ping_interval: float = 20.0,
        ws_ping_timeout: float = 20.0,
        ws_per_message_deflate: bool = True,
        fd: int | None = None,
        # END GENERATED
    ) -> None:
        options = {name: value for name, value in locals().items() if name not in ('self', 'target')}
        if target is None or not callable(target):
            raise ConfigurationError('the embedded server needs the app object (or its factory) as target')
        self.target = target
        self.config: ServerConfig = build_config(_target_name(target), check_kwargs(options))
        if self.config.worker.interface not in _ASYNC_INTERFACES:
            raise ConfigurationError(
                'the embedded server runs asgi, asginl and rsgi apps on the event loop; '
                f'{self.config.worker.interface!r} apps need Granian(...).serve()',
                key='interface',
            )
        check_tls(self.config.worker)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop_requested = False
        self._reload_requested = False
        #: Where the server listens once serving (for logs and for tests with port 0).
        self.listener: Listener | None = None
        #: The HTTP/3 UDP socket (with http3=True), on the listener's address and port.
        self._quic: QuicSlot | None = None

    async def serve(self) -> None:
        """Serve until `stop()`; raises granian.errors.FatalError when the server cannot start (the
        socket, the app's startup)."""
        if self._loop is not None:
            raise RuntimeError('this server is already serving')
        settings = self.config.worker
        configure_logging(settings.log_level, settings.log_dictconfig, settings.log_enabled)
        interface = load_interface(settings.interface)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        worker: InterfaceWorker | None = None
        try:
            self.listener = open_listener(self.config.bind)
            if settings.http3:
                self._quic = QuicSlot(quic_socket(self.listener.socket))
            worker = await self._start_worker(interface)
            logger.info(
                'Embedded granian (interface %s) listening at: %s', settings.interface, self.listener.description
            )
            if self._quic is not None:
                logger.info('HTTP/3 over QUIC at: udp://%s', socket_address(self._quic.socket))
            while not self._stop_requested:
                await self._wake.wait()
                self._wake.clear()
                if self._reload_requested and not self._stop_requested:
                    self._reload_requested = False
                    logger.info('Reloading the embedded server')
                    # The socket stays open: connections that arrive meanwhile wait in its backlog.
                    current, worker = worker, None
                    await current.stop()
                    current.finish()
                    worker = await self._start_worker(interface)
            logger.info('Stopping the embedded server')
        finally:
            if worker is not None:
                await worker.stop()
                worker.finish()
            if self.listener is not None:
                self.listener.close()
            if self._quic is not None:
                self._quic.socket.close()
                self._quic = None
            self._loop = self._wake = None
            self._stop_requested = self._reload_requested = False

    async def _start_worker(self, interface: Any) -> InterfaceWorker:
        app = self.target
        if self.config.worker.factory:
            app = app()
        assert self._loop is not None and self.listener is not None
        settings = self.config.worker
        if self._quic is not None:
            settings = self._quic.worker_settings(settings)
        try:
            worker: InterfaceWorker = interface.create_worker(app, self._loop, self.listener.fileno(), settings)
        except TypeError as exc:
            raise ConfigurationError(str(exc), key='target') from None
        await worker.start_serving()
        return worker

    def stop(self) -> None:
        """Ask `serve()` to drain and return; callable from any thread."""
        self._stop_requested = True
        self._notify()

    def reload(self) -> None:
        """Ask `serve()` to restart the app (drain, shutdown, a new app from the factory, startup)."""
        self._reload_requested = True
        self._notify()

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)
