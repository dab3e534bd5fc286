"""The worker process: load the app, run the interface's worker on an event loop, drain on stop.

Each interface package provides `granian.<interface>.create_worker(app, loop, listener_fd, settings)`,
returning an object with `start()` (begin serving; called with the loop not yet running), `async
start_serving()` (the same on a running loop, for the embedded server), `async stop()` (stop
accepting, drain in-flight requests, run shutdown hooks) and `finish()` (hooks that run once the loop
has stopped, such as RSGI's `__rsgi_del__`; the embedded server calls it on its running loop). Both starts raise
`granian.errors.FatalError` with a one-line reason when the app refuses to start (for example an
ASGI lifespan startup failure).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import signal
import socket
import sys
from typing import Any, Protocol

from .._imports import TargetLoadError, load_target, prepare_import_path
from .._interfaces import load_interface
from .._loops import loops
from ..errors import ConfigurationError, FatalError
from ..log import configure_logging, logger
from .config import WorkerSettings
from .listen import QuicSlot, reuse_port_member
from .process import process_title, set_process_title

#: Exit code of a worker that could not start; the supervisor has already been told why.
EXIT_STARTUP_FAILED = 3


class InterfaceWorker(Protocol):
    """What an interface package's `create_worker` returns."""

    def start(self) -> None:
        """Begin serving."""

    async def start_serving(self) -> None:
        """Begin serving, on a running loop."""

    def requests_received(self) -> int:
        """Requests received since serving started."""

    async def stop(self) -> None:
        """Stop accepting, drain, run shutdown hooks."""

    def finish(self) -> None:
        """Run the hooks that belong after the loop stopped serving."""


#: Seconds between two looks at the request count when `workers_max_requests` is set.
REQUEST_COUNT_INTERVAL = 0.25


def watch_request_count(
    event_loop: asyncio.AbstractEventLoop, worker: InterfaceWorker, limit: int, recycle: Any, name: str
) -> None:
    """Tell the supervisor (once) when `worker` has received `limit` requests: it starts a replacement,
    and this worker keeps serving until the replacement is ready."""

    def look() -> None:
        if worker.requests_received() < limit:
            event_loop.call_later(REQUEST_COUNT_INTERVAL, look)
            return
        logger.info('%s received %d requests (limit %d)', name, worker.requests_received(), limit)
        try:
            recycle.send_bytes(b'max-requests')
        except OSError:
            pass  # the supervisor is gone; the worker is being stopped anyway

    event_loop.call_later(REQUEST_COUNT_INTERVAL, look)


def follow_supervisor() -> None:
    """Stop (as on SIGTERM: in-flight requests finish) when the supervisor dies, even by SIGKILL: an
    orphaned worker would go on serving old code and holding the port a restarted server needs."""
    supervisor = multiprocessing.parent_process()
    if supervisor is None:
        return
    from .. import _core

    if _core.stop_with_parent(signal.SIGTERM) and os.getppid() != supervisor.pid:
        # The supervisor died before the request took effect.
        sys.exit(0)


def run_worker(
    settings: WorkerSettings,
    index: int,
    listener: socket.socket,
    ready: Any,
    recycle: Any,
    metrics_slot: int | None = None,
    quic: QuicSlot | None = None,
) -> None:
    """Entry point of a worker process; `recycle` is the write end of its supervisor's pipe,
    `metrics_slot` its slot of the supervisor's metrics region (None without metrics), `quic` its
    slot's HTTP/3 UDP socket and lock (None without --http3)."""
    follow_supervisor()
    if metrics_slot is not None:
        settings = settings.replace(metrics_slot=metrics_slot)
    if quic is not None:
        settings = quic.worker_settings(settings)
    configure_logging(settings.log_level, settings.log_dictconfig, settings.log_enabled)
    name = f'worker-{index}'
    set_process_title(f'{process_title(settings, listener)} {name}')
    try:
        interface = load_interface(settings.interface)
        prepare_import_path(settings.working_dir)
        app = load_target(settings.target, settings.factory)
        event_loop = loops.get(settings.loop)()
    except TargetLoadError as exc:
        logger.error('Cannot load application %r: %s', settings.target, exc)
        sys.exit(EXIT_STARTUP_FAILED)
    except (ConfigurationError, RuntimeError) as exc:
        logger.error('%s', exc)
        sys.exit(EXIT_STARTUP_FAILED)
    asyncio.set_event_loop(event_loop)
    try:
        if settings.reuse_port:
            # The supervisor only reserved the address: listen on this worker's own socket.
            reserved, listener = listener, reuse_port_member(listener, settings.backlog)
            reserved.close()
        worker: InterfaceWorker = interface.create_worker(app, event_loop, listener.fileno(), settings)
        worker.start()
    except FatalError as exc:
        logger.error('%s', exc)
        sys.exit(EXIT_STARTUP_FAILED)
    except Exception as exc:  # noqa: BLE001 - any failure here is reported as one line
        logger.error('%s could not start: %s: %s', name, type(exc).__name__, exc)
        sys.exit(EXIT_STARTUP_FAILED)

    stopping = event_loop.create_future()

    def request_stop() -> None:
        if not stopping.done():
            stopping.set_result(None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        event_loop.add_signal_handler(signum, request_stop)
    # Reload is the supervisor's business; a worker ignores SIGHUP sent to the process group.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    if settings.workers_max_requests is not None:
        limit = settings.workers_max_requests + random.randint(0, settings.workers_max_requests_jitter)
        watch_request_count(event_loop, worker, limit, recycle, name)
    # The core serves its own duplicates of the socket and closes them when it stops accepting; this
    # one must not keep a reuse-port socket open (and receiving connections) while the worker drains.
    listener.close()
    logger.info('Started %s (pid %d)', name, os.getpid())
    ready.set()
    try:
        event_loop.run_until_complete(stopping)
        logger.info('Stopping %s (pid %d)', name, os.getpid())
        event_loop.run_until_complete(worker.stop())
        worker.finish()
    finally:
        event_loop.close()
        # The supervisor repeats its stop signal until the process has exited; closing the loop
        # removed the handlers, and the default action would kill a worker that is finishing cleanly.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
