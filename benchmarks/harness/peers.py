"""benchmarks/.venv-peers: granian 2.8.1 and the other servers we compare with, at pinned versions.

granian 2.8.1 is required; every other peer is installed on its own, and one that fails to install
(bjoern needs Debian's libev-dev, socketify needs libuv1) is reported and later skipped by the run.
"""

from __future__ import annotations

import subprocess
import sys
import venv

from .servers import PEERS_PYTHON, PEERS_VENV

REQUIRED = ['granian==2.8.1', 'uvloop==0.23.0']
OPTIONAL = {
    'uvicorn': ['uvicorn==0.54.0', 'httptools==0.9.0', 'websockets==17.4'],
    'hypercorn': ['hypercorn==0.18.0'],
    # Hypercorn's HTTP/3 (`--quic-bind`, the http3 benchmark); without it only that row is skipped.
    'aioquic': ['aioquic==1.7.2'],
    'gunicorn': ['gunicorn==27.0.1', 'uvicorn-worker==0.4.0'],
    'bjoern': ['bjoern==3.2.2'],
    'fastwsgi': ['fastwsgi==0.0.9'],
    'socketify': ['socketify==0.0.31'],
}
HINTS = {
    'bjoern': 'bjoern builds against libev: apt-get install -y libev-dev',
    'socketify': 'socketify loads libuv at import: apt-get install -y libuv1',
}


def _pip(*packages: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PEERS_PYTHON), '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', *packages],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def setup() -> int:
    """Create the venv if needed and install every peer; returns 1 when granian 2.8.1 could not be installed."""
    if not PEERS_PYTHON.exists():
        print(f'creating {PEERS_VENV}', flush=True)
        venv.create(PEERS_VENV, with_pip=True)
    print(f'installing {" ".join(REQUIRED)}', flush=True)
    done = _pip(*REQUIRED)
    if done.returncode != 0:
        print(done.stderr.strip()[-2000:], file=sys.stderr)
        return 1
    for name, packages in OPTIONAL.items():
        print(f'installing {" ".join(packages)}', flush=True)
        done = _pip(*packages)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ['pip failed'])[-1]
            print(f'  {name} is not installed and will be skipped: {last}', flush=True)
            if name in HINTS:
                print(f'  {HINTS[name]}', flush=True)
    return 0
