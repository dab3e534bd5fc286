"""Comparisons between results: a run against the previous saved one, and ours against another commit.

A run is compared with the previous saved results cell by cell (interface, scenario, connections).
Where both runs measured granian 2.8.1 in that cell, the figure compared is ours / granian 2.8.1,
which cancels most of the drift of a shared machine between the two runs; otherwise it is ours'
req/s. A cell is flagged when it fell by more than `REGRESSION_THRESHOLD` and even this run's best
repeat (paired with granian's repeat of the same round, for the ratio) is below the previous figure:
a drop inside the run's own scatter is noise. With a single repeat (the quick plan) the scatter is
unknown and the median alone decides.

Each saved run also keeps a summary of the run before it (`earlier_run`), so a flagged cell is shown
with its change against that run too: a cell below both is more likely a regression than a cell
that only fell back from one run's high (this machine's ratios drift by up to 30% between runs).
"""

from __future__ import annotations

import statistics

from .scenarios import SCENARIOS
from .servers import BASELINE, OURS

REGRESSION_THRESHOLD = 0.05
Cell = tuple[str, str, int]


def _by_cell(results: dict) -> dict[Cell, dict[str, dict]]:
    cells: dict[Cell, dict[str, dict]] = {}
    for run in results.get('runs', []):
        cells.setdefault((run['interface'], run['scenario'], run['concurrency']), {})[run['server']] = run
    return cells


def _figure(runs: dict[str, dict], server: str, scenario: str) -> float | None:
    """`server`'s throughput in the cell: req/s, or req/s per CPU-second for a client-bound scenario."""
    field = 'rps_per_cpu' if scenario in SCENARIOS and SCENARIOS[scenario].client_bound else 'rps'
    return runs.get(server, {}).get(field) or None


def _repeat_figures(runs: dict[str, dict], server: str, scenario: str) -> list[float | None]:
    """`server`'s figure in each repeat of the cell (None where a repeat lacks it)."""
    per_cpu = scenario in SCENARIOS and SCENARIOS[scenario].client_bound
    return [
        _per_cpu(repeat) if per_cpu else repeat.get('rps') or None for repeat in runs.get(server, {}).get('repeats', [])
    ]


def _per_cpu(repeat: dict) -> float | None:
    """A repeat's requests per second of server CPU (saved repeats carry the CPU time, not the ratio)."""
    if repeat.get('requests') and repeat.get('server_cpu_s'):
        return repeat['requests'] / repeat['server_cpu_s']
    return repeat.get('rps_per_cpu') or None


def _best_repeat(runs: dict[str, dict], scenario: str, relative: bool) -> float | None:
    """The highest figure of ours among the cell's repeats, as a ratio to granian's repeat of the same
    round when `relative`; None when the repeats do not carry the figure."""
    mine = _repeat_figures(runs, OURS, scenario)
    if relative:
        base = _repeat_figures(runs, BASELINE, scenario)
        mine = [m / b if m and b else None for m, b in zip(mine, base, strict=False)]
    figures = [figure for figure in mine if figure]
    return max(figures) if figures else None


def regressions(previous: dict, current: dict, threshold: float = REGRESSION_THRESHOLD) -> list[dict]:
    """Cells where ours fell by more than `threshold` against `previous`, worst first."""
    before, now = _by_cell(previous), _by_cell(current)
    flagged = []
    for cell, runs in now.items():
        old = before.get(cell, {})
        mine, theirs = _figure(runs, OURS, cell[1]), _figure(old, OURS, cell[1])
        if not mine or not theirs:
            continue
        base_now, base_before = _figure(runs, BASELINE, cell[1]), _figure(old, BASELINE, cell[1])
        relative = bool(base_now and base_before)
        if relative:
            mine, theirs = mine / base_now, theirs / base_before
        change = mine / theirs - 1
        best = _best_repeat(runs, cell[1], relative)
        if change < -threshold and (best is None or best < theirs):
            interface, scenario, concurrency = cell
            flagged.append(
                {
                    'interface': interface,
                    'scenario': scenario,
                    'concurrency': concurrency,
                    'measure': 'ratio to granian 2.8.1' if relative else 'req/s',
                    'before': round(theirs, 3 if relative else 0),
                    'now': round(mine, 3 if relative else 0),
                    'change': round(change, 3),
                }
            )
    return sorted(flagged, key=lambda item: item['change'])


def _key(interface: str, scenario: str, concurrency: int) -> str:
    return f'{interface}/{scenario}/{concurrency}'


