"""Per-request accounting: system calls and context switches per request, per thread of the worker.

`python benchmarks/run.py count` loads each server as a measured run does (server on CPU 0, load
generator on CPU 1) while `perf stat --per-thread` counts, on the worker process, the system calls
that mark wake-ups and I/O. Dividing by the requests the load generator completed meanwhile gives
figures such as "the Python thread writes 1.0 times per request": the question a profile answers
badly ("who wakes whom, how often") answered by counting.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .load import DRIVERS, LoadError, LoadResult, Workspace, check, warm_up
from .scenarios import SCENARIOS
from .servers import SERVERS, RunningServer, ServerError, ServerSpec

#: What is counted: the system calls of waking another thread (eventfd and socket-pair writes,
#: futex), of waiting (epoll_wait), of socket I/O, and the context switches.
EVENTS = (
    'write',
    'writev',
    'sendto',
    'read',
    'recvfrom',
    'epoll_wait',
    'futex',
)
COUNTERS = (*(f'syscalls:sys_enter_{name}' for name in EVENTS), 'context-switches')


def worker_pid(server: RunningServer) -> int:
    """The server's worker process (the server itself when it has no supervisor)."""
    assert server.process is not None
    children = server.worker_pids()
    return children[0] if children else server.process.pid


def _parse(text: str) -> dict[str, dict[str, float]]:
    """`perf stat --per-thread -x,` output: counts by thread name (the thread id dropped) and event."""
    threads: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        fields = line.strip().split(',')
        if len(fields) < 4 or not re.fullmatch(r'[\d.]+', fields[1]):
            continue
        thread = re.sub(r'-\d+$', '', fields[0])
        event = fields[3].removeprefix('syscalls:sys_enter_')
        counts = threads.setdefault(thread, {})
        counts[event] = counts.get(event, 0.0) + float(fields[1])
    return threads


