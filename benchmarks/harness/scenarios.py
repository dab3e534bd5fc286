"""The scenario registry: what each scenario requests, which load driver runs it, and its target.

Adding a scenario is one `Scenario(...)` entry in `SCENARIOS` (and a route in the three apps under
benchmarks/apps/ if it needs a new one). A scenario that needs another load generator (WebSocket
echo, for instance) names a new driver, registered in `load.DRIVERS`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

KIB = 1024


def _load_payloads():
    # The apps' own module, so the harness checks against exactly the bytes the apps send.
    path = Path(__file__).resolve().parents[1] / 'apps' / 'payloads.py'
    spec = importlib.util.spec_from_file_location('benchmark_payloads', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


payloads = _load_payloads()
payload = payloads.payload


class Kind(str, Enum):
    """What a scenario exercises; it decides the target ratio."""

    GET = 'get'
    ECHO = 'echo'
    STREAM = 'stream'
    FILE = 'file'


@dataclass(frozen=True)
class Scenario:
    """One request shape, loaded with one driver."""

    name: str
    title: str
    kind: Kind
    method: str
    path: str
    driver: str = 'wrk'
    request_size: int = 0
    response_size: int = 0
    http2: bool = False
    #: h2load streams per connection (HTTP/2 only).
    streams: int = 4
    #: HTTP/1.1 requests written back to back on a connection before their answers are read (h2load
    #: `--h1 -m`): with 16 in flight per connection the server, not the one-core client, sets the pace.
    pipeline: int = 1
    #: Served over HTTPS (the servers run with a test certificate; see Runner).
    tls: bool = False
    #: A new connection (and TLS handshake) per request instead of keep-alive: every request says
    #: `Connection: close` (both HTTP/1.1 drivers, wrk and h2load-paced, send it).
    reconnect: bool = False
    #: New connections per second, opened at that fixed pace (driver `h2load-paced`, one request per
    #: connection), instead of a fixed number of connections kept busy.
    connection_rate: int = 0
    #: Each request costs the load generator about as much as the server (a full TLS handshake on each
    #: side), so at full speed its one core would set the pace; such scenarios offer every server the
    #: same fixed load (`connection_rate`) and are compared by requests per second of server CPU time.
    client_bound: bool = False

    @property
    def handshakes_in_round(self) -> bool:
        """True when each measured round opens its keep-alive connections with TLS handshakes that
        wrk makes on the core it measures latency with: while it handshakes, the answers of the
        connections already open wait in its socket buffers, so a short round's p99 is that start."""
        return self.tls and not self.reconnect and self.driver == 'wrk'

    @property
    def echoes(self) -> bool:
        """True when the response body must equal the request body."""
        return self.kind in (Kind.ECHO, Kind.STREAM)


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario('get-10b', 'GET 10 B', Kind.GET, 'GET', '/b/10', response_size=10),
        Scenario('get-1k', 'GET 1 KiB', Kind.GET, 'GET', '/b/1k', response_size=KIB),
        Scenario('get-10k', 'GET 10 KiB', Kind.GET, 'GET', '/b/10k', response_size=10 * KIB),
        Scenario('get-100k', 'GET 100 KiB', Kind.GET, 'GET', '/b/100k', response_size=100 * KIB),
        Scenario(
            'pipe-get-10b',
            'GET 10 B, 16 pipelined',
            Kind.GET,
            'GET',
            '/b/10',
            driver='h2load',
            response_size=10,
            pipeline=16,
        ),
        Scenario('echo-1k', 'POST echo 1 KiB (whole body)', Kind.ECHO, 'POST', '/echo', request_size=KIB),
        Scenario('stream-100k', 'POST echo 100 KiB (streamed)', Kind.STREAM, 'POST', '/stream', request_size=100 * KIB),
        Scenario('file-50k', 'GET file 50 KiB', Kind.FILE, 'GET', '/file', response_size=50 * KIB),
        Scenario(
            'h2-get-1k', 'HTTP/2 GET 1 KiB', Kind.GET, 'GET', '/b/1k', driver='h2load', response_size=KIB, http2=True
        ),
        Scenario(
            'h2-echo-1k',
            'HTTP/2 POST echo 1 KiB',
            Kind.ECHO,
            'POST',
            '/echo',
            driver='h2load',
            request_size=KIB,
            http2=True,
        ),
        Scenario('https-get-1k', 'HTTPS GET 1 KiB', Kind.GET, 'GET', '/b/1k', response_size=KIB, tls=True),
        Scenario(
            'https-h2-get-1k',
            'HTTPS HTTP/2 GET 1 KiB',
            Kind.GET,
            'GET',
            '/b/1k',
            driver='h2load',
            response_size=KIB,
            http2=True,
            tls=True,
        ),
        Scenario(
            'https-handshake',
            'HTTPS new connection per request, 1,000/s (GET 10 B)',
            Kind.GET,
            'GET',
            '/b/10',
            driver='h2load-paced',
            response_size=10,
            tls=True,
            reconnect=True,
            connection_rate=1000,
            client_bound=True,
        ),
    )
}

#: Target of ours / granian 2.8.1 (requests per second), same interface and run.
DEFAULT_TARGET = 1.15
TARGET_OVERRIDES = {('asgi', 'stream-100k'): 1.3}


def target_ratio(interface: str, scenario: str) -> float:
    """The throughput ratio to granian 2.8.1 that `scenario` should reach on `interface`."""
    return TARGET_OVERRIDES.get((interface, scenario), DEFAULT_TARGET)


def expected_size(scenario: Scenario) -> int:
    """Size of the response body a correct server sends."""
    return scenario.request_size if scenario.echoes else scenario.response_size
