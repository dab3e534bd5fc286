"""PNG charts of a results document (matplotlib): requests/s and p99 per scenario, one bar per server."""

from __future__ import annotations

from pathlib import Path

from .report import INTERFACE_TITLES, Report
from .scenarios import SCENARIOS
from .servers import OURS

COLOURS = {'ours': '#d1495b', 'granian-2.8.1': '#00798c'}
OTHER_COLOURS = ['#edae49', '#66a182', '#8d96a3', '#2e4057', '#b07aa1', '#9c755f']


def draw(results: dict, directory: Path) -> list[Path]:
    """Write `<interface>-c<connections>.png` for every interface and concurrency; returns the paths."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    report = Report(results)
    written = []
    for interface in report.interfaces():
        servers = report.servers(interface)
        palette = dict(COLOURS)
        for index, server in enumerate(s for s in servers if s not in COLOURS):
            palette[server] = OTHER_COLOURS[index % len(OTHER_COLOURS)]
        for concurrency in sorted({c for _, c in report.cells(interface)}):
            scenarios = [s for s, c in report.cells(interface) if c == concurrency]
            present = [s for s in servers if any(report.run(interface, n, concurrency, s) for n in scenarios)]
            figure, (top, bottom) = plt.subplots(2, 1, figsize=(max(7, 1.3 * len(scenarios) + 3), 7.5), sharex=True)
            width = 0.8 / max(1, len(present))
            for index, server in enumerate(present):
                xs, rps, p99 = [], [], []
                for position, scenario in enumerate(scenarios):
                    run = report.run(interface, scenario, concurrency, server)
                    if run:
                        xs.append(position + (index - (len(present) - 1) / 2) * width)
                        rps.append(run['rps'])
                        p99.append(run['p99_ms'] or 0)
                label = 'ours (this repo)' if server == OURS else server
                top.bar(xs, rps, width, label=label, color=palette[server])
                bottom.bar(xs, p99, width, color=palette[server])
            top.set_ylabel('requests/s (higher is better)')
            bottom.set_ylabel('p99 latency, ms (lower is better)')
            bottom.set_yscale('log')
            bottom.set_xticks(range(len(scenarios)))
            bottom.set_xticklabels([SCENARIOS[s].title.replace(' (', '\n(') for s in scenarios], fontsize=8)
            top.legend(fontsize=8, ncol=min(4, len(present)))
            top.grid(axis='y', alpha=0.3)
            bottom.grid(axis='y', alpha=0.3)
            top.set_title(f'{INTERFACE_TITLES[interface]}, {concurrency} connections, 1 worker on 1 core')
            figure.tight_layout()
            path = directory / f'{interface}-c{concurrency}.png'
            figure.savefig(path, dpi=90)
            plt.close(figure)
            written.append(path)
    return written
