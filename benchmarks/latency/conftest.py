"""Fixtures of the latency suite: ours and granian 2.8.1 serving one interface, one keep-alive client each.

Not part of the test suite (the root pytest configuration collects packages/ only); run it with

    python -m pytest benchmarks/latency --confcutdir=benchmarks/latency --benchmark-only --benchmark-autosave

Each test module names its INTERFACE; each test takes `server` and `case` (parametrized here) and
calls `measure(server, case)`. The servers run pinned to CPU 0, as in the load harness; this
process pins itself to CPU 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1]
# --import-mode=importlib leaves sys.path alone: the harness package is imported from benchmarks/.
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from harness.client import KeepAliveClient, request_bytes
from harness.environment import server_availability
from harness.scenarios import SCENARIOS, expected_size
from harness.servers import BASELINE, HOST, LOAD_CPU, OURS, SERVERS, RunningServer, ServerError

COMPARED = (OURS, BASELINE)
#: The HTTP/1.1 scenarios of the load harness.
CASES = [name for name, scenario in SCENARIOS.items() if not scenario.http2]
#: Measured exchanges per benchmark, after WARMUP_ROUNDS unmeasured ones.
ROUNDS = 2000
WARMUP_ROUNDS = 200


def pytest_configure(config: pytest.Config) -> None:
    """Run the client on the load CPU, away from the servers."""
    if hasattr(os, 'sched_setaffinity') and LOAD_CPU in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {LOAD_CPU})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests taking `case` and `server` run for every HTTP/1.1 scenario, on ours and on granian 2.8.1."""
    if 'case' in metafunc.fixturenames:
        metafunc.parametrize('case', CASES)
    if 'server' in metafunc.fixturenames:
        metafunc.parametrize('server', COMPARED)


@pytest.fixture(scope='session')
def availability() -> dict[str, dict]:
    """Whether ours and granian 2.8.1 can run here (and why not)."""
    return server_availability([SERVERS[name] for name in COMPARED])


@pytest.fixture(scope='module')
def clients(request: pytest.FixtureRequest, availability: dict[str, dict]) -> Iterator[dict[str, KeepAliveClient]]:
    """Ours and granian 2.8.1 serving the module's INTERFACE, each with one keep-alive connection."""
    interface = request.module.INTERFACE
    servers: list[RunningServer] = []
    connected: dict[str, KeepAliveClient] = {}
    problems = {name: availability[name]['problem'] for name in COMPARED}
    try:
        for name in COMPARED:
            if problems[name]:
                continue
            log = BENCHMARKS / 'results' / 'raw' / f'latency-{interface}-{name}.log'
            server = RunningServer(SERVERS[name], interface, log)
            try:
                servers.append(server.start())
            except ServerError as error:
                problems[name] = f'did not start: {error}'
                continue
            connected[name] = KeepAliveClient(HOST, server.port)
        request.module.PROBLEMS = problems
        yield connected
    finally:
        for client in connected.values():
            client.close()
        for server in servers:
            server.stop()


@pytest.fixture
def measure(
    request: pytest.FixtureRequest, benchmark, clients: dict[str, KeepAliveClient]
) -> Callable[[str, str], None]:
    """`measure(server, case)`: benchmark one request shape on one server, sequentially on one connection."""
    interface = request.module.INTERFACE

    def run(server: str, case: str) -> None:
        if server not in clients:
            pytest.skip(f'{server}: {request.module.PROBLEMS[server]}')
        client = clients[server]
        scenario = SCENARIOS[case]
        exchange = request_bytes(scenario, client.port)
        expected = (200, expected_size(scenario))
        assert client.exchange(exchange) == expected
        benchmark.group = f'{interface} {case}'
        benchmark.extra_info.update(interface=interface, server=server, scenario=case)
        result = benchmark.pedantic(
            client.exchange, args=(exchange,), rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1
        )
        assert result == expected

    return run
