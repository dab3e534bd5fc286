#!/usr/bin/env python3
"""Same-run load comparison of this repository's granian against its peers.

    benchmarks/compare.py [--rounds 3] [--duration 10] [--interfaces rsgi,asgi] [--scenarios get,echo10k]

Each server runs one worker on 127.0.0.1, pinned to CPU 0; wrk runs pinned to CPU 1 with 64
connections. Every run gets a 2 s warm-up; rounds alternate between servers; medians are reported
with the ratio to granian 2.8.1 for the same interface, measured in the same run.

Needs wrk and taskset, and the development environment (.venv, `python3 tools/dev.py build`). The
peers are installed into benchmarks/.venv-peers on first use: they cannot share a venv with ours
(upstream granian owns the `granian` import name too).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / 'benchmarks' / 'apps'
OURS = ROOT / '.venv' / 'bin' / 'python'
PEERS_VENV = ROOT / 'benchmarks' / '.venv-peers'
PEERS = PEERS_VENV / 'bin' / 'python'
PEER_PACKAGES = ['granian==2.8.1', 'uvloop', 'uvicorn[standard]', 'httptools', 'gunicorn']
# Optional peers: bjoern needs Debian's libev-dev to build; skipped when it is not installable.
OPTIONAL_PEER_PACKAGES = ['bjoern']
PORT = 18_100
ECHO_SIZES = {'echo1k': 1024, 'echo10k': 10 * 1024}


def servers(interface: str) -> dict[str, list[str]]:
    """Commands of the servers compared for `interface` (the port is appended by `{port}`)."""
    granian_args = ['-m', 'granian', '--interface', interface, '--loop', 'uvloop', '--no-log', '--port', '{port}']
    found = {
        'ours': [str(OURS), *granian_args, f'{interface}_bench:app'],
        'granian-2.8.1': [str(PEERS), *granian_args, f'{interface}_bench:app'],
    }
    if interface == 'wsgi':
        found['gunicorn-gthread'] = [
            str(PEERS), '-m', 'gunicorn', '-k', 'gthread', '--threads', '4', '-w', '1', '--log-level', 'warning',
            '-b', '127.0.0.1:{port}', 'wsgi_bench:app',
        ]  # fmt: skip
        if _importable(PEERS, 'bjoern'):
            found['bjoern'] = [
                str(PEERS),
                '-c',
                'import bjoern, wsgi_bench; bjoern.run(wsgi_bench.app, "127.0.0.1", {port})',
            ]
    if interface == 'asgi':
        found['uvicorn'] = [
            str(PEERS), '-m', 'uvicorn', '--http', 'httptools', '--loop', 'uvloop', '--no-access-log',
            '--log-level', 'warning', '--port', '{port}', 'asgi_bench:app',
        ]  # fmt: skip
    return found


def _importable(python: Path, module: str) -> bool:
    return subprocess.run([str(python), '-c', f'import {module}'], capture_output=True, check=False).returncode == 0


def ensure_peers() -> None:
    """Create the peers' venv on first use."""
    if not PEERS.exists():
        venv.create(PEERS_VENV, with_pip=True)
    missing = [p for p in PEER_PACKAGES if not _importable(PEERS, p.split('=')[0].split('[')[0])]
    if missing:
        subprocess.run([str(PEERS), '-m', 'pip', 'install', '--quiet', *missing], check=True)
    for package in OPTIONAL_PEER_PACKAGES:
        if not _importable(PEERS, package):
            subprocess.run([str(PEERS), '-m', 'pip', 'install', '--quiet', package], capture_output=True, check=False)


def wait_listening(port: int, timeout: float = 20.0) -> None:
    """Wait until something accepts connections on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(('127.0.0.1', port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f'nothing listens on port {port} after {timeout} s')


def wrk(port: int, scenario: str, duration: int, scripts: dict[str, Path]) -> tuple[float, str]:
    """Run wrk on CPU 1; returns (requests/s, p99 latency)."""
    args = ['taskset', '-c', '1', 'wrk', '-t1', '-c64', f'-d{duration}s', '--latency']
    if scenario in scripts:
        args += ['-s', str(scripts[scenario])]
    args.append(f'http://127.0.0.1:{port}/' + ('echo' if scenario in scripts else ''))
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=duration + 30).stdout
    errors = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    if errors:
        raise RuntimeError(f'{errors.group(1)} failed responses:\n{out}')
    rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
    p99 = re.search(r'^\s+99%\s+(\S+)', out, re.MULTILINE).group(1)
    return rps, p99


def measure(command: list[str], scenario: str, duration: int, scripts: dict[str, Path]) -> tuple[float, str]:
    """Start a server pinned to CPU 0, warm it up, load it, stop it by its process id."""
    port = PORT
    argv = ['taskset', '-c', '0', *[part.replace('{port}', str(port)) for part in command]]
    proc = subprocess.Popen(
        argv, cwd=APPS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_listening(port)
        wrk(port, scenario, 2, scripts)
        return wrk(port, scenario, duration, scripts)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=10)
    parser.add_argument('--interfaces', default='rsgi,asgi,wsgi')
    parser.add_argument('--scenarios', default='get,echo1k,echo10k')
    options = parser.parse_args()
    for tool in ('wrk', 'taskset'):
        if shutil.which(tool) is None:
            sys.exit(f'{tool} is needed: apt-get install {"wrk" if tool == "wrk" else "util-linux"}')
    ensure_peers()
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {}
        for scenario, size in ECHO_SIZES.items():
            body = Path(tmp, f'{scenario}.bin')
            body.write_bytes(b'x' * size)
            scripts[scenario] = Path(tmp, f'{scenario}.lua')
            scripts[scenario].write_text(
                f'wrk.method = "POST"\nlocal f = io.open("{body}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
            )
        print(f'{"interface":<9} {"scenario":<8} {"server":<14} {"req/s":>10} {"p99":>9} {"vs 2.8.1":>8}  runs')
        for interface in options.interfaces.split(','):
            for scenario in options.scenarios.split(','):
                results: dict[str, list[tuple[float, str]]] = {}
                for _ in range(options.rounds):
                    for name, command in servers(interface).items():
                        results.setdefault(name, []).append(measure(command, scenario, options.duration, scripts))
                baseline = statistics.median(r for r, _ in results['granian-2.8.1'])
                for name, runs in results.items():
                    median = statistics.median(r for r, _ in runs)
                    p99 = sorted(runs)[len(runs) // 2][1]
                    print(
                        f'{interface:<9} {scenario:<8} {name:<14} {median:>10,.0f} {p99:>9} {median / baseline:>8.2f}  '
                        f'{[round(r) for r, _ in runs]}',
                        flush=True,
                    )


if __name__ == '__main__':
    main()
