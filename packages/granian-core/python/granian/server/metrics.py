"""The supervisor's side of the Prometheus metrics (`--metrics`).

Workers count into slots of a memory region the supervisor creates (`granian._core.MetricsRegistry`);
each worker process gets a zeroed slot when it is spawned, and its slot is released (its counters
added to the totals of its worker number) when it has exited. The endpoint is served by the core
on a thread of the supervisor. See docs/metrics.md.
"""

from __future__ import annotations

import socket
import sys

from ..errors import FatalError
from ..log import logger
from .config import ServerConfig
from .listen import endpoint_socket, tcp_url


class SupervisorMetrics:
    """The metrics region and endpoint of one server run."""

    def __init__(self, config: ServerConfig) -> None:
        settings = config.worker
        if not sys.platform.startswith('linux'):
            raise FatalError('--metrics needs Linux (workers share their counters through a memfd)')
        from .. import _core

        # Room for every worker, a replacement of each (reloads overlap old and new), and spares.
        self.registry = _core.MetricsRegistry(2 * config.workers + 2, settings.interface)
        self.socket: socket.socket = endpoint_socket(
            settings.metrics_address, settings.metrics_port, 'the metrics endpoint'
        )
        self.url = tcp_url(*self.socket.getsockname()[:2]) + '/metrics'

    @property
    def region(self) -> str:
        """What workers open the region by (the `metrics_region` worker setting)."""
        return self.registry.path

    def serve(self) -> None:
        self.registry.serve(self.socket.fileno())
        logger.info('Metrics at: %s', self.url)

    def claim(self, index: int) -> int | None:
        """A slot for a new process of worker `index` (None: it runs without metrics, logged)."""
        slot = self.registry.claim(index)
        if slot is None:
            logger.warning('No metrics slot left for worker-%d: its counters are not collected', index)
        return slot

    def release(self, slot: int | None) -> None:
        if slot is not None:
            self.registry.release(slot)

    def count(self, name: str) -> None:
        self.registry.count(name)

    def close(self) -> None:
        self.registry.stop()
        self.socket.close()
