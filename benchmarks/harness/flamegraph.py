"""Flame graphs of the worker under load: where its CPU time goes, every thread, kernel included.

`python benchmarks/run.py flamegraph` loads each server as a measured run does (server on CPU 0,
load generator on CPU 1) while `perf record` samples the worker process (`cpu-clock`, every thread,
stacks unwound from DWARF call-frame data, since neither our release build, CPython nor the peers
keep frame pointers). The samples are folded into one stack per line (`thread;root;...;leaf count`,
kept under results/raw) and drawn as an SVG flame graph (results/flamegraphs): one box per function
on a stack, as wide as its share of the samples, its callers below it, coloured by where the code
lives (kernel, the server's native module, the Python interpreter, uvloop, libc). Hovering a box
names it in full with its sample count. `flamegraphs/README.md` indexes the graphs with each
thread's share of the worker's samples.

What a graph leaves out: time the worker waits (it samples CPU time only), and Python function
names (CPython 3.11 runs every Python function in `_PyEval_EvalFrameDefault`; the native frames
around it still show which call into or out of Python a sample was under). Where the unwinder cannot
step further (through a tokio task's poll, which is entered through a function pointer) the stack
starts at the thread's name and the last frame it found.
"""

from __future__ import annotations

import html
import re
import subprocess
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .accounting import each_measurement, perf_error, require_perf, under_perf
from .instructions import part_of
from .load import LoadError, Workspace
from .scenarios import SCENARIOS
from .servers import RunningServer

#: Samples per second and thread: a few thousand samples per graph in a few seconds.
FREQUENCY = 997
#: Bytes of stack copied per sample for the unwinder: tokio's and CPython's stacks are deep.
STACK_BYTES = 32768
#: Boxes narrower than this share of all samples are not drawn (their samples still count below).
MIN_SHARE = 0.001
WIDTH = 1200
ROW = 16
PAD = 10
HEADER = 64
#: Fill colours by part (hue ranges), and the legend's order.
PALETTE = {
    'kernel': (0, 20),
    'server': (24, 40),
    'python': (95, 130),
    'uvloop': (170, 190),
    'libc': (48, 58),
    'other': (200, 230),
    'thread': (0, 0),
}


@dataclass(frozen=True)
class Frame:
    name: str
    part: str


@dataclass
class Node:
    frame: Frame
    samples: int = 0
    children: dict[Frame, Node] = field(default_factory=dict)


_OFFSET = re.compile(r'\+0x[0-9a-f]+$')
_RUST_HASH = re.compile(r'::h[0-9a-f]{16}$')
_THREAD_NUMBER = re.compile(r'[-\s]\d+$')


def thread_name(comm: str) -> str:
    """A thread's name without the number that tells apart threads doing the same job."""
    return _THREAD_NUMBER.sub('', comm.strip()) or comm.strip()


def _frame(line: str) -> Frame | None:
    """One callchain line of `perf script` (`address symbol+offset (object)`); None for a frame
    the unwinder could not place. A frame in an object without symbols (a stripped wheel) is named
    after the object, in brackets."""
    text = line.strip()
    if not text.endswith(')') or ' (' not in text:
        return None
    head, _, shared_object = text[:-1].rpartition(' (')
    _, _, symbol = head.partition(' ')
    symbol = _RUST_HASH.sub('', _OFFSET.sub('', symbol.strip()))
    if shared_object.startswith('[kernel'):
        return Frame(symbol, 'kernel') if symbol and symbol != '[unknown]' else None
    if shared_object == '[unknown]':
        return None
    if not symbol or symbol == '[unknown]':
        symbol = f'[{Path(shared_object).name}]'
    return Frame(symbol, part_of(shared_object))


def fold(script: str) -> Counter[tuple[Frame, ...]]:
    """`perf script` output (a header line per sample, then its callchain leaf first, then a blank
    line) as samples per stack, root first, each stack starting with its thread's name."""
    stacks: Counter[tuple[Frame, ...]] = Counter()
    thread: str | None = None
    frames: list[Frame] = []

    def finish() -> None:
        if thread is not None:
            stacks[(Frame(thread, 'thread'), *reversed(frames))] += 1

    for line in script.splitlines():
        if not line.strip():
            finish()
            thread, frames = None, []
        elif line[0] not in ' \t':
            finish()
            # `comm pid/tid time: period event:`; a thread name may hold spaces.
            match = re.match(r'(.+?)\s+\d+(?:/\d+)?\s+[\d.]+:', line)
            thread, frames = (thread_name(match.group(1)) if match else '?'), []
        elif thread is not None:
            frame = _frame(line)
            # Unnamed frames of one object in a row are one box: their order says nothing.
            if frame is not None and not (frame.name[0] == '[' and frames and frames[-1] == frame):
                frames.append(frame)
    finish()
    return stacks


