"""The supervisor: binds the listening socket, runs worker processes, handles signals.

Workers share one listening socket bound here and inherited by every worker, so replacing a worker
(SIGHUP) never drops connections queued in the kernel: the new worker is ready before the old one
stops accepting, and the backlog stays open throughout.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from .._interfaces import load_interface
from ..constants import HTTPModes, Interfaces, LogLevels, Loops, RuntimeModes, SSLProtocols
from ..errors import ConfigurationError, FatalError
from ..http import HTTP1Settings, HTTP2Settings
from ..log import configure_logging, logger
from ..options import check_kwargs
from .config import ServerConfig, build_config, check_tls
from .worker import EXIT_STARTUP_FAILED, run_worker

#: How long a new worker may take to import the app and start serving.
WORKER_START_TIMEOUT = 60.0

#: Linux's cap on listen backlogs.
SOMAXCONN_PATH = '/proc/sys/net/core/somaxconn'


def read_somaxconn() -> int | None:
    """The kernel's cap on listen backlogs, where the system tells it."""
    try:
        with open(SOMAXCONN_PATH, encoding='ascii') as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def somaxconn_notice(backlog: int, somaxconn: int | None) -> str | None:
    """What to log when the kernel will queue fewer connections than `backlog` asks for."""
    if somaxconn is None or backlog <= somaxconn:
        return None
    return (
        f'backlog {backlog} is above net.core.somaxconn ({somaxconn}): the kernel queues at most '
        f'{somaxconn} connections; raise the sysctl to use more'
    )


class WorkerProcess:
    """One running worker process and its readiness flag."""

    def __init__(self, context: Any, config: ServerConfig, index: int, listener: socket.socket) -> None:
        self.index = index
        self.ready = context.Event()
        self.process = context.Process(
            target=run_worker,
            args=(config.worker, index, listener, self.ready),
            name=f'granian-worker-{index}',
            daemon=False,
        )

    def start(self) -> None:
        """Spawn the process."""
        self.process.start()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the worker serves; False if it exited or timed out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.wait(0.05):
                return True
            if not self.process.is_alive():
                return False
        return False

    def stop(self) -> None:
        """Ask the worker to drain and exit."""
        if self.process.is_alive() and self.process.pid is not None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


