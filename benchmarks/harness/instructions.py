"""Instructions per request, counted by callgrind: a figure that does not move with the machine's speed.

`python benchmarks/run.py instructions` starts each server under valgrind's callgrind tool (every
process of it, so the worker too), sends a fixed number of requests with h2load, and reads how many
instructions the worker ran for them. Timed runs on a shared machine drift by 10-30% between
repeats; these counts repeat within about 2%, so a change of a few percent in the work a request
costs is visible, and two builds (or ours and granian 2.8.1) can be compared on a noisy day.

What the count leaves out: time in the kernel (system calls: see `run.py count`), cache misses and
waiting. The server runs some 50 times slower under callgrind, so the load generator is never the
limit and every wake-up finds as much work as it can: per-wake-up costs weigh less than at full
speed. Each measurement is bracketed by `callgrind_control --zero` and `--dump` on the worker, so
start-up, the warm-up and the readiness probes are not counted. The dump also breaks the count down
by shared object (the server's native module, the Python interpreter, uvloop, libc) and function.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from .accounting import measurements, start_servers, worker_pid
from .load import LoadError, Workspace, run_counted
from .scenarios import SCENARIOS
from .servers import RunningServer, ServerSpec

#: Start-up under callgrind takes 10-40 s on this class of machine.
READY_TIMEOUT = 240.0
#: How long a dump may take to appear on disk after `callgrind_control --dump` returns.
DUMP_TIMEOUT = 60.0
#: Shared objects grouped into the parts a request's instructions are reported in, by a piece of
#: the object's file name (first match wins; anything else is `other`).
PARTS = (
    ('server', ('/granian/_core.', '/granian/_granian.', 'bjoern', 'fastwsgi')),
    ('python', ('libpython', '/bin/python', 'lib-dynload/')),
    ('uvloop', ('uvloop/',)),
    ('libc', ('libc.so', 'ld-linux', 'libm.so')),
)
PART_NAMES = (*(name for name, _ in PARTS), 'other')
#: Functions listed per measurement in the results file.
TOP_FUNCTIONS = 25


def part_of(shared_object: str) -> str:
    """The part (`server`, `python`, `uvloop`, `libc` or `other`) a shared object's instructions count in."""
    for name, pieces in PARTS:
        if any(piece in shared_object for piece in pieces):
            return name
    return 'other'


def self_costs(text: str) -> tuple[int, Counter[str], Counter[tuple[str, str]]]:
    """Total instructions and the self cost per shared object and per (object, function) of a
    callgrind profile (one event, `Ir`, positions by line).

    The format names each object and function once as `(id) name` and later as `(id)`; `ob=`/`fn=`
    set where the following cost lines belong, `cob=`/`cfn=` only name a callee, and the cost line
    right after `calls=` is the inclusive cost of that call, not self cost.
    """
    names: dict[str, dict[str, str]] = {'ob': {}, 'fn': {}}
    kinds = {'ob': 'ob', 'cob': 'ob', 'fn': 'fn', 'cfn': 'fn'}
    current = {'ob': '?', 'fn': '?'}
    by_object: Counter[str] = Counter()
    by_function: Counter[tuple[str, str]] = Counter()
    total = 0
    call_cost_next = False
    for line in text.splitlines():
        if not line or line[0] == '#':
            continue
        if line[0].isdigit() or line[0] in '+-*':
            if call_cost_next:
                call_cost_next = False
                continue
            fields = line.split()
            cost = int(fields[-1]) if len(fields) >= 2 else 0
            total += cost
            by_object[current['ob']] += cost
            by_function[(current['ob'], current['fn'])] += cost
            continue
        key, _, value = line.partition('=')
        if key == 'calls':
            call_cost_next = True
        elif key in kinds:
            table = names[kinds[key]]
            match = re.fullmatch(r'\((\d+)\)(?: (.*))?', value)
            if match is None:
                name = value
            elif match.group(2) is not None:
                name = table[match.group(1)] = match.group(2)
            else:
                name = table.get(match.group(1), '?')
            if key in current:
                current[key] = name
    return total, by_object, by_function


class Callgrind:
    """The valgrind command line that profiles a server, and zero/dump of one of its processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def wrapper(self, label: str) -> tuple[str, ...]:
        """Goes before the server's python: callgrind on it and every process it starts."""
        return (
            'valgrind', '--tool=callgrind', '--trace-children=yes',
            f'--callgrind-out-file={self.directory}/{label}.%p', f'--log-file={self.directory}/{label}.%p.log',
        )  # fmt: skip

    def _control(self, option: str, pid: int) -> None:
        argv = ['callgrind_control', option, str(pid)]
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or 'OK' not in done.stdout:
            raise LoadError(f'callgrind_control {option} {pid} failed: {(done.stdout + done.stderr).strip()[-200:]}')

    def zero(self, pid: int) -> None:
        """Forget what process `pid` counted so far."""
        self._control('-z', pid)

    def dump(self, label: str, pid: int) -> str:
        """Write what process `pid` counted since the last zero; returns the profile's text."""
        before = set(self.directory.glob(f'{label}.{pid}.*'))
        self._control('-d', pid)
        deadline = time.monotonic() + DUMP_TIMEOUT
        while time.monotonic() < deadline:
            new = [path for path in self.directory.glob(f'{label}.{pid}.*') if path not in before]
            new = [path for path in new if not path.name.endswith('.log')]
            if new:
                text = new[0].read_text(errors='replace')
                if 'totals:' in text or 'summary:' in text:
                    return text
            time.sleep(0.2)
        raise LoadError(f'no callgrind dump of process {pid} within {DUMP_TIMEOUT:.0f} s')