def folded_text(stacks: Counter[tuple[Frame, ...]]) -> str:
    """The stacks in the usual folded form, `root;...;leaf samples` per line, heaviest first."""
    return ''.join(
        ';'.join(frame.name.replace(';', ':') for frame in stack) + f' {samples}\n'
        for stack, samples in stacks.most_common()
    )


def tree(stacks: Counter[tuple[Frame, ...]]) -> Node:
    root = Node(Frame('all', 'thread'))
    for stack, samples in stacks.items():
        root.samples += samples
        node = root
        for frame in stack:
            node = node.children.setdefault(frame, Node(frame))
            node.samples += samples
    return root


def shares(stacks: Counter[tuple[Frame, ...]]) -> dict[str, dict[str, float]]:
    """Per thread, its share of all samples and, within it, each part's (by the sampled leaf)."""
    total = sum(stacks.values()) or 1
    by_thread: dict[str, Counter[str]] = {}
    for stack, samples in stacks.items():
        leaf = stack[-1] if len(stack) > 1 else Frame('?', 'other')
        by_thread.setdefault(stack[0].name, Counter())[leaf.part] += samples
    return {
        thread: {'all': sum(parts.values()) / total, **{part: n / total for part, n in parts.items()}}
        for thread, parts in sorted(by_thread.items(), key=lambda item: -sum(item[1].values()))
    }


def _colour(frame: Frame) -> str:
    if frame.part == 'thread':
        return 'rgb(210,210,210)'
    low, high = PALETTE.get(frame.part, PALETTE['other'])
    spread = zlib.crc32(frame.name.encode()) % 1000 / 1000
    hue = low + (high - low) * spread
    return f'hsl({hue:.0f},{70 + 15 * spread:.0f}%,{62 + 10 * spread:.0f}%)'


def render(stacks: Counter[tuple[Frame, ...]], title: str, subtitle: str) -> str:
    """An SVG flame graph of the stacks: roots at the bottom, a box's width its share of samples."""
    root = tree(stacks)
    total = root.samples or 1
    scale = (WIDTH - 2 * PAD) / total
    boxes: list[tuple[int, float, float, Node]] = []  # depth, x, width, node

    def place(node: Node, depth: int, x: float) -> int:
        deepest = depth
        for child in sorted(node.children.values(), key=lambda n: n.frame.name):
            width = child.samples * scale
            if child.samples / total >= MIN_SHARE:
                boxes.append((depth, x, width, child))
                deepest = max(deepest, place(child, depth + 1, x))
            x += width
        return deepest

    depth = place(root, 0, PAD) + 1
    height = HEADER + depth * ROW + PAD
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="Verdana,sans-serif" font-size="11">'
        ),
        f'<rect width="{WIDTH}" height="{height}" fill="rgb(250,250,245)"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="15">{html.escape(title)}</text>',
        f'<text x="{WIDTH / 2}" y="38" text-anchor="middle" fill="rgb(90,90,90)">{html.escape(subtitle)}</text>',
    ]
    legend_x = PAD
    for part in ('kernel', 'server', 'python', 'uvloop', 'libc', 'other'):
        out.append(
            f'<rect x="{legend_x}" y="46" width="10" height="10" fill="{_colour(Frame(part, part))}"/>'
            f'<text x="{legend_x + 14}" y="55">{part}</text>'
        )
        legend_x += 24 + 7 * len(part)
    for row, x, width, node in boxes:
        y = height - PAD - (row + 1) * ROW
        name = html.escape(node.frame.name)
        share = 100 * node.samples / total
        label = ''
        fits = int((width - 6) / 6.5)
        if fits >= 3:
            text = node.frame.name if len(node.frame.name) <= fits else node.frame.name[: fits - 2] + '..'
            label = f'<text x="{x + 3:.1f}" y="{y + ROW - 4}">{html.escape(text)}</text>'
        out.append(
            f'<g><title>{name} ({node.frame.part}): {node.samples} samples, {share:.2f}%</title>'
            f'<rect x="{x:.1f}" y="{y}" width="{max(width - 0.5, 0.1):.1f}" height="{ROW - 1}" rx="2" '
            f'fill="{_colour(node.frame)}"/>{label}</g>'
        )
    out.append('</svg>\n')
    return '\n'.join(out)


