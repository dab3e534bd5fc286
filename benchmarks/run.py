#!/usr/bin/env python3
"""Side-by-side load benchmark of this repository's granian against granian 2.8.1 and other servers.

    python benchmarks/run.py [run] [--quick] [--interfaces rsgi,asgi] [--scenarios get-10b,echo-1k] [--list]
    python benchmarks/run.py setup      # create benchmarks/.venv-peers and install the peers
    python benchmarks/run.py ab COMMIT [--quick] [--repeats 5] [--interfaces ...] [--scenarios ...]
                                        # A/B: this tree's build vs COMMIT's, alternating repeats
    python benchmarks/run.py count [--interfaces ...] [--scenarios ...] [--servers ours,granian-2.8.1]
                                        # system calls and context switches per request, per thread
    python benchmarks/run.py instructions [--interfaces ...] [--scenarios ...] [--servers ours,ours-ref]
                                        # instructions per request under callgrind (machine-speed free)
    python benchmarks/run.py flamegraph [--interfaces ...] [--scenarios ...] [--servers ours,granian-2.8.1]
                                        # perf flame graphs of the worker (results/flamegraphs)
    python benchmarks/run.py report     # regenerate README.md and the charts from results/latest.json
    python benchmarks/run.py websocket [--quick] [--interfaces rsgi] [--no-memory]
                                        # WebSocket echo and idle-connection memory (results/websocket.json)
    python benchmarks/run.py static [--quick]
                                        # static files vs granian 2.8.1 and nginx (results/static.json)
    python benchmarks/run.py http3 [--quick] [--interfaces rsgi,asgi] [--connections 4] [--streams 16] [--ref]
                                        # HTTP/3: ours and Hypercorn (h3load, aioquic) vs ours over
                                        # HTTP/2+TLS (h2load) (results/http3.json)

Each server runs one worker on 127.0.0.1 pinned to CPU 0; the load generator (wrk, h2load) runs
pinned to CPU 1. A full run writes results/latest.json, the charts and README.md; other runs write
results/<name>.json and only print, unless --publish. Each run is compared with the previous saved
results (the file it replaces, else results/latest.json) and flags every cell of ours that fell by
more than 5%. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import accounting, compare, environment, flamegraph, http3, instructions, peers, reference, static
from harness import websocket as ws
from harness.plan import PLANS
from harness.report import latest_latency_save, write_readme
from harness.runner import INTERFACES, Runner, estimate
from harness.scenarios import SCENARIOS
from harness.servers import BENCHMARKS, DEFAULT_SERVERS, OURS, PEERS_PYTHON, REF, SERVERS

RESULTS = BENCHMARKS / 'results'
RAW = RESULTS / 'raw'
LATEST = RESULTS / 'latest.json'
WEBSOCKET = RESULTS / 'websocket.json'
STATIC = RESULTS / 'static.json'
HTTP3 = RESULTS / 'http3.json'
FLAMEGRAPHS = RESULTS / 'flamegraphs'
TEMPLATE = BENCHMARKS / 'README.template.md'
README = BENCHMARKS / 'README.md'
COMMANDS = (
    'run', 'setup', 'report', 'websocket', 'static', 'http3', 'ref', 'ab', 'count', 'instructions', 'flamegraph',
)  # fmt: skip
AB = RESULTS / 'ab.json'


def _names(text: str | None, known: list[str] | tuple[str, ...], what: str) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(',') if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        sys.exit(f'unknown {what}: {", ".join(unknown)}; choose from {", ".join(known)}')
    return names


def require_load_tools() -> None:
    """Exit with one line naming the Debian package of the first load tool that is missing."""
    for tool, package in (('wrk', 'wrk'), ('h2load', 'nghttp2-client'), ('taskset', 'util-linux')):
        if shutil.which(tool) is None:
            sys.exit(f'{tool} is needed: apt-get install -y {package}')


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def publish(results: dict | None, websocket: dict | None = None) -> None:
    """Charts into results/, README.md from the template (each part from the newest published run)."""
    results = results if results is not None else _load(LATEST)
    websocket = websocket if websocket is not None else _load(WEBSOCKET)
    charts = []
    if results is None:
        write_readme(TEMPLATE, README, None, [], None, websocket)
        print(f'wrote {README.relative_to(BENCHMARKS.parent)}')
        return
    try:
        from harness import charts as charting

        for old in RESULTS.glob('*.png'):
            old.unlink()
        charts = [str(path.relative_to(BENCHMARKS)) for path in charting.draw(results, RESULTS)]
    except ImportError:
        print('matplotlib is missing: README written without charts (hatch run bench:report installs it)')
    write_readme(TEMPLATE, README, results, charts, latest_latency_save(RESULTS / 'latency'), websocket)
    print(f'wrote {README.relative_to(BENCHMARKS.parent)} and {len(charts)} chart(s)')


def command_run(options: argparse.Namespace) -> int:
    plan = PLANS['quick' if options.quick else 'full']
    interfaces = _names(options.interfaces, INTERFACES, 'interfaces') or list(INTERFACES)
    scenarios = _names(options.scenarios, list(SCENARIOS), 'scenarios')
    servers = _names(options.servers, list(SERVERS), 'servers')
    if options.no_peers:
        servers = [n for n in (servers or DEFAULT_SERVERS) if n in ('ours', 'granian-2.8.1') or SERVERS[n].variant]
    plan = plan.restricted(set(scenarios) if scenarios else None)
    specs = [SERVERS[name] for name in (servers or DEFAULT_SERVERS)]
    if options.list:
        bound = (
            f' ({plan.client_bound_repeats} for client-bound cells)' if plan.client_bound_repeats > plan.repeats else ''
        )
        print(
            f'plan {plan.name}: {plan.repeats}{bound} x {plan.seconds:g} s per cell, warm-up {plan.warmup_seconds:g} s'
        )
        for label, matrix in (('ours + granian 2.8.1', plan.pair_matrix), ('other peers', plan.peer_matrix)):
            for concurrency, names in matrix.items():
                print(f'  {label}, {concurrency} connections: {", ".join(names)}')
        print(f'  memory: {plan.memory_requests:,} requests ({", ".join(plan.memory_scenarios)})')
        availability = environment.server_availability(specs)
        for spec in specs:
            state = availability[spec.name]
            status = f'skipped: {state["problem"]}' if state['problem'] else f'{state["version"]}'
            print(f'  {spec.name:<17} {",".join(i for i in spec.interfaces if i in interfaces):<15} {status}')
        parts = estimate(plan, interfaces, [s for s in specs if not availability[s.name]['problem']])
        print('estimated: ' + ', '.join(f'{name} {seconds / 60:.1f} min' for name, seconds in parts.items()))
        return 0
    require_load_tools()
    if not PEERS_PYTHON.exists() and peers.setup() != 0:
        return 1
    runner = Runner(plan, RAW, interfaces, servers, memory=not options.no_memory)
    results = runner.run()
    partial = scenarios is not None or servers is not None or options.interfaces is not None
    name = options.output or (LATEST if plan.name == 'full' and not partial else RESULTS / f'{plan.name}.json')
    output = Path(name)
    flag_regressions(results, _load(output) or _load(LATEST), output if output.exists() else LATEST)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + '\n')
    print(f'results: {output}')
    if options.publish or (output == LATEST and not options.no_publish):
        publish(results)
    return 0


def flag_regressions(results: dict, previous: dict | None, source: Path) -> None:
    """Records in `results` (and prints) the cells of ours that fell against `previous`."""
    if previous is None:
        return
    flagged = compare.regressions(previous, results)
    compare.against_earlier(flagged, previous.get('earlier_run'))
    results['earlier_run'] = compare.summary(previous)
    results['previous'] = {
        'file': str(source.relative_to(BENCHMARKS.parent)) if source.is_relative_to(BENCHMARKS.parent) else str(source),
        'commit': previous.get('revision', {}).get('commit', ''),
        'date': previous.get('date', ''),
    }
    results['regressions'] = flagged
    where = f'{results["previous"]["file"]} (commit {results["previous"]["commit"][:10]})'
    if not flagged:
        print(f'no cell fell more than {compare.REGRESSION_THRESHOLD:.0%} against {where}')
        return
    print(f'{len(flagged)} cell(s) fell more than {compare.REGRESSION_THRESHOLD:.0%} against {where}:')
    for item in flagged:
        print(f'  REGRESSION {compare.describe(item)}')


def command_ab(options: argparse.Namespace) -> int:
    plan = PLANS['quick' if options.quick else 'full']
    if options.repeats:
        plan = replace(plan, repeats=options.repeats)
    interfaces = _names(options.interfaces, INTERFACES, 'interfaces') or list(INTERFACES)
    scenarios = _names(options.scenarios, list(SCENARIOS), 'scenarios')
    plan = plan.restricted(set(scenarios) if scenarios else None)
    wanted = reference.ensure_built(options.commit)
    if wanted is None:
        return 1
    require_load_tools()
    results = Runner(plan, RAW, interfaces, [OURS, REF], memory=False).run()
    output = Path(options.output or AB)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + '\n')
    print(f'\nours (this tree, {results["revision"].get("commit", "")[:10]}) vs ours-ref ({wanted[:10]}):\n')
    print(compare.ab_table(results, OURS, REF))
    print(f'\nresults: {output}')
    return 0


def command_count(options: argparse.Namespace) -> int:
    interfaces = _names(options.interfaces, INTERFACES, 'interfaces') or list(INTERFACES)
    scenarios = _names(options.scenarios, list(SCENARIOS), 'scenarios') or ['get-10b', 'echo-1k', 'h2-get-1k']
    servers = _names(options.servers, list(SERVERS), 'servers') or [OURS, 'granian-2.8.1']
    rows = accounting.run(interfaces, scenarios, servers, options.connections, options.seconds, options.rounds, RAW)
    print()
    print(accounting.table(rows))
    if options.output:
        Path(options.output).write_text(json.dumps(rows, indent=1) + '\n')
    return 0


def command_instructions(options: argparse.Namespace) -> int:
    interfaces = _names(options.interfaces, INTERFACES, 'interfaces') or list(INTERFACES)
    scenarios = _names(options.scenarios, list(SCENARIOS), 'scenarios') or ['get-10b', 'echo-1k', 'h2-get-1k']
    servers = _names(options.servers, list(SERVERS), 'servers') or [OURS, 'granian-2.8.1']
    if options.commit is not None:
        if reference.ensure_built(options.commit) is None:
            return 1
        servers = [*servers, REF] if REF not in servers else servers
    rows = instructions.run(interfaces, scenarios, servers, options.connections, options.requests, options.rounds, RAW)
    print()
    print(instructions.table(rows))
    if options.functions:
        print()
        print(instructions.functions(rows, options.functions))
    if options.output:
        Path(options.output).write_text(json.dumps(rows, indent=1) + '\n')
    return 0


def command_flamegraph(options: argparse.Namespace) -> int:
    interfaces = _names(options.interfaces, INTERFACES, 'interfaces') or list(INTERFACES)
    scenarios = _names(options.scenarios, list(SCENARIOS), 'scenarios') or ['get-10b', 'h2-get-1k']
    servers = _names(options.servers, list(SERVERS), 'servers') or [OURS, 'granian-2.8.1']
    require_load_tools()
    output = Path(options.output)
    rows = flamegraph.run(interfaces, scenarios, servers, options.connections, options.seconds, output, RAW)
    (output / 'README.md').write_text(flamegraph.index(rows))
    print(f'index: {output / "README.md"}')
    return 0


def command_websocket(options: argparse.Namespace) -> int:
    plan = ws.PLANS['quick' if options.quick else 'full']
    interfaces = _names(options.interfaces, tuple(ws.WS_SERVERS), 'interfaces') or list(ws.WS_SERVERS)
    if shutil.which('taskset') is None:
        sys.exit('taskset is needed: apt-get install -y util-linux')
    if not PEERS_PYTHON.exists() and peers.setup() != 0:
        return 1
    results = ws.WebsocketRunner(plan, RAW, interfaces, memory=not options.no_memory).run()
    partial = options.interfaces is not None or options.no_memory
    default = WEBSOCKET if plan.name == 'full' and not partial else RESULTS / f'websocket-{plan.name}.json'
    output = Path(options.output or default)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + '\n')
    print(f'results: {output}')
    if options.publish or output == WEBSOCKET:
        publish(None, results)
    return 0


def command_static(options: argparse.Namespace) -> int:
    plan = static.PLANS['quick' if options.quick else 'full']
    require_load_tools()
    if not PEERS_PYTHON.exists() and peers.setup() != 0:
        return 1
    results = static.run(plan, RAW)
    output = Path(options.output or (STATIC if plan.name == 'full' else RESULTS / 'static-quick.json'))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + '\n')
    print(static.table(results))
    for note in results['notes']:
        print(f'note: {note}')
    print(f'results: {output}')
    return 0


def command_http3(options: argparse.Namespace) -> int:
    plan = http3.PLANS['quick' if options.quick else 'full']
    interfaces = _names(options.interfaces, http3.INTERFACES, 'interfaces') or list(http3.INTERFACES)
    for tool, package in (('h2load', 'nghttp2-client'), ('taskset', 'util-linux'), ('openssl', 'openssl')):
        if shutil.which(tool) is None:
            sys.exit(f'{tool} is needed: apt-get install -y {package}')
    if options.connections < 1 or options.streams < 1:
        sys.exit('--connections and --streams must be at least 1')
    if not PEERS_PYTHON.exists() and peers.setup() != 0:
        return 1
    runner = http3.Http3Runner(plan, RAW, interfaces, options.connections, options.streams, options.ref)
    results = runner.run()
    partial = (
        options.interfaces is not None
        or options.connections != http3.CONNECTIONS
        or options.streams != http3.STREAMS
        or options.ref
    )
    default = HTTP3 if plan.name == 'full' and not partial else RESULTS / f'http3-{plan.name}.json'
    output = Path(options.output or default)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + '\n')
    print()
    print(http3.table(results))
    print()
    print(http3.caveat(results))
    for note in results['notes']:
        print(f'note: {note}')
    print(f'results: {output}')
    return 0


def command_report(options: argparse.Namespace) -> int:
    results = json.loads(Path(options.input).read_text())
    publish(results)
    return 0


def _measurement_arguments(parser: argparse.ArgumentParser, default_scenarios: str) -> None:
    """The options of the commands that measure each server on each scenario (`count`,
    `instructions`, `flamegraph`): which interfaces, scenarios and servers, at how many connections."""
    parser.add_argument('--interfaces', help=f'comma-separated subset of {",".join(INTERFACES)}')
    parser.add_argument('--scenarios', help=f'comma-separated scenarios (default: {default_scenarios})')
    parser.add_argument('--servers', help='comma-separated servers (default: ours,granian-2.8.1)')
    parser.add_argument('--connections', type=int, default=64, help='concurrent connections (default: 64)')


def main() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0] not in (*COMMANDS, '-h', '--help'):
        argv = ['run', *argv]
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    run = commands.add_parser('run', help='measure (the default command)')
    run.add_argument('--quick', action='store_true', help='the short plan (under 3 minutes)')
    run.add_argument('--interfaces', help=f'comma-separated subset of {",".join(INTERFACES)}')
    run.add_argument('--scenarios', help=f'comma-separated subset of {",".join(SCENARIOS)}')
    run.add_argument('--servers', help=f'comma-separated subset of {",".join(SERVERS)}')
    run.add_argument('--no-peers', action='store_true', help='only ours and granian 2.8.1')
    run.add_argument('--no-memory', action='store_true', help='skip the memory runs')
    run.add_argument('--list', action='store_true', help='print the plan, the servers found and an estimate; no load')
    run.add_argument('--output', help='results file (default: results/latest.json for a full run)')
    run.add_argument('--publish', action='store_true', help='write README.md and charts from this run')
    run.add_argument('--no-publish', action='store_true', help='do not write README.md and charts')
    commands.add_parser('setup', help='create benchmarks/.venv-peers and install the peers')
    ref = commands.add_parser('ref', help='build another commit of ours into benchmarks/.venv-ref (server ours-ref)')
    ref.add_argument('commit', help='the commit to build, such as HEAD~1 or a tag')
    ab = commands.add_parser('ab', help='A/B: this tree vs another commit of ours, alternating repeats')
    ab.add_argument('commit', help='the commit to compare with (built into benchmarks/.venv-ref if needed)')
    ab.add_argument('--quick', action='store_true', help='the short plan (1 x 1 s per cell)')
    ab.add_argument('--repeats', type=int, help="measured runs per server and cell (default: the plan's)")
    ab.add_argument('--interfaces', help=f'comma-separated subset of {",".join(INTERFACES)}')
    ab.add_argument('--scenarios', help=f'comma-separated subset of {",".join(SCENARIOS)}')
    ab.add_argument('--output', help='results file (default: results/ab.json)')
    counting = commands.add_parser('count', help='system calls and context switches per request, per worker thread')
    _measurement_arguments(counting, 'get-10b,echo-1k,h2-get-1k')
    counting.add_argument('--seconds', type=float, default=3.0, help='seconds counted per run (default: 3)')
    counting.add_argument('--rounds', type=int, default=1, help='runs per server and scenario (default: 1)')
    counting.add_argument('--output', help='also write the figures to this JSON file')
    counted = commands.add_parser('instructions', help='instructions per request under callgrind, by part and function')
    _measurement_arguments(counted, 'get-10b,echo-1k,h2-get-1k')
    counted.add_argument('--commit', help='also measure this commit of ours (built into benchmarks/.venv-ref)')
    counted.add_argument('--requests', type=int, default=10000, help='requests counted per run (default: 10000)')
    counted.add_argument('--rounds', type=int, default=1, help='runs per server and scenario (default: 1)')
    counted.add_argument('--functions', type=int, default=0, help='also print this many top functions per run')
    counted.add_argument('--output', help='also write the figures (with the top functions) to this JSON file')
    graphs = commands.add_parser('flamegraph', help='perf flame graphs of the worker under load, every thread')
    _measurement_arguments(graphs, 'get-10b,h2-get-1k')
    graphs.add_argument('--seconds', type=float, default=4.0, help='seconds sampled per graph (default: 4)')
    graphs.add_argument(
        '--output',
        default=str(FLAMEGRAPHS),
        help='directory for the SVGs and their index (default: results/flamegraphs)',
    )
    report = commands.add_parser('report', help='regenerate README.md and the charts from a results file')
    report.add_argument('input', nargs='?', default=str(LATEST), help='results file (default: results/latest.json)')
    websocket = commands.add_parser('websocket', help='WebSocket echo rates and idle-connection memory')
    websocket.add_argument('--quick', action='store_true', help='the short plan (about 2 minutes)')
    websocket.add_argument('--interfaces', help='comma-separated subset of rsgi,asgi')
    websocket.add_argument('--no-memory', action='store_true', help='skip the idle-connection memory runs')
    websocket.add_argument('--output', help='results file (default: results/websocket.json for a full run)')
    websocket.add_argument('--publish', action='store_true', help='write README.md from this run')
    static_run = commands.add_parser('static', help='static files: ours vs granian 2.8.1 vs nginx')
    static_run.add_argument('--quick', action='store_true', help='the short plan (about 1 minute)')
    static_run.add_argument('--output', help='results file (default: results/static.json for a full run)')
    h3 = commands.add_parser('http3', help='HTTP/3: ours and Hypercorn vs ours over HTTP/2+TLS')
    h3.add_argument('--quick', action='store_true', help='the short plan (1 x 3 s per row, under 2 minutes)')
    h3.add_argument('--interfaces', help=f'comma-separated subset of {",".join(http3.INTERFACES)}')
    h3.add_argument('--connections', type=int, default=http3.CONNECTIONS, help='connections (default: 4)')
    h3.add_argument(
        '--streams', type=int, default=http3.STREAMS, help='requests in flight per connection (default: 16)'
    )
    h3.add_argument('--output', help='results file (default: results/http3.json for a full run)')
    h3.add_argument(
        '--ref', action='store_true', help='also ours-ref over HTTP/3 (built by `run.py ref COMMIT`): an A/B run'
    )
    options = parser.parse_args(argv)
    if options.command == 'http3':
        return command_http3(options)
    if options.command == 'static':
        return command_static(options)
    if options.command == 'websocket':
        return command_websocket(options)
    if options.command == 'ref':
        return reference.build(options.commit)
    if options.command == 'ab':
        return command_ab(options)
    if options.command == 'count':
        return command_count(options)
    if options.command == 'instructions':
        return command_instructions(options)
    if options.command == 'flamegraph':
        return command_flamegraph(options)
    if options.command == 'setup':
        return peers.setup()
    if options.command == 'report':
        return command_report(options)
    return command_run(options)


if __name__ == '__main__':
    sys.exit(main())