def measure(
    callgrind: Callgrind, label: str, server: RunningServer, workspace: Workspace, scenario: str, connections: int,
    requests: int,
) -> dict:  # fmt: skip
    """Instructions the worker ran for `requests` requests of `scenario`, in total and by part."""
    spec = SCENARIOS[scenario]
    pid = worker_pid(server)
    run_counted(workspace, spec, server.port, connections, max(connections, requests // 5), timeout=600)
    callgrind.zero(pid)
    result = run_counted(workspace, spec, server.port, connections, requests, timeout=1800)
    text = callgrind.dump(label, pid)
    if result.errors or result.requests != requests:
        raise LoadError(f'{result.requests} of {requests} requests done, {result.errors} failed')
    total, by_object, by_function = self_costs(text)
    parts: Counter[str] = Counter()
    for shared_object, cost in by_object.items():
        parts[part_of(shared_object)] += cost
    top = by_function.most_common(TOP_FUNCTIONS)
    return {
        'server': server.name,
        'requests': requests,
        'instructions': round(total / requests),
        'parts': {name: round(parts[name] / requests) for name in PART_NAMES},
        'functions': [
            {'object': Path(shared_object).name, 'function': function, 'instructions': round(cost / requests)}
            for (shared_object, function), cost in top
        ],
    }


def table(rows: list[dict]) -> str:
    """Markdown: one line per measurement, instructions per request in total and by part."""
    lines = [
        '| interface | scenario | server | instructions / request | ' + ' | '.join(PART_NAMES) + ' |',
        '|---|---|---|---:|' + '---:|' * len(PART_NAMES),
    ]
    for row in rows:
        parts = ' | '.join(f'{row["parts"][name]:,}' for name in PART_NAMES)
        lines.append(
            f'| {row["interface"]} | {row["scenario"]} c{row["connections"]} | {row["server"]}'
            f' | {row["instructions"]:,} | {parts} |'
        )
    return '\n'.join(lines)


def functions(rows: list[dict], count: int) -> str:
    """The `count` functions with the most instructions per request, for each measurement."""
    blocks = []
    for row in rows:
        head = f'{row["interface"]} {row["scenario"]} c{row["connections"]} {row["server"]}:'
        body = [f'  {item["instructions"]:>8,}  {item["object"]}  {item["function"]}' for item in row['functions']]
        blocks.append('\n'.join([head, *body[:count]]))
    return '\n\n'.join(blocks)


def run(
    interfaces: Iterable[str],
    scenarios: Iterable[str],
    servers: Iterable[str],
    connections: int,
    requests: int,
    rounds: int,
    raw: Path,
) -> list[dict]:
    """Counted measurements of every server on every scenario, `rounds` times, alternating servers."""
    for tool, package in (('valgrind', 'valgrind'), ('callgrind_control', 'valgrind'), ('h2load', 'nghttp2-client')):
        if shutil.which(tool) is None:
            raise SystemExit(f'{tool} is needed: apt-get install -y {package}')
    # The same hash seed in every run: dictionary layouts, hence instruction counts, repeat.
    os.environ['PYTHONHASHSEED'] = '0'
    callgrind = Callgrind(raw / 'callgrind')
    for old in callgrind.directory.iterdir():
        old.unlink()
    servers = list(servers)
    rows: list[dict] = []
    workspace = Workspace()
    try:

        def start(interface: str, tls: bool) -> list[RunningServer]:
            def build(spec: ServerSpec, label: str) -> RunningServer:
                log = raw / f'{label}-instructions.log'
                return RunningServer(
                    spec,
                    interface,
                    log,
                    extra_arguments=workspace.server_arguments(tls),
                    tls=tls,
                    wrapper=callgrind.wrapper(label),
                    ready_timeout=READY_TIMEOUT,
                )

            return start_servers(servers, interface, build)

        for interface, scenario, server in measurements(workspace, interfaces, scenarios, rounds, start):
            label = f'{interface}-{server.name}'
            row = measure(callgrind, label, server, workspace, scenario, connections, requests)
            row.update(interface=interface, scenario=scenario, connections=connections)
            rows.append(row)
            print(
                f'{interface} {scenario} c{connections} {server.name}: {row["instructions"]:,} instructions / request'
            )
    finally:
        workspace.close()
    return rows