def summary(results: dict) -> dict:
    """Ours' and granian 2.8.1's figure per cell of a run, for the run after next to look back to."""
    cells = {}
    for (interface, scenario, concurrency), runs in _by_cell(results).items():
        mine = _figure(runs, OURS, scenario)
        if mine:
            cells[_key(interface, scenario, concurrency)] = {
                'ours': mine,
                'baseline': _figure(runs, BASELINE, scenario),
            }
    return {'commit': results.get('revision', {}).get('commit', ''), 'date': results.get('date', ''), 'cells': cells}


def against_earlier(flagged: list[dict], earlier: dict | None) -> None:
    """Adds to each flagged cell its change against `earlier` (a `summary`), in the same measure."""
    for item in flagged if earlier else []:
        old = earlier['cells'].get(_key(item['interface'], item['scenario'], item['concurrency']))
        if not old:
            continue
        relative = item['measure'] != 'req/s'
        if not relative:
            figure = old['ours']
        elif old.get('baseline'):
            figure = old['ours'] / old['baseline']
        else:
            figure = None
        if figure:
            item['earlier'] = {
                'commit': earlier['commit'],
                'before': round(figure, 3 if relative else 0),
                'change': round(item['now'] / figure - 1, 3),
            }


def describe(flagged: dict) -> str:
    """One line for a flagged cell."""
    title = SCENARIOS[flagged['scenario']].title if flagged['scenario'] in SCENARIOS else flagged['scenario']
    line = (
        f'{flagged["interface"].upper()} {title} ({flagged["concurrency"]} conns): {flagged["measure"]}'
        f' {flagged["before"]:,} -> {flagged["now"]:,} ({flagged["change"]:+.1%})'
    )
    earlier = flagged.get('earlier')
    if earlier:
        line += (
            f'; against the run before (`{earlier["commit"][:10]}`): {earlier["before"]:,} ({earlier["change"]:+.1%})'
        )
    return line


def ab_rows(results: dict, a: str, b: str) -> list[dict]:
    """Per cell: the median figure of `a` and `b` (req/s, or req/s per CPU-second for a client-bound
    scenario), their ratio, and the lowest and highest ratio of paired repeats.

    Repeats alternate between the servers, so repeat i of `a` and repeat i of `b` ran under the
    same conditions; the spread of their ratios shows how much of a difference is noise.
    """
    rows = []
    order = list(SCENARIOS)
    for (interface, scenario, concurrency), runs in _by_cell(results).items():
        if a not in runs or b not in runs:
            continue
        first, second = _figure(runs, a, scenario), _figure(runs, b, scenario)
        pairs = zip(_repeat_figures(runs, a, scenario), _repeat_figures(runs, b, scenario), strict=False)
        paired = [x / y for x, y in pairs if x and y]
        rows.append(
            {
                'interface': interface,
                'scenario': scenario,
                'concurrency': concurrency,
                'per_cpu': scenario in SCENARIOS and SCENARIOS[scenario].client_bound,
                a: first,
                b: second,
                'ratio': first / second if first and second else None,
                'low': min(paired) if paired else None,
                'high': max(paired) if paired else None,
                'median_paired': statistics.median(paired) if paired else None,
            }
        )
    return sorted(rows, key=lambda r: (r['interface'], r['concurrency'], order.index(r['scenario'])))


def ab_table(results: dict, a: str, b: str) -> str:
    """`ab_rows` as a Markdown table."""
    lines = [
        f'| interface | scenario | conns | {a} req/s | {b} req/s | {a} / {b} | paired repeats |',
        '|---|---|---:|---:|---:|---:|---|',
    ]
    for row in ab_rows(results, a, b):
        spread = f'{row["low"]:.2f} - {row["high"]:.2f}' if row['low'] is not None else '-'
        ratio = f'{row["ratio"]:.3f}' if row['ratio'] is not None else '-'
        unit = ' per CPU-s' if row['per_cpu'] else ''
        figures = [f'{row[server]:,.0f}{unit}' if row[server] else '-' for server in (a, b)]
        lines.append(
            f'| {row["interface"]} | {SCENARIOS[row["scenario"]].title} | {row["concurrency"]}'
            f' | {figures[0]} | {figures[1]} | {ratio} | {spread} |'
        )
    lines.append('')
    lines.append('A client-bound cell (the paced handshake) compares requests per second of server CPU.')
    return '\n'.join(lines)
