"""WebSocket benchmarks: echo messages per second and the memory of idle connections.

Load comes from `wsload` (benchmarks/wsload, Rust, built on first use into the repository's target/),
pinned to the load CPU like wrk and h2load: a single Python client would be the bottleneck long
before the servers are. Per interface, ours, granian 2.8.1 and (ASGI) uvicorn are started together,
each pinned to the server CPU and idle while another is loaded, and their repeats alternate.

- **Echo**: every connection sends a text message and waits for its echo, over and over; a figure
  is messages echoed per second (the median of the repeats) with the round-trip p50/p99.
  Compression is off on both sides (the client does not offer it) unless a row says deflate: then
  the client offers permessage-deflate and compresses its messages, and the server compresses its
  answers, so on/off in the same run is the cost of compression.
- **Idle memory**: a fresh server per interface and server, then `idle_connections` WebSockets
  opened and held; the worker's RSS (VmRSS) before and with them open.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import environment
from .load import MARGIN, LoadError, median, run_pinned
from .progress import Progress
from .servers import BASELINE, HOST, LOAD_CPU, OURS, ROOT, SERVERS, RunningServer, ServerError

WSLOAD_SOURCE = ROOT / 'benchmarks' / 'wsload'
WSLOAD = ROOT / 'target' / 'release' / 'wsload'
#: Servers measured, by interface (uvicorn speaks ASGI only); ours first.
WS_SERVERS = {'rsgi': (OURS, BASELINE), 'asgi': (OURS, BASELINE, 'uvicorn')}
#: Servers that offer permessage-deflate (granian 2.8.1 has none).
DEFLATE_SERVERS = (OURS, 'uvicorn')
#: Both granians would hold at most `backpressure` connections (1024 by default) at once.
IDLE_ARGUMENTS = ('--backlog', '16384', '--backpressure', '16384')
TARGET = 1.15
INTERFACE_TITLES = {'rsgi': 'RSGI', 'asgi': 'ASGI'}


@dataclass(frozen=True)
class WebsocketPlan:
    """What a WebSocket run measures."""

    name: str
    seconds: float
    repeats: int
    warmup_seconds: float
    sizes: tuple[int, ...]
    concurrencies: tuple[int, ...]
    idle_connections: int

    def as_dict(self) -> dict:
        """Plain data for the results file."""
        return asdict(self)


FULL = WebsocketPlan('full', 2.0, 3, 1.0, (20, 16 * 1024), (16, 64), 10_000)
QUICK = WebsocketPlan('quick', 1.0, 1, 0.5, (20, 16 * 1024), (64,), 10_000)
PLANS = {plan.name: plan for plan in (FULL, QUICK)}


def build_wsload() -> Path:
    """Builds benchmarks/wsload when its binary is missing or older than its sources."""
    sources = [WSLOAD_SOURCE / 'Cargo.toml', *WSLOAD_SOURCE.glob('src/*.rs')]
    if WSLOAD.exists() and all(WSLOAD.stat().st_mtime >= source.stat().st_mtime for source in sources):
        return WSLOAD
    print('building benchmarks/wsload (cargo build --release)', flush=True)
    command = ['cargo', 'build', '--release', '--quiet', '--manifest-path', str(WSLOAD_SOURCE / 'Cargo.toml')]
    done = subprocess.run(
        [*command, '--target-dir', str(ROOT / 'target')], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f'building wsload failed: {done.stderr.strip()[-1000:]}')
    return WSLOAD


def _parse(out: str) -> dict:
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise LoadError(f'unreadable wsload output: {out[-300:]}') from None


def run_echo(port: int, connections: int, size: int, seconds: float, deflate: bool = False) -> dict:
    """One timed echo load; returns wsload's figures (rate, p50_ms, p99_ms, messages, errors)."""
    argv = [str(WSLOAD), 'echo', '--host', HOST, '--port', str(port), '--connections', str(connections)]
    argv += ['--size', str(size), '--seconds', str(seconds)] + (['--deflate'] if deflate else [])
    result = _parse(run_pinned(argv, seconds + MARGIN).stdout)
    if result['errors'] and not result['messages']:
        raise LoadError(f'no message was echoed: {result["first_error"]}')
    return result


