"""The benchmark harness's own logic: the comparison with the previous run, A/B tables, load commands.

No load is generated here; these check the arithmetic and the commands the harness builds.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import accounting, compare, flamegraph, h3load, http3, instructions, load, report, servers
from harness.scenarios import SCENARIOS


def _run(server: str, rps: float, scenario: str = 'get-10b', concurrency: int = 64, **extra) -> dict:
    return {
        'interface': 'rsgi',
        'scenario': scenario,
        'concurrency': concurrency,
        'server': server,
        'rps': rps,
        'repeats': [{'rps': rps}],
        **extra,
    }


def _results(*runs: dict) -> dict:
    return {'runs': list(runs), 'revision': {'commit': 'abc123'}, 'date': '2026-12-01'}


def test_a_cell_that_fell_against_granian_is_flagged():
    before = _results(_run('ours', 100_000), _run('granian-2.8.1', 80_000))
    # The machine got slower for both (80% of before) and ours lost a further 10%.
    now = _results(_run('ours', 72_000), _run('granian-2.8.1', 64_000))
    [flagged] = compare.regressions(before, now)
    assert flagged['measure'] == 'ratio to granian 2.8.1'
    assert flagged['before'] == 1.25 and flagged['now'] == 1.125
    assert flagged['change'] == -0.1
    assert 'RSGI GET 10 B (64 conns)' in compare.describe(flagged)


def test_a_flagged_cell_shows_its_change_against_the_run_before():
    earlier = compare.summary(
        {**_results(_run('ours', 90_000), _run('granian-2.8.1', 80_000)), 'revision': {'commit': 'e' * 40}}
    )
    before = _results(_run('ours', 100_000), _run('granian-2.8.1', 80_000))  # 1.25, the high
    now = _results(_run('ours', 72_000), _run('granian-2.8.1', 64_000))  # 1.125
    [flagged] = compare.regressions(before, now)
    compare.against_earlier([flagged], earlier)
    assert flagged['earlier'] == {'commit': 'e' * 40, 'before': 1.125, 'change': 0.0}
    assert 'against the run before (`eeeeeeeeee`): 1.125 (+0.0%)' in compare.describe(flagged)
    # A cell the earlier run did not measure, or no earlier run at all: no annotation.
    compare.against_earlier([flagged := compare.regressions(before, now)[0]], compare.summary(_results()))
    compare.against_earlier([flagged], None)
    assert 'earlier' not in flagged


def test_drift_shared_with_granian_is_not_a_regression():
    before = _results(_run('ours', 100_000), _run('granian-2.8.1', 80_000))
    now = _results(_run('ours', 80_000), _run('granian-2.8.1', 64_000))
    assert compare.regressions(before, now) == []


def test_within_the_threshold_is_not_flagged_and_beyond_it_is():
    before = _results(_run('ours', 100_000))
    assert compare.regressions(before, _results(_run('ours', 95_500))) == []
    [flagged] = compare.regressions(before, _results(_run('ours', 94_000)))
    assert flagged['measure'] == 'req/s' and flagged['change'] == -0.06


def test_a_drop_inside_the_runs_own_scatter_is_not_flagged():
    before = _results(_run('ours', 100_000), _run('granian-2.8.1', 80_000))  # ratio 1.25
    rounds = [(84_000, 80_000), (90_000, 80_000), (130_000, 100_000)]  # paired ratios 1.05, 1.125, 1.30
    ours = _run('ours', 90_000, repeats=[{'rps': mine} for mine, _ in rounds])
    theirs = _run('granian-2.8.1', 80_000, repeats=[{'rps': base} for _, base in rounds])
    assert compare.regressions(before, _results(ours, theirs)) == []
    # Every round below the previous ratio: flagged even though one round came close.
    rounds = [(84_000, 80_000), (90_000, 80_000), (98_000, 80_000)]
    ours = _run('ours', 90_000, repeats=[{'rps': mine} for mine, _ in rounds])
    theirs = _run('granian-2.8.1', 80_000, repeats=[{'rps': base} for _, base in rounds])
    [flagged] = compare.regressions(before, _results(ours, theirs))
    assert flagged['now'] == 1.125


def test_client_bound_cells_compare_server_cpu_throughput():
    cell = {'scenario': 'https-handshake'}
    before = _results(_run('ours', 1_000, rps_per_cpu=5_000, **cell))
    # Same req/s (the client set the pace) but the server needs 20% more CPU per request.
    now = _results(_run('ours', 1_000, rps_per_cpu=4_000, **cell))
    [flagged] = compare.regressions(before, now)
    assert flagged['change'] == -0.2


def test_cells_missing_on_either_side_are_skipped():
    before = _results(_run('ours', 100_000, scenario='get-1k'))
    now = _results(_run('ours', 10_000, scenario='get-10k'))
    assert compare.regressions(before, now) == []


def test_ab_rows_pair_repeats_and_show_their_spread():
    a = _run('ours', 110, repeats=[{'rps': 100}, {'rps': 110}, {'rps': 130}])
    b = _run('ours-ref', 100, repeats=[{'rps': 100}, {'rps': 100}, {'rps': 100}])
    [row] = compare.ab_rows(_results(a, b), 'ours', 'ours-ref')
    assert row['ratio'] == 1.1
    assert (row['low'], row['high']) == (1.0, 1.3)
    assert '| 1.100 | 1.00 - 1.30 |' in compare.ab_table(_results(a, b), 'ours', 'ours-ref')


def test_ab_rows_compare_server_cpu_throughput_in_client_bound_cells():
    cell = {'scenario': 'https-handshake'}
    # Saved repeats carry the requests and the server's CPU time, not the ratio.
    a = _run('ours', 1_000, rps_per_cpu=6_000, repeats=[{'rps': 1_000, 'requests': 6_000, 'server_cpu_s': 1.0}], **cell)
    b = _run(
        'ours-ref', 1_000, rps_per_cpu=5_000, repeats=[{'rps': 1_000, 'requests': 5_000, 'server_cpu_s': 1.0}], **cell
    )
    [row] = compare.ab_rows(_results(a, b), 'ours', 'ours-ref')
    assert (row['ratio'], row['low'], row['per_cpu']) == (1.2, 1.2, True)
    assert '| 6,000 per CPU-s | 5,000 per CPU-s | 1.200 |' in compare.ab_table(_results(a, b), 'ours', 'ours-ref')


def test_pipelined_scenario_sends_its_requests_back_to_back():
    workspace = load.Workspace()
    try:
        pipelined = load._h2load_argv(workspace, SCENARIOS['pipe-get-10b'], True, 64)
        plain = load._h2load_argv(workspace, SCENARIOS['get-10b'], True, 64)
        http2 = load._h2load_argv(workspace, SCENARIOS['h2-get-1k'], False, 64)
    finally:
        workspace.close()
    assert pipelined[-2:] == ['--h1', '-m16']
    assert plain[-2:] == ['--h1', '-m1']
    assert '--h1' not in http2 and '-m4' in http2


def test_the_handshake_scenario_opens_connections_at_a_fixed_rate(monkeypatch):
    """Every server gets the same offered load: 1,000 new connections a second, 10 per 10 ms, one
    request each, for at least PACE_MIN_SECONDS; the warm-up takes the same pace for its own time."""
    commands: list[list[str]] = []

    def fake_h2load(argv: list[str], timeout: float) -> load.ToolRun:
        commands.append(argv)
        log = Path(argv[argv.index('--log-file') + 1])
        log.write_text(''.join(f'0\t200\t{micros}\n' for micros in range(1000, 101_000, 1000)))
        total = int(next(arg for arg in argv if arg.startswith('-n'))[2:])
        out = (
            f'finished in 4.00s, 1000.00 req/s, 0B/s\n'
            f'requests: {total} total, {total} started, {total} done, {total} succeeded, 0 failed, 0 errored, 0 timeout\n'
            f'status codes: {total} 2xx, 0 3xx, 0 4xx, 0 5xx\n'
        )
        return load.ToolRun(stdout=out, cpu_s=1.0, wall_s=4.0)

    monkeypatch.setattr(load, 'run_pinned', fake_h2load)
    scenario = SCENARIOS['https-handshake']
    workspace = load.Workspace()
    try:
        result = load.DRIVERS[scenario.driver](workspace, scenario, 8443, 64, 2.0)
        load.warm_up(workspace, scenario, 8443, 64, 0.5)
        kept = load.DRIVERS[scenario.driver](workspace, replace(scenario, reconnect=False), 8443, 64, 2.0)
    finally:
        workspace.close()
    measured, warm, keep_alive = commands
    assert 'Connection: close' not in keep_alive and '--h1' in keep_alive and kept.requests == 4000
    assert measured[:6] == ['h2load', '-t1', '-c4000', '-n4000', '-r10', '--rate-period=10ms']
    assert ['--h1', '-H', 'Connection: close'] == measured[6:9] and measured[-1] == 'https://127.0.0.1:8443/b/10'
    assert warm[2:4] == ['-c500', '-n500']
    assert (result.rps, result.requests, result.errors) == (1000.0, 4000, 0)
    assert (result.p50_ms, result.p99_ms) == (51.0, 100.0)
    assert result.client_busy == 0.25


def test_load_generator_cpu_share_is_measured_and_reported():
    tool = load.run_pinned(
        [sys.executable, '-c', 'import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass'],
        30,
    )
    assert tool.cpu_s >= 0.25 and tool.wall_s >= tool.cpu_s * 0.9
    result = load.LoadResult(rps=1, p50_ms=None, p99_ms=None, requests=1, errors=0).timed(tool)
    # A busy loop keeps its core busy; the margin is for other tests sharing that core (pytest -n 2).
    assert 0.2 < result.client_busy <= 1.05
    assert report._busy(0.95) == '**95% sat**' and report._busy(0.5) == '50%'


def test_readme_lists_regressions_against_the_previous_run():
    now = _results(_run('ours', 90_000), _run('granian-2.8.1', 80_000))
    now['previous'] = {'file': 'benchmarks/results/latest.json', 'commit': 'feedface00', 'date': '2026-11-30'}
    now['regressions'] = compare.regressions(_results(_run('ours', 100_000), _run('granian-2.8.1', 80_000)), now)
    text = '\n'.join(report._regressions(now))
    assert 'feedface00' in text and 'ratio to granian 2.8.1 1.25 -> 1.125 (-10.0%)' in text
    now['regressions'] = []
    assert 'No cell of ours fell more than 5%' in '\n'.join(report._regressions(now))


PERF_STAT = """# started on Tue Dec  1 10:21:21 2026

