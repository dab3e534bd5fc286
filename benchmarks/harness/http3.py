"""HTTP/3 over QUIC, side by side: ours with `--http3` (RSGI, ASGI, WSGI) and Hypercorn with
`--quic-bind` (ASGI), against ours over HTTP/2 with TLS on the same interface.

    python benchmarks/run.py http3 [--quick] [--interfaces rsgi,asgi] [--connections 4] [--streams 16] [--ref]

With `--ref`, ours built from another commit (`python benchmarks/run.py ref COMMIT`) is loaded over
HTTP/3 too: an A/B run of a change to the HTTP/3 path, best read in requests per server CPU-second.

Per interface, every server is started together (pinned to the server CPU, idle while another is
loaded) and the repeats alternate between them; the figure is the median of the repeats. The
HTTP/3 load comes from `h3load` (harness/h3load.py: Python on aioquic, uvloop when installed) and
the HTTP/2 load from h2load, each pinned to the load CPU with the same connections and requests in
flight per connection: **the clients differ**. A pure-Python QUIC client saturates its core long
before ours does, so the HTTP/3 req/s is mostly the client's limit; the client's CPU share and the
requests per second of server CPU time are stored and printed with every row so that can be seen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from . import environment
from .load import MARGIN, LoadError, LoadResult, Workspace, check, median, run_h2load, run_pinned, warm_up
from .progress import Progress
from .reference import built_commit
from .scenarios import SCENARIOS, Scenario, expected_size
from .servers import HOST, OURS, OURS_PYTHON, PEERS_PYTHON, REF, SERVERS, RunningServer, ServerError, free_port

#: The HTTP/3 load generator, run as a script (by ours' Python: it has aioquic).
H3LOAD = Path(__file__).with_name('h3load.py')
HYPERCORN = 'hypercorn'
INTERFACES = ('rsgi', 'asgi', 'wsgi')
CONNECTIONS = 4
STREAMS = 16
HTTP3 = 'HTTP/3'
HTTP2_TLS = 'HTTP/2+TLS'
#: A client whose CPU share reaches this set the pace (as in the main tables' **sat** mark).
SATURATED = 0.9
#: Seconds h3load may take besides its window: interpreter start, handshakes, closing.
H3LOAD_OVERHEAD = 25.0

#: The measured request shapes, as the HTTPS HTTP/2 scenarios of the main harness (h2load runs them
#: as they are; h3load sends the same method, path and body and checks the same response length).
CELLS: dict[str, Scenario] = {
    'get-1k': SCENARIOS['https-h2-get-1k'],
    'echo-1k': replace(
        SCENARIOS['h2-echo-1k'], name='https-h2-echo-1k', title='HTTPS HTTP/2 POST echo 1 KiB', tls=True
    ),
}
TITLES = {'get-1k': 'GET 1 KiB', 'echo-1k': 'POST echo 1 KiB'}


@dataclass(frozen=True)
class Http3Plan:
    name: str
    seconds: float
    repeats: int
    warmup_seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


PLANS = {plan.name: plan for plan in (Http3Plan('full', 5.0, 3, 1.0), Http3Plan('quick', 3.0, 1, 1.0))}


@dataclass(eq=False)
class Target:
    """One server measured over one protocol with one client."""

    server: RunningServer
    label: str
    protocol: str

    @property
    def client(self) -> str:
        return 'h3load' if self.protocol == HTTP3 else 'h2load'

    def describe(self, interface: str) -> str:
        return f'{self.label} ({interface}, {self.protocol})'


def h3load_argv(scenario: Scenario, port: int, connections: int, streams: int, seconds: float) -> list[str]:
    """The h3load command line for `scenario` (run by ours' Python, which has aioquic)."""
    return [
        str(OURS_PYTHON), str(H3LOAD), '--host', HOST, '--port', str(port),
        '--connections', str(connections), '--streams', str(streams), '--seconds', f'{seconds:g}',
        '--method', scenario.method, '--path', scenario.path,
        '--body-size', str(scenario.request_size), '--expect-size', str(expected_size(scenario)),
    ]  # fmt: skip


def parse_h3load(out: str) -> dict:
    """h3load's figures (its last line); LoadError when it reported a fatal error or nothing readable."""
    try:
        figures = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise LoadError(f'unreadable h3load output: {out[-300:]}') from None
    if 'fatal' in figures:
        raise LoadError(f'h3load: {figures["fatal"]}')
    return figures


def h3_result(figures: dict) -> LoadResult:
    """A LoadResult from h3load's figures; the client CPU is h3load's own, inside the measured window."""
    result = LoadResult(
        rps=figures['rps'],
        p50_ms=figures['p50_ms'],
        p99_ms=figures['p99_ms'],
        requests=figures['completed'],
        errors=figures['errors'],
    )
    result.client_cpu_s, result.client_wall_s = figures['cpu_s'], figures['seconds']
    return result


def run_h3load(
    scenario: Scenario, port: int, connections: int, streams: int, seconds: float
) -> tuple[LoadResult, dict]:
    """One timed HTTP/3 run pinned to the load CPU; the result and h3load's raw figures."""
    argv = h3load_argv(scenario, port, connections, streams, seconds)
    figures = parse_h3load(run_pinned(argv, seconds + H3LOAD_OVERHEAD + MARGIN).stdout)
    return h3_result(figures), figures


class Http3Runner(Progress):
    """Runs an HTTP/3 plan and collects its results document."""

    def __init__(
        self,
        plan: Http3Plan,
        raw: Path,
        interfaces: Iterable[str] = INTERFACES,
        connections: int = CONNECTIONS,
        streams: int = STREAMS,
        with_ref: bool = False,
    ) -> None:
        self.plan = plan
        #: Also ours-ref over HTTP/3 (an A/B run against another commit, `run.py ref COMMIT`).
        self.with_ref = with_ref
        self.raw = raw
        self.interfaces = tuple(interfaces)
        self.connections = connections
        self.streams = streams
        self.workspace = Workspace()
        super().__init__()

    def run(self) -> dict:
        specs = [SERVERS[OURS], SERVERS[HYPERCORN]]
        availability = environment.server_availability(specs)
        client = environment.probe(OURS_PYTHON, ['aioquic', 'uvloop'], ['aioquic'])
        peers_quic = environment.probe(PEERS_PYTHON, ['aioquic'], ['aioquic'])
        machine = environment.machine()
        self.results = {
            'schema': 1,
            'kind': 'http3',
            'plan': self.plan.as_dict(),
            'date': environment.now(),
            'machine': machine,
            'revision': environment.revision(),
            'connections': self.connections,
            'streams': self.streams,
            'clients': {
                HTTP3: f'h3load (harness/h3load.py), Python {client["python"]}, aioquic {client["versions"]["aioquic"]}'
                + (', uvloop' if client['modules'].get('uvloop') is None else ', asyncio loop'),
                HTTP2_TLS: machine.get('h2load') or 'h2load',
            },
            'servers': {
                OURS: availability[OURS]['version'],
                HYPERCORN: availability[HYPERCORN]['version'],
                'aioquic (hypercorn)': peers_quic['versions'].get('aioquic'),
            },
            'rows': [],
            'notes': [],
        }
        if availability[OURS]['problem']:
            raise SystemExit(f'ours cannot run: {availability[OURS]["problem"]}')
        if self.with_ref:
            problem = environment.server_availability([SERVERS[REF]])[REF]['problem']
            if problem:
                raise SystemExit(f'ours-ref cannot run: {problem}')
            self.results['servers'][REF] = built_commit()
        if client['modules'].get('aioquic'):
            raise SystemExit(f'h3load needs aioquic in {OURS_PYTHON}: {client["modules"]["aioquic"]}')
        hypercorn = None
        if availability[HYPERCORN]['problem']:
            hypercorn = f'hypercorn skipped: {availability[HYPERCORN]["problem"]}'
        elif peers_quic['modules'].get('aioquic'):
            hypercorn = (
                'hypercorn skipped: its HTTP/3 needs aioquic in benchmarks/.venv-peers (python benchmarks/run.py setup)'
            )
        if hypercorn and 'asgi' in self.interfaces:
            self.note(hypercorn)
        try:
            for interface in self.interfaces:
                self.session(interface, with_hypercorn=interface == 'asgi' and hypercorn is None)
        finally:
            self.workspace.close()
        self.results['duration_seconds'] = round(time.monotonic() - self.started, 1)
        self.say(f'done in {self.results["duration_seconds"]:.0f} s')
        return self.results

    def start(self, target: str, server: RunningServer, protocol: str, interface: str) -> Target | None:
        try:
            return Target(server.start(), target, protocol)
        except ServerError as error:
            self.note(f'{target} ({interface}, {protocol}) did not start: {error}')
            return None

    def servers(self, interface: str, with_hypercorn: bool) -> list[Target]:
        """Ours with --http3 (HTTP/3), ours with TLS only (HTTP/2+TLS), ours-ref with --http3 when asked,
        and Hypercorn (HTTP/3) for ASGI."""
        tls = self.workspace.server_arguments(True)
        started = [
            self.start(
                OURS,
                RunningServer(SERVERS[OURS], interface, self.raw / f'h3-{interface}-ours-h3.log', tls=True,
                              extra_arguments=(*tls, '--http3')),
                HTTP3,
                interface,
            ),
            self.start(
                OURS,
                RunningServer(SERVERS[OURS], interface, self.raw / f'h3-{interface}-ours-h2.log', tls=True,
                              extra_arguments=tls),
                HTTP2_TLS,
                interface,
            ),
        ]  # fmt: skip
        if self.with_ref:
            log = self.raw / f'h3-{interface}-ref-h3.log'
            server = RunningServer(SERVERS[REF], interface, log, tls=True, extra_arguments=(*tls, '--http3'))
            started.append(self.start(REF, server, HTTP3, interface))
        if with_hypercorn:
            cert, key = self.workspace.certificate()
            port = free_port()
            quic = ('--certfile', str(cert), '--keyfile', str(key), '--quic-bind', f'{HOST}:{port}')
            log = self.raw / f'h3-{interface}-hypercorn.log'
            server = RunningServer(SERVERS[HYPERCORN], interface, log, port=port, tls=True, extra_arguments=quic)
            started.append(self.start(HYPERCORN, server, HTTP3, interface))
        return [target for target in started if target is not None]

    def session(self, interface: str, with_hypercorn: bool) -> None:
        targets = self.servers(interface, with_hypercorn)
        if not targets:
            return
        self.say(f'{interface}: ' + ', '.join(f'{t.label} {t.protocol}' for t in targets) + ' serving')
        try:
            for cell in CELLS:
                self.cell(interface, cell, targets)
        finally:
            for target in targets:
                target.server.stop()

    def measure(self, target: Target, scenario: Scenario, seconds: float) -> tuple[LoadResult, dict | None]:
        """One timed run of `target` with its client; the server's CPU time around it is recorded."""
        cpu_before = target.server.cpu_seconds()
        if target.protocol == HTTP3:
            result, figures = run_h3load(scenario, target.server.port, self.connections, self.streams, seconds)
        else:
            result, figures = run_h2load(self.workspace, scenario, target.server.port, self.connections, seconds), None
        result.server_cpu_s = round(target.server.cpu_seconds() - cpu_before, 3)
        return result, figures

    def cell(self, interface: str, cell: str, targets: list[Target]) -> None:
        """Check and warm up every target on one request shape, then the alternating measured repeats."""
        scenario = replace(CELLS[cell], streams=self.streams)
        ready = []
        for target in targets:
            try:
                if target.protocol == HTTP3:
                    warm, figures = self.measure(target, scenario, self.plan.warmup_seconds)
                    if warm.errors or not warm.requests:
                        reason = figures.get('first_error') or 'no request completed'
                        raise LoadError(f'{warm.errors} errors, {warm.requests} completed in the warm-up: {reason}')
                    self.results.setdefault('h3load', {k: figures[k] for k in ('aioquic', 'loop', 'python')})
                else:
                    problem = check(self.workspace, scenario, target.server.port)
                    if problem is not None:
                        raise LoadError(problem)
                    warm_up(self.workspace, scenario, target.server.port, self.connections, self.plan.warmup_seconds)
                ready.append(target)
            except LoadError as error:
                self.note(f'{target.describe(interface)} {cell} skipped: {error}')
        runs: dict[Target, list[LoadResult]] = {target: [] for target in ready}
        for repeat in range(self.plan.repeats):
            for target in ready:
                try:
                    result, figures = self.measure(target, scenario, self.plan.seconds)
                except LoadError as error:
                    self.note(f'{target.describe(interface)} {cell} run failed: {error}')
                    continue
                runs[target].append(result)
                if result.errors and figures and figures.get('first_error'):
                    self.note(
                        f'{target.describe(interface)} {cell}: {result.errors} errors, first: {figures["first_error"]}'
                    )
                errors = f'  {result.errors} errors' if result.errors else ''
                self.say(
                    f'{interface:<4} {cell:<8} {target.label:<9} {target.protocol:<10} {result.rps:>9,.0f} req/s'
                    f'  p99 {_ms(result.p99_ms)}  client CPU {_share(result.client_busy)}'
                    f'  ({repeat + 1}/{self.plan.repeats}){errors}'
                )
        for target, measured in runs.items():
            if measured:
                self.results['rows'].append(row(cell, interface, target, measured))


def row(cell: str, interface: str, target: Target, measured: list[LoadResult]) -> dict:
    """The results-file row of one target on one cell: medians of the repeats, errors summed."""
    return {
        'cell': cell,
        'title': TITLES[cell],
        'interface': interface,
        'server': target.label,
        'protocol': target.protocol,
        'client': target.client,
        'rps': median([r.rps for r in measured]),
        'p50_ms': median([r.p50_ms for r in measured]),
        'p99_ms': median([r.p99_ms for r in measured]),
        'errors': sum(r.errors for r in measured),
        'client_busy': median([r.client_busy for r in measured]),
        'client_cpu_s': median([r.client_cpu_s for r in measured]),
        'rps_per_server_cpu': median([r.rps_per_cpu for r in measured]),
        'server_busy': median([server_busy(r) for r in measured]),
        'repeats': [r.as_dict() for r in measured],
    }


def server_busy(result: LoadResult) -> float | None:
    """Share of its core the server used while loaded (its CPU time over the client's measured window)."""
    if result.server_cpu_s is None or not result.client_wall_s:
        return None
    return round(result.server_cpu_s / result.client_wall_s, 3)


# -- report ---------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return f'{value:.2f} ms' if value is not None else '-'


def _percent(value: float | None) -> str:
    return f'{value:.0%}' if value is not None else '-'


def _share(value: float | None) -> str:
    if value is None:
        return '-'
    return f'{value:.0%}' + (' **sat**' if value >= SATURATED else '')


def table(results: dict) -> str:
    """The results as a markdown table; the ratio is to ours over HTTP/2+TLS on the same interface."""
    rows = results['rows']
    h2 = {(r['cell'], r['interface']): r for r in rows if r['server'] == OURS and r['protocol'] == HTTP2_TLS}
    lines = [
        (
            '| request | interface | server | protocol | client | req/s | p50 | p99 | errors | client CPU'
            ' | server CPU | req per server CPU-s | req/s vs ours HTTP/2+TLS |'
        ),
        '|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    order = {name: index for index, name in enumerate(INTERFACES)}
    for r in sorted(rows, key=lambda r: (list(CELLS).index(r['cell']), order.get(r['interface'], 9))):
        base = h2.get((r['cell'], r['interface']))
        ratio = f'{r["rps"] / base["rps"]:.2f}x' if base and base['rps'] and r is not base else '-'
        per_cpu = f'{r["rps_per_server_cpu"]:,.0f}' if r.get('rps_per_server_cpu') else '-'
        lines.append(
            f'| {r["title"]} | {r["interface"].upper()} | {r["server"]} | {r["protocol"]} | {r["client"]}'
            f' | {r["rps"]:,.0f} | {_ms(r["p50_ms"])} | {_ms(r["p99_ms"])} | {r["errors"]} | {_share(r["client_busy"])}'
            f' | {_percent(r.get("server_busy"))} | {per_cpu} | {ratio} |'
        )
    return '\n'.join(lines)


def caveat(results: dict) -> str:
    """What the table's columns can and cannot say, with the clients of this run."""
    clients = results.get('clients', {})
    plan = results['plan']
    return '\n'.join(
        [
            f'{results["connections"]} connections x {results["streams"]} requests in flight each;',
            f'plan {plan["name"]}: {plan["repeats"]} x {plan["seconds"]:g} s per row, median.',
            f'The clients differ: HTTP/3 rows are loaded by {clients.get(HTTP3, "h3load")};',
            f'HTTP/2+TLS rows by {clients.get(HTTP2_TLS, "h2load")} (C). Each runs on one core (CPU 1).',
            'Where the client CPU is marked **sat** the client set the pace: req/s (and its ratio) then measures the',
            'client more than the server, and the server CPU column shows how idle the server was. "req per server',
            'CPU-s" (requests per second of server CPU time) is the server-side comparison, roughly: a server loaded',
            'below its capacity handles fewer requests per wake-up, so its CPU per request reads higher than at full load.',
        ]
    )