class Server:
    """A granian server; `Granian(target, **options).serve()` runs it until a stop signal."""

    def __init__(
        self,
        target: str,
        # BEGIN GENERATED: options (tools/options.py)
        address: str = '127.0.0.1',
        port: int = 8000,
        interface: Interfaces | str = 'rsgi',
        workers: int = 1,
        blocking_threads: int | None = None,
        blocking_threads_idle_timeout: float = 30,
        runtime_threads: int = 1,
        runtime_mode: RuntimeModes | str = 'auto',
        loop: Loops | str = 'auto',
        http: HTTPModes | str = 'auto',
        websockets: bool = True,
        backlog: int = 1024,
        backpressure: int | None = None,
        http1_settings: HTTP1Settings | None = None,
        http2_settings: HTTP2Settings | None = None,
        log_enabled: bool = True,
        log_level: LogLevels | str = 'info',
        log_dictconfig: dict[str, Any] | None = None,
        ssl_cert: str | os.PathLike[str] | None = None,
        ssl_key: str | os.PathLike[str] | None = None,
        ssl_key_password: str | None = None,
        ssl_protocol_min: SSLProtocols | str = 'tls1.3',
        ssl_ca: str | os.PathLike[str] | None = None,
        ssl_crl: list[str | os.PathLike[str]] | None = None,
        ssl_client_verify: bool = False,
        url_path_prefix: str | None = None,
        factory: bool = False,
        working_dir: str | os.PathLike[str] | None = None,
        ws_max_size: int = 16777216,
        ws_ping_interval: float = 20.0,
        ws_ping_timeout: float = 20.0,
        ws_per_message_deflate: bool = True,
        # END GENERATED
    ) -> None:
        # Every keyword argument is an option of granian.options; validated here, so a bad value fails early.
        options = {name: value for name, value in locals().items() if name not in ('self', 'target')}
        self.target = target
        self.config = build_config(target, check_kwargs(options))
        check_tls(self.config.worker)
        self._startup_hooks: list[Callable[[], Any]] = []
        self._reload_hooks: list[Callable[[], Any]] = []
        self._shutdown_hooks: list[Callable[[], Any]] = []
        # Signal handlers wake the supervisor loop through a socket pair that exists while serve() runs.
        self._signal_write: socket.socket | None = None
        self._stop_requested = False
        self._reload_requested = False

    # Hooks run in the supervisor process, as with Granian 2.8.
    def on_startup(self, hook: Callable[[], Any]) -> Callable[[], Any]:
        """Register a callable run before the workers start."""
        self._startup_hooks.append(hook)
        return hook

    def on_reload(self, hook: Callable[[], Any]) -> Callable[[], Any]:
        """Register a callable run when the workers are replaced (SIGHUP)."""
        self._reload_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: Callable[[], Any]) -> Callable[[], Any]:
        """Register a callable run after the workers stopped."""
        self._shutdown_hooks.append(hook)
        return hook

    def signal_handler_interrupt(self, *_: Any) -> None:
        """Request a graceful stop (SIGINT, SIGTERM)."""
        self._stop_requested = True
        self._wake()

    def signal_handler_reload(self, *_: Any) -> None:
        """Request a worker replacement (SIGHUP)."""
        self._reload_requested = True
        self._wake()

    def _wake(self) -> None:
        try:
            if self._signal_write is not None:
                self._signal_write.send(b'x')
        except OSError:
            pass

    def serve(self) -> None:
        """Run the server until SIGINT/SIGTERM; raises FatalError when it cannot start or a worker dies."""
        config = self.config
        settings = config.worker
        configure_logging(settings.log_level, settings.log_dictconfig, settings.log_enabled)
        load_interface(config.worker.interface)
        self._check_native_version()
        listener = self._bind(config)
        context = multiprocessing.get_context('spawn')
        workers: dict[int, WorkerProcess] = {}
        wakeup, self._signal_write = socket.socketpair()
        wakeup.setblocking(False)
        self._signal_write.setblocking(False)
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        signal.signal(signal.SIGINT, self.signal_handler_interrupt)
        signal.signal(signal.SIGTERM, self.signal_handler_interrupt)
        signal.signal(signal.SIGHUP, self.signal_handler_reload)
        failure: FatalError | None = None
        try:
            for hook in self._startup_hooks:
                hook()
            logger.info('Starting granian (interface %s, %d worker(s))', config.worker.interface, config.workers)
            logger.info('Listening at: %s', config.bind.url)
            for index in range(1, config.workers + 1):
                worker = self._spawn(context, config, index, listener)
                workers[index] = worker
                if not worker.wait_ready(WORKER_START_TIMEOUT):
                    raise self._startup_failure(worker)
            failure = self._supervise(context, config, listener, workers, wakeup)
        except FatalError as exc:
            failure = exc
        finally:
            self._stop_all(workers.values())
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            listener.close()
            wakeup.close()
            self._signal_write.close()
            self._signal_write = None
        for hook in self._shutdown_hooks:
            hook()
        if failure is not None:
            raise failure
        logger.info('Server stopped')

    def _check_native_version(self) -> None:
        from .. import __version__, _core

        if _core.__version__ != __version__:
            raise ConfigurationError(
                f'granian-core {__version__} found a native module of version {_core.__version__}; '
                'reinstall granian-core'
            )

    def _bind(self, config: ServerConfig) -> socket.socket:
        bind = config.bind
        family = socket.AF_INET6 if ':' in bind.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind.address, bind.port))
        except OSError as exc:
            sock.close()
            logger.error('Cannot listen on %s: %s', bind.url, exc.strerror or exc)
            raise FatalError(f'cannot listen on {bind.url}: {exc.strerror or exc}', logged=True) from None
        notice = somaxconn_notice(bind.backlog, read_somaxconn())
        if notice is not None:
            logger.warning('%s', notice)
        sock.listen(bind.backlog)
        sock.set_inheritable(True)
        return sock

    def _spawn(self, context: Any, config: ServerConfig, index: int, listener: socket.socket) -> WorkerProcess:
        worker = WorkerProcess(context, config, index, listener)
        worker.start()
        return worker

    def _startup_failure(self, worker: WorkerProcess) -> FatalError:
        worker.process.join(5)
        code = worker.process.exitcode
        if code == EXIT_STARTUP_FAILED:
            return FatalError(f'worker-{worker.index} failed to start', logged=True)
        logger.error('worker-%d did not start (exit code %s)', worker.index, code)
        return FatalError(f'worker-{worker.index} did not start (exit code {code})', logged=True)

    def _supervise(
        self,
        context: Any,
        config: ServerConfig,
        listener: socket.socket,
        workers: dict[int, WorkerProcess],
        wakeup: socket.socket,
    ) -> FatalError | None:
        while True:
            if self._stop_requested:
                logger.info('Shutting down granian')
                return None
            if self._reload_requested:
                self._reload_requested = False
                self._reload(context, config, listener, workers)
                continue
            sentinels = [w.process.sentinel for w in workers.values()]
            ready = multiprocessing.connection.wait([*sentinels, wakeup], timeout=1.0)
            try:
                while wakeup.recv(64):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            if self._stop_requested:
                continue
            for index, worker in list(workers.items()):
                if worker.process.sentinel in ready and not worker.process.is_alive():
                    code = worker.process.exitcode
                    logger.error('worker-%d (pid %s) exited unexpectedly with code %s', index, worker.process.pid, code)
                    return FatalError(f'worker-{index} exited unexpectedly', logged=True)

    def _reload(
        self, context: Any, config: ServerConfig, listener: socket.socket, workers: dict[int, WorkerProcess]
    ) -> None:
        logger.info('Reloading workers')
        for hook in self._reload_hooks:
            hook()
        for index in sorted(workers):
            old = workers[index]
            new = self._spawn(context, config, index, listener)
            if not new.wait_ready(WORKER_START_TIMEOUT):
                logger.error('Replacement for worker-%d failed to start; keeping the running one', index)
                new.stop()
                new.process.join()
                continue
            workers[index] = new
            old.stop()
            old.process.join()

    def _stop_all(self, workers: Any) -> None:
        workers = list(workers)
        for worker in workers:
            worker.stop()
        for worker in workers:
            if worker.process.pid is not None:
                worker.process.join()