python-15421,41569,,syscalls:sys_enter_write,961987200,100.00,,
granian-rt-0-15422,4160,,syscalls:sys_enter_write,2001153656,100.00,,
granian-rt-0-15422,39684,,syscalls:sys_enter_writev,2001153656,100.00,,
granian-loop-wa-15423,0,,syscalls:sys_enter_writev,198489,100.00,,
granian-rt-0-15422,<not counted>,,syscalls:sys_enter_futex,0,0.00,,
python-15421,3300,,context-switches,961941243,100.00,,
"""


def test_perf_stat_counts_are_read_per_thread_name():
    threads = accounting._parse(PERF_STAT)
    assert threads['python'] == {'write': 41569.0, 'context-switches': 3300.0}
    assert threads['granian-rt-0'] == {'write': 4160.0, 'writev': 39684.0}
    assert threads['granian-loop-wa'] == {'writev': 0.0}


def test_accounting_table_has_one_line_per_thread():
    row = {
        'interface': 'asgi',
        'scenario': 'echo-1k',
        'connections': 64,
        'server': 'ours',
        'rps': 40_000.0,
        'threads': {'python': {'write': 0.034}, 'granian-rt-0': {'writev': 0.98, 'context-switches': 0.03}},
    }
    lines = accounting.table([row]).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith('| asgi | echo-1k c64 | ours | 40,000 | granian-rt-0 | 0.000 | 0.980 |')
    assert lines[3].endswith('| 0.000 |') and '| python | 0.034 |' in lines[3]


#: A callgrind profile in its compressed form: names given once as `(id) name`, then as `(id)`;
#: the line after `calls=` is the cost of that call, which belongs to the callee, not the caller.
CALLGRIND = """# callgrind format
version: 1
creator: callgrind-3.19.0
events: Ir
summary: 1000