def record(server: RunningServer, workspace: Workspace, scenario: str, connections: int, seconds: float, data: Path):
    """Samples of the worker into `data` while the scenario's load runs; the load's result."""
    sampling = ['record', '-q', '-F', str(FREQUENCY), '-e', 'cpu-clock', '--call-graph', f'dwarf,{STACK_BYTES}']
    result, perf = under_perf(server, workspace, scenario, connections, seconds, [*sampling, '-o', str(data)])
    if perf.returncode != 0 or not data.exists():
        raise LoadError(f'perf record failed: {perf_error(perf)}')
    return result


def script(data: Path) -> str:
    done = subprocess.run(
        ['perf', 'script', '-i', str(data), '--no-inline', '-F', 'comm,tid,time,event,ip,sym,dso'],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise LoadError(f'perf script failed: {done.stderr[-200:]}')
    return done.stdout


def index(rows: list[dict]) -> str:
    """Markdown: one line per graph, with the share of samples each busy thread took."""
    lines = [
        '# Flame graphs',
        '',
        'Made by `python benchmarks/run.py flamegraph` (see `harness/flamegraph.py` for how). One worker,',
        'pinned to CPU 0, the load generator on CPU 1; `perf record -e cpu-clock` samples every thread of',
        "the worker. Colours: kernel (red), the server's native module (orange), the Python interpreter",
        "(green), uvloop (teal), libc (yellow). Each busy thread's share of the worker's samples is given",
        'with the part of it whose sampled function was kernel code (both as shares of all samples).',
        '',
        '| interface | scenario | server | req/s while sampled | samples | threads | graph |',
        '|---|---|---|---:|---:|---|---|',
    ]
    for row in rows:
        threads = '; '.join(
            f'{thread} {100 * share["all"]:.0f}% (kernel {100 * share.get("kernel", 0.0):.0f}%)'
            for thread, share in row['threads'].items()
            if share['all'] >= 0.02
        )
        lines.append(
            f'| {row["interface"]} | {row["scenario"]} c{row["connections"]} | {row["server"]} | {row["rps"]:,.0f}'
            f' | {row["samples"]:,} | {threads} | [{row["file"]}]({row["file"]}) |'
        )
    return '\n'.join(lines) + '\n'


def run(
    interfaces: Iterable[str],
    scenarios: Iterable[str],
    servers: Iterable[str],
    connections: int,
    seconds: float,
    output: Path,
    raw: Path,
) -> list[dict]:
    """A flame graph of every server on every scenario; the rows of the index written beside them."""
    require_perf()
    rows: list[dict] = []
    output.mkdir(parents=True, exist_ok=True)
    for workspace, interface, scenario, server in each_measurement(
        interfaces, scenarios, servers, 1, raw, 'flamegraph'
    ):
        label = f'{interface}-{scenario}-{server.name}'
        data = raw / f'{label}.perf.data'
        result = record(server, workspace, scenario, connections, seconds, data)
        stacks = fold(script(data))
        data.unlink(missing_ok=True)
        (raw / f'{label}.folded').write_text(folded_text(stacks))
        spec = SCENARIOS[scenario]
        samples = sum(stacks.values())
        title = f'{server.name}, {interface.upper()}, {spec.title}, {connections} connections'
        subtitle = f'{result.rps:,.0f} req/s while sampled; {samples:,} samples at {FREQUENCY} Hz over {seconds:g} s'
        (output / f'{label}.svg').write_text(render(stacks, title, subtitle))
        rows.append(
            {
                'interface': interface,
                'scenario': scenario,
                'connections': connections,
                'server': server.name,
                'rps': result.rps,
                'samples': samples,
                'threads': shares(stacks),
                'file': f'{label}.svg',
            }
        )
        print(f'{label}: {result.rps:,.0f} req/s, {samples:,} samples -> {output / (label + ".svg")}')
    return rows