def under_perf(
    server: RunningServer, workspace: Workspace, scenario: str, connections: int, seconds: float, perf: list[str]
) -> tuple[LoadResult, subprocess.Popen]:
    """The scenario's load for `seconds` (after a warm-up) while `perf <perf...> -p WORKER -- sleep
    seconds` watches the server's worker; the load's result and the finished perf process."""
    spec = SCENARIOS[scenario]
    warm_up(workspace, spec, server.port, connections, 1.0)
    watcher = subprocess.Popen(
        ['perf', *perf, '-p', str(worker_pid(server)), '--', 'sleep', str(seconds)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        result = DRIVERS[spec.driver](workspace, spec, server.port, connections, seconds)
    finally:
        try:
            # perf writes its data after the sleep: a DWARF recording takes a while.
            watcher.wait(seconds + 60)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.wait()
    return result, watcher


def perf_error(watcher: subprocess.Popen) -> str:
    """The end of what perf wrote to its standard error."""
    return (watcher.stderr.read() if watcher.stderr else b'').decode()[-200:]


def count(server: RunningServer, workspace: Workspace, scenario: str, connections: int, seconds: float) -> dict:
    """One counted run: req/s and, per busy thread of the worker, each counter per request."""
    output = workspace.path / 'perf-stat.txt'
    events = ['stat', '--per-thread', '-x,', '-e', ','.join(COUNTERS), '-o', str(output)]
    result, perf = under_perf(server, workspace, scenario, connections, seconds, events)
    threads = _parse(output.read_text()) if output.exists() else {}
    if not threads:
        raise LoadError(f'perf stat counted nothing: {perf_error(perf)}')
    per_request = {
        thread: {event: value / result.requests for event, value in counts.items()}
        for thread, counts in threads.items()
        # Threads that did next to nothing (the supervisor's helpers, idle pools) only add rows.
        if sum(counts.values()) >= result.requests * 0.01
    }
    return {'server': server.name, 'rps': result.rps, 'requests': result.requests, 'threads': per_request}


def table(rows: list[dict]) -> str:
    """Markdown: one line per server, run and thread."""
    names = [*EVENTS, 'context-switches']
    lines = [
        '| interface | scenario | server | req/s | thread | ' + ' | '.join(names) + ' |',
        '|---|---|---|---:|---|' + '---:|' * len(names),
    ]
    for row in rows:
        for thread, counts in sorted(row['threads'].items()):
            cells = ' | '.join(f'{counts.get(name, 0.0):.3f}' for name in names)
            lines.append(
                f'| {row["interface"]} | {row["scenario"]} c{row["connections"]} | {row["server"]}'
                f' | {row["rps"]:,.0f} | {thread} | {cells} |'
            )
    return '\n'.join(lines)


def measurements(
    workspace: Workspace,
    interfaces: Iterable[str],
    scenarios: Iterable[str],
    rounds: int,
    start: Callable[[str, bool], list[RunningServer]],
) -> Iterator[tuple[str, str, RunningServer]]:
    """(interface, scenario, server) for every measurement: per interface the servers
    `start(interface, tls)` returns (stopped afterwards; started again with HTTPS for the TLS
    scenarios), each scenario `rounds` times, alternating servers, skipping a server that does not
    speak the scenario's protocol or answers its request wrongly."""
    scenarios = list(scenarios)
    for interface, tls in ((interface, tls) for interface in interfaces for tls in (False, True)):
        served = [scenario for scenario in scenarios if SCENARIOS[scenario].tls == tls]
        if not served:
            continue
        started = start(interface, tls)
        try:
            for scenario in served:
                spec = SCENARIOS[scenario]
                for _ in range(rounds):
                    for server in started:
                        if spec.http2 and not server.spec.http2:
                            continue
                        problem = check(workspace, spec, server.port)
                        if problem is not None:
                            print(f'{server.name} ({interface}) {scenario} skipped: {problem}')
                            continue
                        yield interface, scenario, server
        finally:
            for server in started:
                server.stop()


def start_servers(
    names: Iterable[str], interface: str, build: Callable[[ServerSpec, str], RunningServer]
) -> list[RunningServer]:
    """The named servers that serve `interface`, made by `build(spec, label)` (label:
    `<interface>-<server>`) and started; the ones that fail to start are reported and left out."""
    started = []
    for name in names:
        spec = SERVERS[name]
        if interface not in spec.interfaces:
            continue
        try:
            started.append(build(spec, f'{interface}-{name}').start())
        except ServerError as error:
            print(f'{name} ({interface}) did not start: {error}')
    return started


def require_perf() -> None:
    if shutil.which('perf') is None:
        raise SystemExit('perf is needed: apt-get install -y linux-perf (and kernel.perf_event_paranoid <= 1)')


def each_measurement(
    interfaces: Iterable[str], scenarios: Iterable[str], servers: Iterable[str], rounds: int, raw: Path, purpose: str
) -> Iterator[tuple[Workspace, str, str, RunningServer]]:
    """(workspace, interface, scenario, server) for every measurement of `measurements`, the servers
    started with their logs in `raw` (`<interface>-<server>-<purpose>.log`; with the run's test
    certificate for the HTTPS scenarios); all stopped and the workspace removed afterwards."""
    servers = list(servers)
    workspace = Workspace()
    try:

        def start(interface: str, tls: bool) -> list[RunningServer]:
            def build(spec: ServerSpec, label: str) -> RunningServer:
                log = raw / f'{label}-{purpose}.log'
                return RunningServer(spec, interface, log, extra_arguments=workspace.server_arguments(tls), tls=tls)

            return start_servers(servers, interface, build)

        for interface, scenario, server in measurements(workspace, interfaces, scenarios, rounds, start):
            yield workspace, interface, scenario, server
    finally:
        workspace.close()


def run(
    interfaces: Iterable[str],
    scenarios: Iterable[str],
    servers: Iterable[str],
    connections: int,
    seconds: float,
    rounds: int,
    raw: Path,
) -> list[dict]:
    """Counted runs of every server on every scenario, `rounds` times, alternating servers."""
    require_perf()
    rows: list[dict] = []
    for workspace, interface, scenario, server in each_measurement(
        interfaces, scenarios, servers, rounds, raw, 'count'
    ):
        row = count(server, workspace, scenario, connections, seconds)
        row.update(interface=interface, scenario=scenario, connections=connections)
        rows.append(row)
        print(f'{interface} {scenario} c{connections} {server.name}: {row["rps"]:,.0f} req/s')
    return rows
