"""Soak: a long run of requests against one worker, sampling its memory (RSS) and open descriptors.

A run serves the benchmark app (benchmarks/apps) of one interface with one worker and drives it with
wrk in phases: a warm-up, then GET and POST-echo requests on keep-alive connections, then requests on a
new connection each (Connection: close), which is where a leaked socket or buffer shows. The worker's
RSS is sampled every half second; its descriptors are counted before and after.

A run holds when the RSS after the warm-up grew by less than `max_growth` (10%) by the end, the
descriptors are back to their count before the load, no request failed, and every phase served its
share of requests. Used by tools/soak.py (1M requests per interface) and tests/test_soak.py (a short run).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .processes import open_fds, rss_bytes, worker_pid
from .server import RunningServer

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / 'benchmarks' / 'apps'
TARGETS = {'rsgi': 'rsgi_app:app', 'asgi': 'asgi_app:app', 'wsgi': 'wsgi_app:app'}
POST_SCRIPT = 'wrk.method = "POST"\nwrk.body = string.rep("x", 1024)\nwrk.headers["Content-Type"] = "text/plain"\n'


@dataclass
class SoakResult:
    interface: str
    requests: int = 0
    errors: int = 0
    rss_after_warmup: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    fds_before: int = 0
    fds_after: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def growth(self) -> float:
        return (self.rss_end - self.rss_after_warmup) / self.rss_after_warmup if self.rss_after_warmup else 0.0

    def holds(self, max_growth: float = 0.10) -> bool:
        return not self.errors and self.growth < max_growth and self.fds_after <= self.fds_before and not self.notes


def wrk(url: str, seconds: float, connections: int, *args: str) -> tuple[int, int]:
    """Runs wrk; returns (requests completed, errors: socket errors and non-2xx answers)."""
    output = subprocess.run(
        ['wrk', '-t1', f'-c{connections}', f'-d{max(1, round(seconds))}s', *args, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    done = re.search(r'(\d+) requests in', output)
    errors = sum(int(n) for n in re.findall(r'(?:connect|read|write|timeout) (\d+)', output))
    errors += int(m.group(1)) if (m := re.search(r'Non-2xx or 3xx responses: (\d+)', output)) else 0
    return (int(done.group(1)) if done else 0), errors


def soak(interface: str, requests: int, *, rate_guess: int = 20_000, extra_args: tuple[str, ...] = ()) -> SoakResult:
    """Serves `interface` and sends about `requests` requests (split over the phases); see the module doc."""
    if shutil.which('wrk') is None:
        raise RuntimeError('wrk is not installed (apt-get install wrk)')
    result = SoakResult(interface)
    server = RunningServer(
        TARGETS[interface], working_dir=APPS, interface=interface, extra_args=['--workers', '1', *extra_args]
    )
    server.start()
    samples: list[int] = []
    stop = threading.Event()
    try:
        pid = worker_pid(server)
        url = server.url('/b/1k')
        with tempfile.NamedTemporaryFile('w', suffix='.lua', delete=False) as script:
            script.write(POST_SCRIPT)
        phases = [
            ('GET keep-alive', url, 0.5, 64, ()),
            ('POST echo keep-alive', server.url('/echo'), 0.3, 64, ('-s', script.name)),
            ('GET new connection each', url, 0.2, 16, ('-H', 'Connection: close')),
        ]
        # The warm-up runs every phase once, so that the baseline holds what the load itself needs
        # (buffers for 64 connections, the allocator's arenas): growth after it is what accumulates.
        for _, target, _, connections, args in phases:
            wrk(target, 1, connections, *args)
        time.sleep(0.5)
        result.rss_after_warmup = rss_bytes(pid)
        result.fds_before = open_fds(pid)

        def sample() -> None:
            while not stop.wait(0.5):
                samples.append(rss_bytes(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        # Phase durations from the expected rate; each phase's real count is what wrk reports.
        total_seconds = max(3.0, requests / rate_guess)
        for name, target, share, connections, args in phases:
            done, errors = wrk(target, total_seconds * share, connections, *args)
            result.requests += done
            result.errors += errors
            if not done:
                result.notes.append(f'{name}: no request completed')
        Path(script.name).unlink()
        result.seconds = time.monotonic() - started
        # Connections closed by wrk are gone from the worker once it noticed: give it a moment.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and open_fds(pid) > result.fds_before:
            time.sleep(0.1)
        result.fds_after = open_fds(pid)
        result.rss_end = rss_bytes(pid)
    finally:
        stop.set()
        server.close()
    result.rss_peak = max(samples + [result.rss_end])
    return result


def report(results: list[SoakResult], max_growth: float = 0.10) -> str:
    lines = [
        '| Interface | Requests | Errors | RSS after warm-up | Peak | End | Growth | fds before / after | Result |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for r in results:
        mib = 1024 * 1024
        lines.append(
            f'| {r.interface} | {r.requests:,} | {r.errors} | {r.rss_after_warmup / mib:.1f} MiB | '
            f'{r.rss_peak / mib:.1f} MiB | {r.rss_end / mib:.1f} MiB | {r.growth:+.1%} | '
            f'{r.fds_before} / {r.fds_after} | {"holds" if r.holds(max_growth) else "FAILED " + "; ".join(r.notes)} |'
        )
    return '\n'.join(lines)
