"""The supervisor: binds the listening socket, runs worker processes, handles signals.

Workers share one listening socket bound here and inherited by every worker, so replacing a worker
(SIGHUP, respawn) never drops connections queued in the kernel: the new worker is ready before the
old one stops accepting, and the backlog stays open throughout.

On Linux a worker is a fork of the supervisor (`worker_start_method`): it shares the memory of the
interpreter, the core and the interface module, which the supervisor has loaded, instead of loading
its own copy (about 10 MiB less per worker).
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.connection
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .._imports import target_package
from .._interfaces import load_interface
from ..constants import HTTPModes, Interfaces, LogLevels, Loops, RuntimeModes, SSLProtocols, TaskImpl
from ..errors import ConfigurationError, FatalError
from ..http import HTTP1Settings, HTTP2Settings
from ..log import configure_logging, logger
from ..options import check_kwargs
from .config import ServerConfig, WorkerSettings, build_config, check_tls
from .listen import (
    Listener,
    QuicSlot,
    migrate_req_notice,
    open_listener,
    quic_socket,
    socket_address,
    systemd_sockets,
)
from .metrics import SupervisorMetrics
from .process import EnvFiles, PidFile, process_title, require_process_titles, set_process_title
from .reload import Reloader
from .worker import EXIT_STARTUP_FAILED, run_worker

#: How long a new worker may take to import the app and start serving.
WORKER_START_TIMEOUT = 60.0

#: A worker (by index) that fails this many times within CRASH_LOOP_WINDOW seconds stops the server
#: instead of being respawned again.
CRASH_LOOP_FAILURES = 5
CRASH_LOOP_WINDOW = 60.0

#: Seconds between repeated stop signals to a worker that has not exited yet (the worker ignores repeats).
STOP_RESEND_INTERVAL = 1.0

#: Name prefix of worker processes (multiprocessing sets it in the child before importing anything).
WORKER_NAME_PREFIX = 'granian-worker-'


def in_spawned_worker() -> bool:
    """True in a worker process while multiprocessing imports the parent's main script into it.

    A script that calls `Granian(...).serve()` at module level, without an `if __name__ ==
    '__main__':` guard, runs that call again in every spawned worker; there it must do nothing.
    """
    # multiprocessing names the child before it imports the main script (parent_process() is set later).
    return multiprocessing.current_process().name.startswith(WORKER_NAME_PREFIX)


def worker_start_method(settings: WorkerSettings) -> tuple[str, str]:
    """How workers start: `fork` (a copy of the supervisor, sharing its memory) where that is sound,
    else `spawn` (a fresh interpreter), with the reason for spawning.

    A fork copies the supervisor as it is when a worker starts, also on SIGHUP, so forking needs:
    - no Python thread besides the one forking: a lock another thread holds would stay held in the
      worker. `reload` runs a watcher thread, and its replacements must import changed code anew.
      (The metrics endpoint is a Rust thread that runs no Python code; the worker never touches
      what it holds.)
    - the app not imported by the supervisor (a script's own imports): a fork would keep that copy,
      and SIGHUP would not serve changed code. The CLI imports no app code.
    """
    if sys.platform != 'linux':
        return 'spawn', 'workers are forked on Linux only'
    if settings.reload:
        return 'spawn', 'reload watches files in a thread and loads changed code'
    if threading.active_count() > 1:
        return 'spawn', 'the supervisor process runs other threads'
    package = target_package(settings.target)
    if package in sys.modules:
        return 'spawn', f'the supervisor has imported {package!r} itself'
    return 'fork', ''


def _run_forked_worker(leave_supervisor: Callable[[], None], *args: Any) -> None:
    """Entry point of a forked worker: drop the supervisor's signal handlers and descriptors, then run."""
    leave_supervisor()
    run_worker(*args)


class WorkerProcess:
    """One running worker process and its readiness flag."""

    def __init__(
        self,
        context: Any,
        config: ServerConfig,
        index: int,
        listener: socket.socket,
        metrics: SupervisorMetrics | None = None,
        leave_supervisor: Callable[[], None] | None = None,
        quic: QuicSlot | None = None,
    ) -> None:
        """`leave_supervisor` runs first in a forked worker (None: the worker is spawned); `quic` is
        the slot's HTTP/3 socket and lock (None without --http3)."""
        self.index = index
        self.ready = context.Event()
        self._metrics = metrics
        #: Its slot of the metrics region (None without metrics).
        self.metrics_slot = metrics.claim(index) if metrics is not None else None
        # The worker writes to this pipe when it has served its `workers_max_requests`.
        self.recycle_requests, recycle_writer = context.Pipe(duplex=False)
        self._pipe_ends = (self.recycle_requests, recycle_writer)
        args: tuple[Any, ...] = (config.worker, index, listener, self.ready, recycle_writer, self.metrics_slot, quic)
        target: Callable[..., None] = run_worker
        if leave_supervisor is not None:
            target, args = _run_forked_worker, (leave_supervisor, *args)
        #: Whether the process is a fork of this one.
        self.forked = leave_supervisor is not None
        self.process = context.Process(
            target=target,
            args=args,
            name=f'{WORKER_NAME_PREFIX}{index}',
            daemon=False,
        )
        #: Readings of its resident memory over `workers_max_rss` in a row.
        self.rss_strikes = 0
        #: When (time.monotonic()) the worker is due for replacement by `workers_lifetime`.
        self.due: float | None = None
        lifetime = config.worker.workers_lifetime
        if lifetime is not None:
            self.due = time.monotonic() + lifetime + random.uniform(0, config.worker.workers_lifetime_jitter)

    def start(self) -> None:
        """Start the process. A fork starts with the supervisor's objects frozen: its garbage collector
        then never writes to the pages it shares with the supervisor (which would copy them). Objects
        an embedding script froze itself stay frozen."""
        if not self.forked:
            self.process.start()
            return
        frozen_before = gc.get_freeze_count()
        gc.freeze()
        try:
            self.process.start()
        finally:
            if not frozen_before:
                gc.unfreeze()

    def rss_mib(self) -> float | None:
        """The worker's resident memory in MiB (Linux /proc), None when it cannot be read."""
        try:
            with open(f'/proc/{self.process.pid}/status', encoding='ascii') as status:
                for line in status:
                    if line.startswith('VmRSS:'):
                        return int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            pass
        return None

    def asked_for_replacement(self) -> bool:
        """Whether the worker has written to its recycle pipe (read without waiting)."""
        try:
            if self.recycle_requests.poll():
                self.recycle_requests.recv_bytes()
                return True
        except (EOFError, OSError):
            pass
        return False

    def close(self) -> None:
        """Release the pipe (and the metrics slot) once the process has exited."""
        for end in self._pipe_ends:
            end.close()
        if self._metrics is not None:
            self._metrics.release(self.metrics_slot)
            self._metrics, self.metrics_slot = None, None

    def wait_ready(self, timeout: float, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Wait until the worker serves; False if it exited, timed out or `cancelled()` first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not cancelled():
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
        uds: str | os.PathLike[str] | None = None,
        uds_permissions: int | None = None,
        interface: Interfaces | str = 'rsgi',
        workers: int = 1,
        blocking_threads: int | None = None,
        blocking_threads_idle_timeout: float = 30,
        runtime_threads: int = 1,
        runtime_blocking_threads: int = 512,
        runtime_mode: RuntimeModes | str = 'auto',
        loop: Loops | str = 'auto',
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
        respawn_failed_workers: bool = False,
        respawn_interval: float = 3.5,
        workers_max_rss: int | None = None,
        rss_sample_interval: float = 30,
        rss_samples: int = 1,
        workers_lifetime: float | None = None,
        workers_lifetime_jitter: float = 0,
        workers_max_requests: int | None = None,
        workers_max_requests_jitter: int = 0,
        workers_drain_timeout: float | None = None,
        workers_kill_timeout: float | None = None,
        factory: bool = False,
        working_dir: str | os.PathLike[str] | None = None,
        env_files: list[str | os.PathLike[str]] | None = None,
        static_path_route: list[str] | None = None,
        static_path_mount: list[str | os.PathLike[str]] | None = None,
        static_path_dir_to_file: str | None = None,
        static_path_expires: float = 86400,
        metrics_enabled: bool = False,
        metrics_scrape_interval: float = 15,
        metrics_address: str = '127.0.0.1',
        metrics_port: int = 9090,
        process_name: str | None = None,
        pid_file: str | os.PathLike[str] | None = None,
        reload: bool = False,
        reload_paths: list[str | os.PathLike[str]] | None = None,
        reload_ignore_dirs: list[str] | None = None,
        reload_ignore_patterns: list[str] | None = None,
        reload_ignore_paths: list[str | os.PathLike[str]] | None = None,
        reload_tick: int = 50,
        reload_ignore_worker_failure: bool = False,
        ws_max_size: int = 16777216,
        ws_ping_interval: float = 20.0,
        ws_ping_timeout: float = 20.0,
        ws_per_message_deflate: bool = True,
        fd: int | None = None,
        reuse_port: bool = False,
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
        self._wakeup: socket.socket | None = None
        #: Whether workers are forked from this process (`worker_start_method`), decided when serving starts.
        self._fork_workers = False
        self._stop_requested = False
        self._reload_requested = False
        self._env_files: EnvFiles | None = None
        self._reloader: Reloader | None = None
        #: The files whose change asked for the pending reload (empty for SIGHUP).
        self._changed_files: list[str] = []
        #: When the next reading of the workers' memory is due (`workers_max_rss`).
        self._rss_due: float | None = None
        #: Monotonic times of recent unexpected exits, by worker index (crash-loop detection).
        self._failures: dict[int, list[float]] = {}
        #: The metrics region and endpoint while serving with `metrics_enabled`.
        self._metrics: SupervisorMetrics | None = None
        #: The HTTP/3 UDP socket and lock of each worker slot (see `_bind_quic`); empty without --http3.
        self._quic_slots: dict[int, QuicSlot] = {}
        #: The directory of the slots' lock files (None without --http3).
        self._quic_locks: str | None = None

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

    def _files_changed(self, paths: list[str]) -> None:
        """Called by the reloader's thread: replace the workers."""
        self._changed_files = paths
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
        if in_spawned_worker():
            return
        config = self.config
        settings = config.worker
        configure_logging(settings.log_level, settings.log_dictconfig, settings.log_enabled)
        load_interface(config.worker.interface)
        self._check_native_version()
        require_process_titles(settings)
        if settings.task_impl == 'rust':
            logger.warning("task_impl 'rust' is not available: requests run as asyncio tasks")
        self._env_files = EnvFiles(settings.env_files) if settings.env_files else None
        if self._env_files is not None:
            self._env_files.load()
        self._reloader = Reloader(settings, self._files_changed) if settings.reload else None
        # The stop signals are ours before the pid file exists and the socket is bound: from the
        # moment a client can connect, SIGTERM is a graceful stop that removes the pid file, never
        # the default action (death with the pid file left behind).
        wakeup, self._signal_write = socket.socketpair()
        self._wakeup = wakeup
        wakeup.setblocking(False)
        self._signal_write.setblocking(False)
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        signal.signal(signal.SIGINT, self.signal_handler_interrupt)
        signal.signal(signal.SIGTERM, self.signal_handler_interrupt)
        signal.signal(signal.SIGHUP, self.signal_handler_reload)
        pid_file = PidFile(settings.pid_file) if settings.pid_file else None
        try:
            if pid_file is not None:
                pid_file.claim()
            try:
                self._serve(config, wakeup)
            finally:
                if pid_file is not None:
                    pid_file.release()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            wakeup.close()
            self._signal_write.close()
            self._wakeup, self._signal_write = None, None

    def _leave_supervisor(self) -> None:
        """Runs first in a forked worker: the supervisor's signal handlers and wake-up sockets are not its
        own (a stop signal before the worker's loop handles it acts as in a spawned worker)."""
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for end in (self._wakeup, self._signal_write):
            if end is not None:
                end.close()
        self._wakeup, self._signal_write = None, None

    def _serve(self, config: ServerConfig, wakeup: socket.socket) -> None:
        bound = self._bind(config)
        listener = bound.socket
        if config.worker.http3:
            try:
                self._bind_quic(config, listener)
            except FatalError:
                bound.close()
                raise
        set_process_title(process_title(config.worker, listener))
        if config.worker.metrics_enabled:
            try:
                self._metrics = SupervisorMetrics(config)
            except FatalError as exc:
                bound.close()
                logger.error('%s', exc)
                raise FatalError(str(exc), logged=True) from None
            config = config.with_worker(metrics_region=self._metrics.region)
        method, reason = worker_start_method(config.worker)
        self._fork_workers = method == 'fork'
        logger.debug('Workers are %s', 'forked' if self._fork_workers else f'spawned: {reason}')
        context = multiprocessing.get_context(method)
        workers: dict[int, WorkerProcess] = {}
        failure: FatalError | None = None
        try:
            for hook in self._startup_hooks:
                hook()
            logger.info('Starting granian (interface %s, %d worker(s))', config.worker.interface, config.workers)
            logger.info('Listening at: %s', bound.description)
            if config.worker.http3:
                logger.info('HTTP/3 over QUIC at: udp://%s', socket_address(bound.socket))
            if self._metrics is not None:
                self._metrics.serve()
            notice = migrate_req_notice() if config.bind.reuse_port and config.workers > 1 else None
            if notice is not None:
                logger.warning('%s', notice)
            for index in range(1, config.workers + 1):
                worker = self._start_worker(context, config, index, listener)
                workers[index] = worker
                if not worker.wait_ready(WORKER_START_TIMEOUT):
                    raise self._startup_failure(worker)
            if self._reloader is not None:
                self._reloader.start()
            if config.worker.workers_max_rss is not None:
                self._rss_due = time.monotonic() + config.worker.rss_sample_interval
            failure = self._supervise(context, config, listener, workers, wakeup)
        except FatalError as exc:
            failure = exc
        finally:
            if self._reloader is not None:
                self._reloader.stop()
            # Closed before the workers drain: once they stop accepting (serving what already waits
            # in the backlog), new clients are refused at once rather than queued and then reset.
            bound.close()
            self._close_quic()
            self._finish(workers.values(), config)
            if self._metrics is not None:
                self._metrics.close()
                self._metrics = None
        for hook in self._shutdown_hooks:
            hook()
        if failure is not None:
            raise failure
        logger.info('Server stopped')

    def _count(self, counter: str) -> None:
        if self._metrics is not None:
            self._metrics.count(counter)

    def _check_native_version(self) -> None:
        from .. import __version__, _core

        if _core.__version__ != __version__:
            raise ConfigurationError(
                f'granian-core {__version__} found a native module of version {_core.__version__}; '
                'reinstall granian-core'
            )

    def _bind(self, config: ServerConfig) -> Listener:
        try:
            return open_listener(config.bind, inherited=systemd_sockets())
        except FatalError as exc:
            logger.error('%s', exc)
            raise FatalError(str(exc), logged=True) from None

    def _bind_quic(self, config: ServerConfig, listener: socket.socket) -> None:
        """One HTTP/3 UDP socket per worker slot, kept for the server's life: a replaced worker takes
        over its slot's socket, so the SO_REUSEPORT group (over which the kernel hashes each client
        to a socket) never changes, and no other worker's clients move (docs/http3.md). Each slot
        has a lock file, which its serving worker holds (see `QuicSlot`)."""
        self._quic_locks = tempfile.mkdtemp(prefix='granian-http3-')
        try:
            for index in range(1, config.workers + 1):
                lock_path = os.path.join(self._quic_locks, f'slot-{index}.lock')
                self._quic_slots[index] = QuicSlot(quic_socket(listener), lock_path)
        except FatalError as exc:
            self._close_quic()
            logger.error('%s', exc)
            raise FatalError(str(exc), logged=True) from None

    def _close_quic(self) -> None:
        for slot in self._quic_slots.values():
            slot.socket.close()
        self._quic_slots = {}
        if self._quic_locks is not None:
            shutil.rmtree(self._quic_locks, ignore_errors=True)
            self._quic_locks = None

    def _start_worker(self, context: Any, config: ServerConfig, index: int, listener: socket.socket) -> WorkerProcess:
        leave = self._leave_supervisor if self._fork_workers else None
        quic = self._quic_slots.get(index)
        worker = WorkerProcess(context, config, index, listener, self._metrics, leave, quic)
        worker.start()
        self._count('workers_spawns')
        if worker.due is not None:
            logger.info('worker-%d will be replaced in %.1f s (lifetime)', index, worker.due - time.monotonic())
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
            recycle = [w.recycle_requests for w in workers.values()]
            multiprocessing.connection.wait([*sentinels, *recycle, wakeup], timeout=self._wait_time(workers))
            try:
                while wakeup.recv(64):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            if self._stop_requested:
                continue
            for index, worker in list(workers.items()):
                # Not only when its sentinel is ready: a process the worker forked (an app's process
                # pool) keeps the worker's end of that pipe open after the worker died. The loop
                # wakes at least once a second; `is_alive` reaps the worker when it has exited.
                if not worker.process.is_alive():
                    how = _exit_description(worker.process.exitcode)
                    logger.error('worker-%d (pid %s) exited unexpectedly %s', index, worker.process.pid, how)
                    worker.close()
                    if config.worker.reload and config.worker.reload_ignore_worker_failure:
                        logger.info('worker-%d is started again at the next change', index)
                        del workers[index]
                        continue
                    if not config.worker.respawn_failed_workers:
                        return FatalError(f'worker-{index} exited unexpectedly', logged=True)
                    failure = self._respawn(context, config, listener, workers, index)
                    if failure is not None:
                        return failure
            now = time.monotonic()
            sample = self._rss_due is not None and now >= self._rss_due
            if sample:
                self._rss_due = now + config.worker.rss_sample_interval
            for index in sorted(workers):
                worker = workers[index]
                if self._stop_requested or not worker.process.is_alive():
                    continue
                if worker.asked_for_replacement():
                    logger.info('worker-%d served its maximum number of requests; replacing it', index)
                    self._count('workers_respawns_for_requests')
                elif worker.due is not None and now >= worker.due:
                    logger.info('worker-%d reached its lifetime; replacing it', index)
                    self._count('workers_respawns_for_lifetime')
                elif sample and self._over_memory_limit(worker, config):
                    self._count('workers_respawns_for_rss')
                    logger.info(
                        'worker-%d used more than %d MiB in %d reading(s) in a row; replacing it',
                        index,
                        config.worker.workers_max_rss,
                        worker.rss_strikes,
                    )
                else:
                    continue
                self._replace(context, config, listener, workers, index)

    @staticmethod
    def _over_memory_limit(worker: WorkerProcess, config: ServerConfig) -> bool:
        """Read the worker's memory; True once `rss_samples` readings in a row were over the limit."""
        rss = worker.rss_mib()
        if rss is not None and rss > config.worker.workers_max_rss:
            worker.rss_strikes += 1
        else:
            worker.rss_strikes = 0
        return worker.rss_strikes >= config.worker.rss_samples

    def _wait_time(self, workers: dict[int, WorkerProcess]) -> float:
        """Seconds the supervisor may sleep: at most 1, less when a lifetime ends or a memory reading is due sooner."""
        moments = [worker.due for worker in workers.values() if worker.due is not None]
        if self._rss_due is not None:
            moments.append(self._rss_due)
        return max(0.0, min([1.0, *(moment - time.monotonic() for moment in moments)]))

    def _respawn(
        self, context: Any, config: ServerConfig, listener: socket.socket, workers: dict[int, WorkerProcess], index: int
    ) -> FatalError | None:
        """Replace the failed worker `index`, retrying a replacement that fails to start, until it serves
        or the failures of this worker amount to a crash loop."""
        failures = self._failures.setdefault(index, [])
        while not self._stop_requested:
            now = time.monotonic()
            failures[:] = [*(moment for moment in failures if now - moment < CRASH_LOOP_WINDOW), now]
            if len(failures) >= CRASH_LOOP_FAILURES:
                message = (
                    f'worker-{index} failed {len(failures)} times within {CRASH_LOOP_WINDOW:g} s: '
                    'crash loop, stopping the server'
                )
                logger.error('%s', message)
                return FatalError(message, logged=True)
            worker = self._start_serving(context, config, listener, index)
            if worker is not None:
                workers[index] = worker
                logger.info('Respawned worker-%d (pid %s)', index, worker.process.pid)
                self._count('workers_respawns_for_err')
                return None
            if not self._stop_requested:
                logger.error('Replacement for worker-%d failed to start', index)
        return None

    def _start_serving(
        self, context: Any, config: ServerConfig, listener: socket.socket, index: int
    ) -> WorkerProcess | None:
        """A new worker for slot `index` once it serves; None (and the process gone) if it did not start
        or a stop was requested first."""
        worker = self._start_worker(context, config, index, listener)
        if worker.wait_ready(WORKER_START_TIMEOUT, lambda: self._stop_requested):
            return worker
        self._finish([worker], config)
        return None

    def _pause(self, seconds: float) -> None:
        """Sleep, waking early for a stop request."""
        deadline = time.monotonic() + seconds
        while not self._stop_requested and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _reload(
        self, context: Any, config: ServerConfig, listener: socket.socket, workers: dict[int, WorkerProcess]
    ) -> None:
        changed, self._changed_files = self._changed_files, []
        if changed:
            shown = ', '.join(changed[:5]) + (f' and {len(changed) - 5} more' if len(changed) > 5 else '')
            logger.info('Reloading workers: %s changed', shown)
        else:
            logger.info('Reloading workers')
        if self._env_files is not None:
            try:
                self._env_files.load()
            except FatalError as exc:
                logger.error('%s; keeping the variables read before', exc)
        for hook in self._reload_hooks:
            hook()
        for index in range(1, config.workers + 1):
            if index in workers:
                self._count('workers_respawns_for_reload')
                self._replace(context, config, listener, workers, index)
                continue
            # A slot left empty by a failure that --reload-ignore-worker-failure let pass.
            worker = self._start_serving(context, config, listener, index)
            if worker is not None:
                workers[index] = worker
            elif not self._stop_requested:
                logger.error('worker-%d failed to start; it is tried again at the next change', index)

    def _replace(
        self, context: Any, config: ServerConfig, listener: socket.socket, workers: dict[int, WorkerProcess], index: int
    ) -> None:
        """Start a new worker for `index`; once it serves (and `respawn_interval` later) stop the old one."""
        old = workers[index]
        new = self._start_serving(context, config, listener, index)
        if new is None:
            if not self._stop_requested:
                logger.error('Replacement for worker-%d failed to start; keeping the running one', index)
            return
        workers[index] = new
        self._pause(config.worker.respawn_interval)
        self._finish([old], config)

    def _finish(self, workers: Iterable[WorkerProcess], config: ServerConfig) -> None:
        """Ask `workers` to drain and exit; kill those still running after `workers_kill_timeout`."""
        workers = [worker for worker in workers if worker.process.pid is not None]
        for worker in workers:
            worker.stop()
        timeout = config.worker.workers_kill_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in workers:
            while worker.process.is_alive() and (deadline is None or time.monotonic() < deadline):
                remaining = STOP_RESEND_INTERVAL if deadline is None else deadline - time.monotonic()
                worker.process.join(max(0.0, min(STOP_RESEND_INTERVAL, remaining)))
                # A worker that was between installing its signal handlers and running its event loop
                # may have missed the signal (uvloop only reads signals while it runs): ask again.
                worker.stop()
            if worker.process.is_alive():
                logger.warning('worker-%d did not stop within %g s; killing it', worker.index, timeout)
                worker.process.kill()
                worker.process.join()
            worker.close()


def _exit_description(code: int | None) -> str:
    """How a process ended, for the log: `with code 3`, or `killed by SIGSEGV (signal 11)`."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = 'a signal'
        return f'killed by {name} (signal {-code})'
    return f'with code {code}'
