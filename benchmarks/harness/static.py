"""Static file serving, side by side: ours and granian 2.8.1 (each with `--static-path-mount`, serving
from the Rust core) and nginx (sendfile on, access log off), one worker each, pinned to the server CPU,
wrk on the load CPU, 64 keep-alive connections, repeats alternating between servers, median kept.

    python benchmarks/run.py static [--quick]     # results/static.json (static-quick.json)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .environment import machine, now, revision
from .load import LoadError, Workspace, check, median, run_wrk, warm_up
from .scenarios import KIB, Kind, Scenario
from .servers import (
    BASELINE,
    HOST,
    OURS,
    READY_TIMEOUT,
    SERVER_CPU,
    SERVERS,
    RunningServer,
    ServerError,
    answers,
    free_port,
)

FILES = {'static-50k': 50 * KIB, 'static-1m': 1024 * KIB}
CONNECTIONS = 64
NGINX = 'nginx'


@dataclass(frozen=True)
class StaticPlan:
    name: str
    seconds: float
    repeats: int
    warmup_seconds: float


PLANS = {plan.name: plan for plan in (StaticPlan('full', 5, 3, 1), StaticPlan('quick', 2, 1, 0.5))}


def scenario(name: str) -> Scenario:
    size = FILES[name]
    return Scenario(name, f'static file {size // KIB} KiB', Kind.FILE, 'GET', f'/static/{name}.bin', response_size=size)


class NginxServer:
    """nginx serving the same directory under /static/ (and /b/10, for the readiness check)."""

    name = NGINX

    def __init__(self, files: Path, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        user = 'user root;' if os.geteuid() == 0 else ''
        temp = directory / 'temp'
        temp.mkdir(exist_ok=True)
        self.config = directory / 'nginx.conf'
        self.config.write_text(
            f"""{user}
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen {HOST}:{self.port};
        location /static/ {{ alias {files}/; }}
        location = /b/10 {{ return 200 "0123456789"; }}
    }}
}}
"""
        )

    def start(self) -> NginxServer:
        command = ['taskset', '-c', str(SERVER_CPU), 'nginx', '-c', str(self.config), '-p', str(self.directory)]
        with (self.directory / 'nginx.log').open('wb') as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f'nginx exited with code {self.process.returncode}')
            if answers(self.port, timeout=1.0):
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerError('nginx did not answer')

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGQUIT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def run(plan: StaticPlan, raw: Path, say=print) -> dict:
    """Measure every file size on every available server; returns the results document."""
    workspace = Workspace()
    files = workspace.path / 'files'
    files.mkdir()
    for name, size in FILES.items():
        (files / f'{name}.bin').write_bytes(os.urandom(size))
    servers: list = []
    notes: list[str] = []
    try:
        for name in (OURS, BASELINE):
            extra = ('--static-path-mount', str(files))
            server = RunningServer(SERVERS[name], 'rsgi', raw / f'static-{name}.log', extra_arguments=extra)
            try:
                servers.append(server.start())
            except ServerError as error:
                notes.append(f'{name} did not start: {error}')
        if shutil.which('nginx'):
            nginx_dir = workspace.path / 'nginx'
            nginx_dir.mkdir()
            try:
                servers.append(NginxServer(files, nginx_dir).start())
            except ServerError as error:
                notes.append(str(error))
        else:
            notes.append('nginx skipped: not installed (apt-get install -y nginx)')
        results: dict[str, dict] = {}
        for name, size in FILES.items():
            shape = scenario(name)
            ready = []
            for server in servers:
                problem = check(workspace, shape, server.port)
                if problem is None:
                    ready.append(server)
                else:
                    notes.append(f'{server.name} {name}: {problem}')
            runs: dict[str, list] = {server.name: [] for server in ready}
            for server in ready:
                warm_up(workspace, shape, server.port, CONNECTIONS, plan.warmup_seconds)
            for _ in range(plan.repeats):
                for server in ready:
                    try:
                        runs[server.name].append(run_wrk(workspace, shape, server.port, CONNECTIONS, plan.seconds))
                    except LoadError as error:
                        notes.append(f'{server.name} {name}: {error}')
            results[name] = {
                server: {
                    'rps': median([run.rps for run in measured]),
                    'p99_ms': median([run.p99_ms for run in measured]),
                    'errors': sum(run.errors for run in measured),
                    'mib_per_s': (median([run.rps for run in measured]) or 0) * size / (1024 * 1024),
                }
                for server, measured in runs.items()
                if measured
            }
            say(
                f'{name}: '
                + ', '.join(f'{server} {figures["rps"]:,.0f} req/s' for server, figures in results[name].items())
            )
    finally:
        for server in servers:
            server.stop()
        workspace.close()
    return {
        'schema': 1,
        'plan': plan.name,
        'date': now(),
        'machine': machine(),
        'revision': revision(),
        'connections': CONNECTIONS,
        'files': results,
        'notes': notes,
    }


def table(results: dict) -> str:
    """The results as a markdown table (req/s, MiB/s, p99, ratios to granian 2.8.1 and nginx)."""
    lines = [
        '| file | server | req/s | MiB/s | p99 | vs granian 2.8.1 | vs nginx |',
        '|---|---|---:|---:|---:|---:|---:|',
    ]
    for name, figures in results['files'].items():
        baseline = figures.get(BASELINE, {}).get('rps')
        nginx = figures.get(NGINX, {}).get('rps')
        for server, row in figures.items():
            ratio = f'{row["rps"] / baseline:.2f}x' if baseline else 'n/a'
            versus_nginx = f'{row["rps"] / nginx:.2f}x' if nginx else 'n/a'
            p99 = f'{row["p99_ms"]:.2f} ms' if row['p99_ms'] is not None else 'n/a'
            lines.append(
                f'| {FILES[name] // KIB} KiB | {server} | {row["rps"]:,.0f} | {row["mib_per_s"]:,.0f} | {p99} '
                f'| {ratio} | {versus_nginx} |'
            )
    return '\n'.join(lines)