ob=(1) /venv/lib/python3.11/site-packages/granian/_core.cpython-311-x86_64-linux-gnu.so
fl=(1) ???
fn=(1) _core::workers::serve_http
0 300
cob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6
cfi=(2) ???
cfn=(2) memcpy
calls=4 0
0 200
+2 100

ob=(2)
fl=(2)
fn=(2)
0 200
fn=(3) malloc
* 50

ob=(3) /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0
fl=(3) ???
fn=(4) _PyEval_EvalFrameDefault
0 150

ob=(1)
fl=(1)
fn=(1)
0 100
totals: 1000
"""


def test_callgrind_self_costs_skip_call_costs_and_resolve_compressed_names():
    total, by_object, by_function = instructions.self_costs(CALLGRIND)
    assert total == 900
    core = '/venv/lib/python3.11/site-packages/granian/_core.cpython-311-x86_64-linux-gnu.so'
    libc = '/usr/lib/x86_64-linux-gnu/libc.so.6'
    assert by_object[core] == 500 and by_object[libc] == 250
    assert by_function[(core, '_core::workers::serve_http')] == 500
    assert by_function[(libc, 'memcpy')] == 200 and by_function[(libc, 'malloc')] == 50
    assert instructions.part_of(core) == 'server'
    assert instructions.part_of(libc) == 'libc'
    assert instructions.part_of('/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0') == 'python'
    assert instructions.part_of('/venv/lib/python3.11/site-packages/uvloop/loop.cpython-311.so') == 'uvloop'
    assert instructions.part_of('???') == 'other'


def test_kib_fields_of_proc_files_are_read():
    rollup = (
        '55d4c1a2b000-7ffd3c1fe000 ---p 00000000 00:00 0                          [rollup]\n'
        'Rss:               30944 kB\nPss:               21570 kB\nPrivate_Clean:      2896 kB\n'
        'Private_Dirty:     15380 kB\nTHPeligible:    0\n'
    )
    fields = servers.kib_fields(rollup)
    assert fields == {'Rss': 30944, 'Pss': 21570, 'Private_Clean': 2896, 'Private_Dirty': 15380}
    assert servers.kib_fields('Name:\tpython\nVmRSS:\t  29324 kB\nThreads:\t3\n') == {'VmRSS': 29324}


def test_the_memory_table_reads_runs_saved_before_the_shares_were_measured():
    reading = {'worker': 30_000, 'worker_peak': 31_000, 'supervisor_worker': 60_000}
    record = {'interface': 'rsgi', 'server': 'ours', 'requests': 1000, 'after_warmup': reading, 'rps': 1000}
    old = report._memory_table({'memory': [{**record, 'after': reading}]})
    assert '| - | - |' in old[-1]
    shares = {**reading, 'worker_private': 18_432, 'supervisor_worker_pss': 41_984}
    new = report._memory_table({'memory': [{**record, 'after': shares}]})
    assert '| 18.0 MiB | 41.0 MiB |' in new[-1]


def test_counted_measurements_serve_tls_scenarios_from_https_servers(monkeypatch):
    """`count` and `instructions` start the servers again with a certificate for HTTPS scenarios."""
    monkeypatch.setattr(accounting, 'check', lambda workspace, spec, port: None)
    started: list[tuple[str, bool]] = []

    class Started:
        def __init__(self, tls: bool) -> None:
            self.spec = servers.SERVERS['ours']
            self.name = 'ours'
            self.tls = tls
            self.stopped = False
            self.port = 1

        def stop(self) -> None:
            self.stopped = True

    def start(interface: str, tls: bool) -> list:
        started.append((interface, tls))
        return [Started(tls)]

    scenarios = ['https-get-1k', 'get-10b', 'https-h2-get-1k']
    measured = [(interface, scenario, server.tls) for interface, scenario, server in accounting.measurements(
        None, ['rsgi'], scenarios, 1, start
    )]  # fmt: skip
    assert started == [('rsgi', False), ('rsgi', True)]
    assert measured == [('rsgi', 'get-10b', False), ('rsgi', 'https-get-1k', True), ('rsgi', 'https-h2-get-1k', True)]


def test_tls_servers_get_the_workspace_certificate(tmp_path, monkeypatch):
    workspace = load.Workspace()
    try:
        assert workspace.server_arguments(False) == ()
        monkeypatch.setattr(workspace, 'certificate', lambda: (tmp_path / 'c.pem', tmp_path / 'k.pem'))
        flags = workspace.server_arguments(True)
        assert flags == ('--ssl-certificate', str(tmp_path / 'c.pem'), '--ssl-keyfile', str(tmp_path / 'k.pem'))
    finally:
        workspace.close()


def test_h3load_summary_counts_rates_latency_percentiles_and_its_own_cpu():
    latencies = [n / 1000 for n in range(200, 0, -1)]  # 1..200 ms, out of order
    figures = h3load.summarise(latencies, errors=2, window_s=2.0, cpu_s=1.9, unfinished=64, first_error='status 500')
    assert figures['completed'] == 200 and figures['errors'] == 2 and figures['unfinished'] == 64
    assert figures['rps'] == 100.0
    assert figures['p50_ms'] == 101.0 and figures['p99_ms'] == 199.0
    assert figures['busy'] == 0.95 and figures['first_error'] == 'status 500'
    # Nothing completed: no percentiles, no rate, and no division by an empty window.
    empty = h3load.summarise([], errors=0, window_s=0.0, cpu_s=0.0)
    assert empty['rps'] == 0.0 and empty['p50_ms'] is None and empty['p99_ms'] is None and empty['busy'] is None


def test_h3load_checks_every_answer_and_sends_the_apps_payload():
    body = h3load.payload(1024)
    assert body == load.payload(1024)  # the same bytes as benchmarks/apps/payloads.py
    echo = h3load.Request('POST', '/echo', body, 1024, echo=True)
    assert echo.problem(200, body) is None
    assert echo.problem(500, body) == 'status 500'
    assert echo.problem(200, body[:10]) == '10 body bytes instead of 1024'
    assert echo.problem(200, body[::-1]) == 'the echoed body differs from the request body'
    assert (b'content-length', b'1024') in echo.head()
    assert h3load.Request('GET', '/b/1k').problem(200, b'any length') is None


def test_http3_rows_take_medians_and_the_table_marks_a_saturated_client():
    def result(rps: float, client_cpu: float, server_cpu: float) -> load.LoadResult:
        measured = load.LoadResult(rps=rps, p50_ms=1.0, p99_ms=2.0, requests=int(rps * 2), errors=0)
        measured.client_cpu_s, measured.client_wall_s, measured.server_cpu_s = client_cpu, 2.0, server_cpu
        return measured

    server = servers.RunningServer(servers.SERVERS['ours'], 'rsgi', Path('unused.log'), port=1)
    h3 = http3.Target(server, 'ours', http3.HTTP3)
    h2 = http3.Target(server, 'ours', http3.HTTP2_TLS)
    rows = [
        http3.row('get-1k', 'rsgi', h3, [result(3_000, 2.0, 0.4), result(2_000, 1.9, 0.4), result(2_500, 2.0, 0.4)]),
        http3.row('get-1k', 'rsgi', h2, [result(50_000, 0.8, 2.0)]),
    ]
    assert rows[0]['rps'] == 2_500 and rows[0]['client'] == 'h3load' and rows[0]['client_busy'] == 1.0
    assert rows[0]['server_busy'] == 0.2 and rows[0]['rps_per_server_cpu'] == 12_500
    results = {'rows': rows, 'connections': 4, 'streams': 16, 'plan': {'name': 'quick', 'repeats': 1, 'seconds': 3}}
    lines = http3.table(results).splitlines()
    assert '| GET 1 KiB | RSGI | ours | HTTP/3 | h3load | 2,500 |' in lines[2]
    assert '| 100% **sat** | 20% | 12,500 | 0.05x |' in lines[2]
    assert lines[3].endswith('| 40% | 100% | 50,000 | - |')
    assert 'The clients differ' in http3.caveat(results)


def test_h3load_fatal_errors_and_its_command_line():
    try:
        http3.parse_h3load('{"fatal": "TimeoutError: "}\n')
    except load.LoadError as error:
        assert 'TimeoutError' in str(error)
    else:
        raise AssertionError('a fatal h3load report must fail the run')
    echo = replace(http3.CELLS['echo-1k'], streams=16)
    argv = http3.h3load_argv(echo, 8443, 4, 16, 3.0)
    assert argv[argv.index('--body-size') + 1] == '1024' and argv[argv.index('--expect-size') + 1] == '1024'
    assert argv[argv.index('--method') + 1] == 'POST' and argv[argv.index('--path') + 1] == '/echo'


def test_the_paced_handshake_cell_gets_more_repeats_in_a_full_run():
    from harness.plan import FULL, QUICK

    handshake, get = SCENARIOS['https-handshake'], SCENARIOS['get-10b']
    assert (FULL.repeats_for(handshake), FULL.repeats_for(get)) == (7, 3)
    assert (QUICK.repeats_for(handshake), QUICK.repeats_for(get)) == (1, 1)
    assert replace(FULL, repeats=9).repeats_for(handshake) == 9
    assert FULL.cell_seconds(handshake) > FULL.cell_seconds(get)
    line = report._client_bound_repeats(FULL.as_dict())
    assert '7 runs' in line and report._client_bound_repeats(QUICK.as_dict()) == ''


def test_https_keep_alive_cells_driven_by_wrk_get_longer_rounds_in_a_full_run():
    from harness.plan import FULL, QUICK

    https, https_h2, get = SCENARIOS['https-get-1k'], SCENARIOS['https-h2-get-1k'], SCENARIOS['get-10b']
    handshake = SCENARIOS['https-handshake']
    flags = [scenario.handshakes_in_round for scenario in (https, https_h2, get, handshake)]
    assert flags == [True, False, False, False]
    assert (FULL.round_seconds(https), FULL.round_seconds(https_h2), FULL.round_seconds(get)) == (6, 2, 2)
    assert QUICK.round_seconds(https) == QUICK.seconds
    assert FULL.cell_seconds(https) > FULL.cell_seconds(get)
    assert '6 s for HTTPS GET' in report._handshake_rounds(FULL.as_dict())
    assert report._handshake_rounds(QUICK.as_dict()) == ''


PERF_SCRIPT = """\
granian-rt-0  5615 46886.178465: cpu-clock: 
\tffffffff82085c65 tcp_current_mss+0x5 ([kernel.kallsyms])
\tffffffff8224d141 do_syscall_64+0x71 ([kernel.kallsyms])
\t           fde9d __GI___writev+0x4d (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t          3f0f0b hyper::proto::h1::io::Buffered<T,B>::poll_flush+0x73b (/x/granian/_core.cpython-311.so)
\tffffffffffffffff [unknown] ([unknown])

granian-rt-1  5616 46886.181018: cpu-clock: 
\t           fde9d __GI___writev+0x4d (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t          3f0f0b hyper::proto::h1::io::Buffered<T,B>::poll_flush+0x73b (/x/granian/_core.cpython-311.so)

granian rsgi 12  5613 46886.182000: cpu-clock: 
\t          1a2b3c _PyEval_EvalFrameDefault+0x11 (/usr/lib/libpython3.11.so.1.0)
\t          2a2b3c [unknown] (/site-packages/granian/_granian.cpython-311.so)
\t          2a2b3d [unknown] (/site-packages/granian/_granian.cpython-311.so)
\t          1a2b3d main::h0123456789abcdef+0x2 (/usr/bin/python3.11)
"""


def test_perf_samples_fold_into_stacks_root_first_per_thread_kind():
    stacks = flamegraph.fold(PERF_SCRIPT)
    # The two runtime threads are one kind of thread; their stacks merge where they are the same.
    names = {tuple(frame.name for frame in stack): samples for stack, samples in stacks.items()}
    assert names == {
        ('granian-rt', 'hyper::proto::h1::io::Buffered<T,B>::poll_flush', '__GI___writev', 'do_syscall_64',
         'tcp_current_mss'): 1,
        ('granian-rt', 'hyper::proto::h1::io::Buffered<T,B>::poll_flush', '__GI___writev'): 1,
        ('granian rsgi', 'main', '[_granian.cpython-311.so]', '_PyEval_EvalFrameDefault'): 1,
    }  # fmt: skip
    parts = {frame.name: frame.part for stack in stacks for frame in stack}
    assert parts['tcp_current_mss'] == 'kernel' and parts['__GI___writev'] == 'libc'
    assert parts['hyper::proto::h1::io::Buffered<T,B>::poll_flush'] == 'server'
    assert parts['_PyEval_EvalFrameDefault'] == 'python' and parts['granian-rt'] == 'thread'
    assert parts['[_granian.cpython-311.so]'] == 'server'
    assert flamegraph.folded_text(stacks).splitlines()[0].endswith(' 1')
    shares = flamegraph.shares(stacks)
    assert list(shares) == ['granian-rt', 'granian rsgi']
    assert shares['granian-rt']['all'] == 2 / 3 and shares['granian-rt']['kernel'] == 1 / 3


def test_a_flame_graph_draws_boxes_as_wide_as_their_samples_and_escapes_names():
    frame = flamegraph.Frame
    thread, caller = frame('worker', 'thread'), frame('poll<A&B>', 'server')
    stacks = Counter({(thread, caller, frame('writev', 'libc')): 3, (thread, caller, frame('read', 'kernel')): 1})
    svg = flamegraph.render(stacks, 'title & more', 'sub')
    root = ElementTree.fromstring(svg)  # well-formed XML, names escaped
    boxes = {
        group.find('{http://www.w3.org/2000/svg}title').text.split(' (')[0]: float(
            group.find('{http://www.w3.org/2000/svg}rect').get('width')
        )
        for group in root.iter('{http://www.w3.org/2000/svg}g')
    }
    usable = flamegraph.WIDTH - 2 * flamegraph.PAD
    assert boxes['worker'] == pytest.approx(usable - 0.5, abs=0.1)
    assert boxes['poll<A&B>'] == pytest.approx(usable - 0.5, abs=0.1)
    assert boxes['writev'] == pytest.approx(usable * 3 / 4 - 0.5, abs=0.1)
    assert boxes['read'] == pytest.approx(usable / 4 - 0.5, abs=0.1)
    assert 'title &amp; more' in svg
