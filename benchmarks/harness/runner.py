"""One benchmark run: throughput sessions, memory readings, and the results document.

Order: for each interface, ours and granian 2.8.1 are started together (both pinned to the server
CPU, each idle while the other is loaded) and measured scenario by scenario, their repeats
alternating so that drift on the machine affects both alike. Then the memory runs (a fresh start
of each). Then the other peers, one at a time, on their subset, while the time budget lasts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from . import environment
from .load import DRIVERS, LoadError, LoadResult, Workspace, check, median, run_counted, warm_up
from .plan import START_COST, Plan
from .progress import Progress
from .scenarios import SCENARIOS
from .servers import (
    BASELINE,
    DEFAULT_SERVERS,
    OURS,
    SERVERS,
    TARGET_PEER,
    RunningServer,
    ServerError,
    ServerSpec,
)

INTERFACES = ('rsgi', 'asgi', 'wsgi')


class Runner(Progress):
    """Runs a plan and collects the results document."""

    def __init__(
        self,
        plan: Plan,
        raw_directory: Path,
        interfaces: Iterable[str] = INTERFACES,
        servers: Iterable[str] | None = None,
        memory: bool = True,
    ) -> None:
        self.plan = plan
        self.raw = raw_directory
        self.interfaces = tuple(interfaces)
        self.selected = set(servers) if servers is not None else set(DEFAULT_SERVERS)
        self.memory_enabled = memory
        self.workspace = Workspace()
        super().__init__()
        self.crashed: set[RunningServer] = set()

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> dict:
        """Measure everything the plan asks for; returns the results document."""
        specs = [SERVERS[name] for name in SERVERS if name in self.selected]
        self.say('probing servers and machine')
        availability = environment.server_availability(specs)
        self.results = {
            'schema': 1,
            'plan': self.plan.as_dict(),
            'date': environment.now(),
            'machine': environment.machine(),
            'revision': environment.revision(),
            'servers': {
                spec.name: {
                    'version': availability[spec.name]['version'],
                    'interfaces': list(spec.interfaces),
                    'http2': spec.http2,
                    'note': spec.note,
                    'problem': availability[spec.name]['problem'],
                }
                for spec in specs
            },
            'runs': [],
            'memory': [],
            'notes': [],
        }
        for spec in specs:
            problem = availability[spec.name]['problem']
            if problem:
                self.note(f'{spec.name} skipped: {problem}')
        available = {spec.name: spec for spec in specs if not availability[spec.name]['problem']}
        try:
            # Ours, granian 2.8.1 and any variant of ours share sessions: alternating repeats.
            pair = [available[name] for name in (OURS, BASELINE) if name in available]
            pair += [spec for spec in available.values() if spec.variant]
            for interface in self.interfaces:
                if pair:
                    self.session(interface, pair, tls_cells(self.plan.pair_matrix, False))
                    tls_matrix = tls_cells(self.plan.pair_matrix, True)
                    if tls_matrix:
                        self.session(interface, pair, tls_matrix, tls=True)
            if self.memory_enabled:
                for interface in self.interfaces:
                    for spec in pair:
                        self.memory(interface, spec)
            # The peer with a target of its own (bjoern, for WSGI) first: the verdicts need its figure.
            peers = sorted(
                (spec for spec in available.values() if spec not in pair), key=lambda s: s.name != TARGET_PEER
            )
            for spec in peers:
                for interface in self.interfaces:
                    if interface not in spec.interfaces:
                        continue
                    cost = self.session_estimate(self.plan.peer_matrix, spec)
                    if self.elapsed() + cost > self.plan.budget_seconds:
                        self.note(f'{spec.name} ({interface}) skipped: the run would exceed its time budget')
                        continue
                    self.session(interface, [spec], self.plan.peer_matrix)
        finally:
            self.workspace.close()
        self.results['duration_seconds'] = round(self.elapsed(), 1)
        self.say(f'done in {self.results["duration_seconds"]:.0f} s')
        return self.results

    def session_estimate(self, matrix: dict[int, tuple[str, ...]], spec: ServerSpec) -> float:
        """Estimated seconds of one session of `spec` over `matrix`."""
        return START_COST + _matrix_seconds(self.plan, matrix, spec)

    def start(self, spec: ServerSpec, interface: str, purpose: str, tls: bool = False) -> RunningServer | None:
        """Start a server (with the workspace's test certificate if `tls`); None (with a note) when it cannot."""
        log = self.raw / f'{interface}-{spec.name}-{purpose}.log'
        extra = self.workspace.server_arguments(tls)
        server = RunningServer(spec, interface, log, extra_arguments=extra, tls=tls)
        try:
            server.start()
        except ServerError as error:
            self.note(f'{spec.name} ({interface}) did not start: {error}')
            return None
        return server

    def session(
        self, interface: str, specs: list[ServerSpec], matrix: dict[int, tuple[str, ...]], tls: bool = False
    ) -> None:
        """Start `specs` for `interface`, measure every scenario of `matrix` they support, stop them."""
        purpose = 'load-tls' if tls else 'load'
        servers = [server for spec in specs if (server := self.start(spec, interface, purpose, tls)) is not None]
        if not servers:
            return
        self.say(f'{interface}: {", ".join(server.name for server in servers)} serving')
        failed: set[tuple[str, str]] = set()
        try:
            for concurrency, names in sorted(matrix.items()):
                for name in names:
                    scenario = SCENARIOS[name]
                    ready = []
                    for server in servers:
                        if scenario.http2 and not server.spec.http2 or server in self.crashed:
                            continue
                        if (server.name, name) in failed:
                            continue
                        problem = check(self.workspace, scenario, server.port)
                        if problem is not None:
                            failed.add((server.name, name))
                            self.note(f'{server.name} ({interface}) {name} skipped: {problem}')
                            continue
                        ready.append(server)
                    if ready:
                        self.cell(interface, name, concurrency, ready)
        finally:
            for server in servers:
                server.stop()

    def cell(self, interface: str, name: str, concurrency: int, servers: list[RunningServer]) -> None:
        """Primer, warm-up, then alternating measured repeats of `servers` on one scenario and concurrency."""
        scenario = SCENARIOS[name]
        plan = self.plan
        prepared = []
        for server in servers:
            if server in self.crashed:
                continue
            try:
                run_counted(
                    self.workspace, scenario, server.port, plan.primer_connections, plan.primer_requests, timeout=30
                )
                warm_up(self.workspace, scenario, server.port, concurrency, plan.warmup_seconds)
                prepared.append(server)
            except LoadError as error:
                self.note(f'{server.name} ({interface}) {name} c{concurrency} warm-up failed: {error}')
        runs: dict[str, list[LoadResult]] = {server.name: [] for server in prepared}
        driver = DRIVERS[scenario.driver]
        repeats = plan.repeats_for(scenario)
        for repeat in range(repeats):
            for server in prepared:
                if server in self.crashed:
                    continue
                try:
                    cpu_before = server.cpu_seconds()
                    result = driver(self.workspace, scenario, server.port, concurrency, plan.round_seconds(scenario))
                    result.server_cpu_s = server.cpu_seconds() - cpu_before
                except LoadError as error:
                    if server.process is not None and server.process.poll() is not None:
                        self.crashed.add(server)
                        self.note(
                            f'{server.name} ({interface}) crashed under load in {name} c{concurrency}'
                            f' (exit code {server.process.returncode}): {server.log_excerpt()}'
                        )
                    else:
                        self.note(f'{server.name} ({interface}) {name} c{concurrency} run failed: {error}')
                    continue
                runs[server.name].append(result)
                p99 = f'{result.p99_ms:.2f} ms' if result.p99_ms is not None else '-'
                errors = f'  {result.errors} errors' if result.errors else ''
                busy = f'{result.client_busy:.0%}' if result.client_busy is not None else '-'
                self.say(
                    f'{interface:<4} {name:<12} c{concurrency:<4} {server.name:<17} {result.rps:>10,.0f} req/s'
                    f'  p99 {p99:>9}  load CPU {busy:>4}  ({repeat + 1}/{repeats}){errors}'
                )
        for server_name, results in runs.items():
            if not results:
                continue
            self.results['runs'].append(
                {
                    'interface': interface,
                    'scenario': name,
                    'concurrency': concurrency,
                    'server': server_name,
                    'rps': median([r.rps for r in results]),
                    'p50_ms': median([r.p50_ms for r in results]),
                    'p99_ms': median([r.p99_ms for r in results]),
                    'errors': sum(r.errors for r in results),
                    'rps_per_cpu': median([r.rps_per_cpu for r in results]),
                    'client_busy': median([r.client_busy for r in results]),
                    'repeats': [r.as_dict() for r in results],
                }
            )

    def memory(self, interface: str, spec: ServerSpec) -> None:
        """RSS of a fresh server after warm-up and along `memory_requests` requests."""
        plan = self.plan
        server = self.start(spec, interface, 'memory')
        if server is None:
            return
        scenarios = [SCENARIOS[name] for name in plan.memory_scenarios]
        record: dict = {
            'interface': interface,
            'server': spec.name,
            'requests': plan.memory_requests,
            'scenarios': list(plan.memory_scenarios),
            'samples': [],
        }
        try:
            record['at_start'] = server.memory()
            for scenario in scenarios:
                run_counted(
                    self.workspace,
                    scenario,
                    server.port,
                    plan.memory_connections,
                    plan.memory_warmup_requests,
                    timeout=120,
                )
            record['after_warmup'] = server.memory()
            block = plan.memory_requests // plan.memory_samples
            done = 0
            seconds = 0.0
            errors = 0
            for index in range(plan.memory_samples):
                scenario = scenarios[index % len(scenarios)]
                began = time.monotonic()
                # Bounded: even at 2,000 requests/s a block finishes well inside this limit.
                result = run_counted(
                    self.workspace, scenario, server.port, plan.memory_connections, block, timeout=block / 2000 + 30
                )
                seconds += time.monotonic() - began
                done += result.requests
                errors += result.errors
                record['samples'].append({'requests': done, **server.memory()})
            record['after'] = record['samples'][-1]
            record['rps'] = round(done / seconds) if seconds else None
            record['errors'] = errors
            growth = record['after']['worker'] - record['after_warmup']['worker']
            self.say(
                f'{interface:<4} memory {spec.name:<17} worker {record["after_warmup"]["worker"] / 1024:.1f} MiB'
                f' -> {record["after"]["worker"] / 1024:.1f} MiB after {done:,} requests ({growth:+,} KiB);'
                f' with supervisor {record["after"]["supervisor_worker"] / 1024:.1f} MiB; worker private'
                f' {record["after"]["worker_private"] / 1024:.1f} MiB, supervisor + worker PSS'
                f' {record["after"]["supervisor_worker_pss"] / 1024:.1f} MiB'
            )
            self.results['memory'].append(record)
        except LoadError as error:
            self.note(f'{spec.name} ({interface}) memory run failed: {error}')
        finally:
            server.stop()


def tls_cells(matrix: dict[int, tuple[str, ...]], tls: bool) -> dict[int, tuple[str, ...]]:
    """The part of `matrix` served over HTTPS (`tls`) or over plain HTTP."""
    kept = {c: tuple(name for name in names if SCENARIOS[name].tls == tls) for c, names in matrix.items()}
    return {c: names for c, names in kept.items() if names}


def _matrix_seconds(plan: Plan, matrix: dict[int, tuple[str, ...]], spec: ServerSpec) -> float:
    """Estimated seconds of the cells of `matrix` that `spec` runs."""
    scenarios = (SCENARIOS[name] for names in matrix.values() for name in names)
    return sum(plan.cell_seconds(scenario) for scenario in scenarios if spec.http2 or not scenario.http2)


def estimate(plan: Plan, interfaces: Iterable[str], specs: Iterable[ServerSpec]) -> dict[str, float]:
    """Estimated seconds of each part of a run (for `--list`); memory runs assume ~40k requests/s."""
    interfaces = tuple(interfaces)
    parts = {'ours + granian 2.8.1': 0.0, 'memory': 0.0, 'peers': 0.0}
    for interface in interfaces:
        for spec in specs:
            if interface not in spec.interfaces:
                continue
            paired = spec.name in (OURS, BASELINE) or spec.variant
            matrix = plan.pair_matrix if paired else plan.peer_matrix
            cost = _matrix_seconds(plan, matrix, spec)
            if paired:
                parts['ours + granian 2.8.1'] += cost + START_COST / 2
                requests = plan.memory_requests + plan.memory_warmup_requests * len(plan.memory_scenarios)
                parts['memory'] += START_COST + requests / 40_000
            else:
                parts['peers'] += cost + START_COST
    parts['total'] = sum(parts.values())
    return parts