class IdleConnections:
    """`wsload idle` holding connections open until closed (bounded by its hold time)."""

    def __init__(self, port: int, connections: int, hold_seconds: float = 120.0) -> None:
        argv = [str(WSLOAD), 'idle', '--host', HOST, '--port', str(port), '--connections', str(connections)]
        argv += ['--hold-seconds', str(hold_seconds)]
        self.process = subprocess.Popen(
            ['taskset', '-c', str(LOAD_CPU), *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def opened(self, timeout: float = 120.0) -> dict:
        """Waits until every connection is open or failed; returns {open, errors, first_error}."""
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line:
                return _parse(line)
            if self.process.poll() is not None:
                break
        raise LoadError('wsload idle did not report its connections')

    def close(self) -> None:
        """Closes the connections (wsload exits when its standard input closes)."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class WebsocketRunner(Progress):
    """Runs a WebSocket plan and collects its results document."""

    def __init__(self, plan: WebsocketPlan, raw: Path, interfaces: Iterable[str], memory: bool = True) -> None:
        self.plan = plan
        self.raw = raw
        self.interfaces = tuple(interfaces)
        self.memory_enabled = memory
        super().__init__()

    def run(self) -> dict:
        build_wsload()
        names = sorted({name for interface in self.interfaces for name in WS_SERVERS[interface]})
        specs = [SERVERS[name] for name in names]
        availability = environment.server_availability(specs)
        self.results = {
            'schema': 1,
            'kind': 'websocket',
            'plan': self.plan.as_dict(),
            'date': environment.now(),
            'machine': environment.machine(),
            'revision': environment.revision(),
            'servers': {name: availability[name]['version'] for name in names},
            'runs': [],
            'idle': [],
            'notes': [],
        }
        for interface in self.interfaces:
            available = [name for name in WS_SERVERS[interface] if not availability[name]['problem']]
            for name in WS_SERVERS[interface]:
                if availability[name]['problem']:
                    self.note(f'{name} ({interface}) skipped: {availability[name]["problem"]}')
            self.echo_session(interface, available)
        if self.memory_enabled:
            for interface in self.interfaces:
                for name in (OURS, BASELINE):
                    if not availability[name]['problem']:
                        self.idle_memory(interface, name)
        self.results['duration_seconds'] = round(time.monotonic() - self.started, 1)
        self.say(f'done in {self.results["duration_seconds"]:.0f} s')
        return self.results

    def start(self, name: str, interface: str, purpose: str, extra: tuple[str, ...] = ()) -> RunningServer | None:
        log = self.raw / f'ws-{interface}-{name}-{purpose}.log'
        server = RunningServer(SERVERS[name], interface, log, extra_arguments=extra)
        try:
            return server.start()
        except ServerError as error:
            self.note(f'{name} ({interface}) did not start: {error}')
            return None

    def echo_session(self, interface: str, names: list[str]) -> None:
        servers = [server for name in names if (server := self.start(name, interface, 'echo')) is not None]
        try:
            for size in self.plan.sizes:
                for concurrency in self.plan.concurrencies:
                    self.cell(interface, servers, size, concurrency, deflate=False)
                    deflating = [server for server in servers if server.name in DEFLATE_SERVERS]
                    self.cell(interface, deflating, size, concurrency, deflate=True)
        finally:
            for server in servers:
                server.stop()

    def cell(self, interface: str, servers: list[RunningServer], size: int, concurrency: int, deflate: bool) -> None:
        plan = self.plan
        ready = []
        for server in servers:
            try:
                run_echo(server.port, concurrency, size, plan.warmup_seconds, deflate)
                ready.append(server)
            except LoadError as error:
                self.note(f'{server.name} ({interface}) {size} B c{concurrency} deflate={deflate}: {error}')
        runs: dict[str, list[dict]] = {server.name: [] for server in ready}
        for repeat in range(plan.repeats):
            for server in ready:
                try:
                    result = run_echo(server.port, concurrency, size, plan.seconds, deflate)
                except LoadError as error:
                    self.note(f'{server.name} ({interface}) {size} B c{concurrency} run failed: {error}')
                    continue
                runs[server.name].append(result)
                errors = f'  {result["errors"]} errors' if result['errors'] else ''
                self.say(
                    f'{interface:<4} ws {size:>6} B c{concurrency:<3} {"deflate " if deflate else ""}'
                    f'{server.name:<14} {result["rate"]:>9,.0f} msg/s  p99 {result["p99_ms"]:.2f} ms'
                    f'  ({repeat + 1}/{plan.repeats}){errors}'
                )
        for name, results in runs.items():
            if results:
                self.results['runs'].append(
                    {
                        'interface': interface,
                        'server': name,
                        'size': size,
                        'concurrency': concurrency,
                        'deflate': deflate,
                        'rate': median([r['rate'] for r in results]),
                        'p50_ms': median([r['p50_ms'] for r in results]),
                        'p99_ms': median([r['p99_ms'] for r in results]),
                        'errors': sum(r['errors'] for r in results),
                        'repeats': results,
                    }
                )

    def idle_memory(self, interface: str, name: str) -> None:
        count = self.plan.idle_connections
        server = self.start(name, interface, 'idle', IDLE_ARGUMENTS)
        if server is None:
            return
        holder = None
        try:
            run_echo(server.port, 4, 20, 0.2)
            before = server.memory()
            holder = IdleConnections(server.port, count)
            opened = holder.opened()
            time.sleep(1.0)
            during = server.memory()
            per_connection = (during['worker'] - before['worker']) * 1024 / max(1, opened['open'])
            self.results['idle'].append(
                {
                    'interface': interface,
                    'server': name,
                    'connections': opened['open'],
                    'errors': opened['errors'],
                    'before': before,
                    'during': during,
                    'bytes_per_connection': round(per_connection),
                }
            )
            self.say(
                f'{interface:<4} ws idle {name:<14} {opened["open"]:,} open: worker {before["worker"] / 1024:.1f}'
                f' -> {during["worker"] / 1024:.1f} MiB ({per_connection / 1024:.1f} KiB per connection)'
            )
            if opened['errors']:
                self.note(f'{name} ({interface}) idle: {opened["errors"]} connections failed: {opened["first_error"]}')
        except LoadError as error:
            self.note(f'{name} ({interface}) idle memory run failed: {error}')
        finally:
            if holder is not None:
                holder.close()
            server.stop()


# -- report ---------------------------------------------------------------------------------------


def _size(size: int) -> str:
    return f'{size // 1024} KiB' if size >= 1024 else f'{size} B'


def render(results: dict | None) -> str:
    """The WebSocket section of benchmarks/README.md."""
    if not results:
        return 'No WebSocket run yet (`python benchmarks/run.py websocket`).\n'
    runs = {(r['interface'], r['server'], r['size'], r['concurrency'], r['deflate']): r for r in results['runs']}
    versions = ', '.join(f'{name} {version}' for name, version in results['servers'].items() if version)
    plan = results['plan']
    revision = results.get('revision') or {}
    commit = revision.get('commit', '')[:10] + (' plus uncommitted changes' if revision.get('dirty') else '')
    lines = [
        (
            f'Run of {results["date"][:16]} (commit `{commit}`, plan {plan["name"]}:'
            f' {plan["repeats"]} x {plan["seconds"]:g} s per cell; {versions}). Messages echoed per second,'
            ' text messages, compression off; target ours / granian 2.8.1 >= 1.15x.'
        ),
        '',
        '| interface | message | conns | ours | granian 2.8.1 | ratio | uvicorn | ours p99 | 2.8.1 p99 | verdict |',
        '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ]
    keys = sorted({(k[0], k[2], k[3]) for k in runs}, key=lambda k: (list(INTERFACE_TITLES).index(k[0]), k[1], k[2]))
    for interface, size, concurrency in keys:
        ours = runs.get((interface, OURS, size, concurrency, False))
        base = runs.get((interface, BASELINE, size, concurrency, False))
        uvicorn = runs.get((interface, 'uvicorn', size, concurrency, False))
        ratio = ours['rate'] / base['rate'] if ours and base else None
        verdict = '' if ratio is None else ('meets' if ratio >= TARGET else f'**SHORT** ({ratio:.2f}x < {TARGET}x)')
        lines.append(
            f'| {INTERFACE_TITLES[interface]} | {_size(size)} | {concurrency}'
            f' | {_rate(ours)} | {_rate(base)} | {f"{ratio:.2f}x" if ratio else "-"}'
            f' | {_rate(uvicorn) if interface == "asgi" else "n/a"} | {_p99(ours)} | {_p99(base)} | {verdict} |'
        )
    lines += [
        '',
        'Cost of permessage-deflate (same run; the client offers it and compresses what it sends):',
        '',
        '| interface | message | conns | server | off | on | on / off |',
        '|---|---|---:|---|---:|---:|---:|',
    ]
    for (interface, name, size, concurrency, deflate), on in runs.items():
        off = runs.get((interface, name, size, concurrency, False))
        if deflate and off:
            lines.append(
                f'| {INTERFACE_TITLES[interface]} | {_size(size)} | {concurrency} | {name} | {_rate(off)}'
                f' | {_rate(on)} | {on["rate"] / off["rate"]:.2f} |'
            )
    idle = results.get('idle') or []
    if idle:
        count = max(record['connections'] for record in idle)
        lines += [
            '',
            f'Worker RSS with {count:,} idle WebSocket connections open (a fresh server each):',
            '',
            '| interface | server | connections | worker before | worker with them open | per connection |',
            '|---|---|---:|---:|---:|---:|',
        ]
        for record in idle:
            lines.append(
                f'| {INTERFACE_TITLES[record["interface"]]} | {record["server"]} | {record["connections"]:,}'
                f' | {record["before"]["worker"] / 1024:.1f} MiB | {record["during"]["worker"] / 1024:.1f} MiB'
                f' | {record["bytes_per_connection"] / 1024:.1f} KiB |'
            )
    if results.get('notes'):
        lines += ['', 'Notes from this run:', '', *(f'- {note}' for note in results['notes'])]
    return '\n'.join(lines) + '\n'


def _rate(run: dict | None) -> str:
    return f'{run["rate"]:,.0f}' if run else '-'


def _p99(run: dict | None) -> str:
    return f'{run["p99_ms"]:.2f} ms' if run and run.get('p99_ms') is not None else '-'
