"""The deployment files in deploy/: the Kubernetes manifests validate, and the Docker image's recipe serves.

No Docker engine runs on the test machines, so the Dockerfile is followed without one: its build
stage's `pip install` into a fresh virtualenv (granian from the built artifacts, the example's
requirements from PyPI), then its `CMD` with its `ENV`, in the example app's directory.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests_support.freshvenv import CommandServer, Distributions, FreshVenv
from tests_support.server import child_pids, command_line, socket_activated
from tests_support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / 'deploy'
pytestmark = pytest.mark.timeout(900)


def _validate(*manifests: Path, version: str | None = None) -> subprocess.CompletedProcess[str]:
    validator = Path(sys.executable).parent / 'kubernetes-validate'
    argv = [str(validator), '--strict', *(['-k', version] if version else []), *map(str, manifests)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize('version', [None, '1.28.0'], ids=['newest', '1.28'])
def test_kubernetes_manifests_validate_strictly(version: str | None) -> None:
    manifests = sorted((DEPLOY / 'kubernetes').glob('*.yaml'))
    assert [m.name for m in manifests] == ['deployment.yaml', 'hpa.yaml', 'service.yaml']
    result = _validate(*manifests, version=version)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_refuses_a_misspelt_field(tmp_path: Path) -> None:
    broken = tmp_path / 'deployment.yaml'
    text = (DEPLOY / 'kubernetes' / 'deployment.yaml').read_text()
    broken.write_text(text.replace('terminationGracePeriodSeconds', 'terminationGracePeriodSecs'))
    assert _validate(broken).returncode != 0


def test_termination_grace_outlasts_pre_stop_and_the_kill_timeout() -> None:
    text = (DEPLOY / 'kubernetes' / 'deployment.yaml').read_text()
    grace = int(re.search(r'terminationGracePeriodSeconds: (\d+)', text).group(1))
    pre_stop = int(re.search(r'command: \["sleep", "(\d+)"\]', text).group(1))
    kill = int(re.search(r'GRANIAN_WORKERS_KILL_TIMEOUT\n\s+value: "(\d+)"', text).group(1))
    drain = int(re.search(r'GRANIAN_WORKERS_DRAIN_TIMEOUT\n\s+value: "(\d+)"', text).group(1))
    assert drain < kill
    assert pre_stop + kill < grace


def _dockerfile() -> tuple[list[str], dict[str, str], list[str]]:
    """The runtime stage's CMD and ENV, and the build stage's pip install arguments."""
    text = (DEPLOY / 'docker' / 'Dockerfile').read_text().replace('\\\n', ' ')
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith('#')]
    stages = [i for i, line in enumerate(lines) if line.startswith('FROM ')]
    assert len(stages) == 2, 'a build stage and a runtime stage'
    runtime = lines[stages[1] :]
    cmd = json.loads(next(line for line in runtime if line.startswith('CMD '))[4:])
    env: dict[str, str] = {}
    for line in runtime:
        if line.startswith('ENV '):
            env.update(pair.split('=', 1) for pair in shlex.split(line[4:]))
    users = [line for line in runtime if line.startswith('USER ')]
    assert users and users[-1] not in {'USER root', 'USER 0'}, 'the runtime stage drops root'
    install = next(line for line in lines[: stages[1]] if '/venv/bin/pip install' in line)
    return cmd, env, shlex.split(install.split('/venv/bin/pip install', 1)[1])


def test_the_docker_recipe_serves_the_example(distributions: Distributions, tmp_path: Path) -> None:
    cmd, env, install_args = _dockerfile()
    assert cmd[0] == '/venv/bin/python' and env['GRANIAN_HOST'] == '0.0.0.0'
    venv = FreshVenv(tmp_path / 'image')
    app_dir = tmp_path / 'srv-app'
    shutil.copytree(DEPLOY / 'example', app_dir)
    # the image's paths, mapped to the virtualenv and the copied example
    install_args = [
        {'/wheels': str(distributions.directory), '/tmp/requirements.txt': str(app_dir / 'requirements.txt')}.get(a, a)
        for a in install_args
    ]
    venv.pip_install(*install_args)
    argv = [str(venv.python) if arg == '/venv/bin/python' else arg for arg in cmd]
    # the ENV of the image, with a free port and loopback (the test must not listen on every interface)
    server = CommandServer(argv, working_dir=app_dir, env=env)
    server.env.update({'GRANIAN_HOST': '127.0.0.1', 'GRANIAN_PORT': str(server.port)})
    with server, httpx.Client(timeout=30) as client:
        assert client.get(server.url('/')).text == 'Hello from granian!'
        assert client.get(server.url('/healthz')).text == 'ok'
        assert server.proc is not None
        assert _workers_start(server.proc.pid, int(env['GRANIAN_WORKERS']))


def _workers_start(pid: int, count: int) -> bool:
    """Whether the supervisor `pid` has `count` workers running within 30 s (the first may answer
    before the others have started)."""
    return wait_until(lambda: len(_spawned_children(pid)) == count, timeout=30)


def _spawned_children(pid: int) -> list[int]:
    """Worker processes of the supervisor `pid`: its children but multiprocessing's resource tracker."""
    return [child for child in child_pids(pid) if 'resource_tracker' not in command_line(child)]


# systemd


def _unit(name: str) -> dict[str, list[str]]:
    """A unit file's settings, `Section.Key` -> every value given (Environment= repeats)."""
    settings: dict[str, list[str]] = {}
    section = ''
    for line in (DEPLOY / 'systemd' / name).read_text().splitlines():
        line = line.strip()
        if line.startswith('['):
            section = line.strip('[]')
        elif line and not line.startswith('#'):
            key, _, value = line.partition('=')
            settings.setdefault(f'{section}.{key}', []).append(value)
    return settings


def test_systemd_units_verify(tmp_path: Path) -> None:
    """systemd-analyze accepts both units (with the service's paths pointing at this machine's granian)."""
    analyze = shutil.which('systemd-analyze')
    if analyze is None:
        pytest.skip('systemd-analyze is not installed')
    granian = Path(sys.executable).parent / 'granian'
    service = (DEPLOY / 'systemd' / 'myapp.service').read_text()
    service = service.replace('/srv/myapp/.venv/bin/granian', str(granian)).replace('/srv/myapp', str(tmp_path))
    (tmp_path / 'myapp.service').write_text(service)
    shutil.copy(DEPLOY / 'systemd' / 'myapp.socket', tmp_path)
    argv = [analyze, 'verify', '--man=no', './myapp.socket', './myapp.service']
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # and the check is real: a misspelt directive is reported
    (tmp_path / 'myapp.service').write_text(service.replace('TimeoutStopSec', 'TimeoutStopSecs'))
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert 'TimeoutStopSecs' in result.stderr


ASGI_MAIN = """
async def app(scope, receive, send):
    if scope['type'] == 'lifespan':
        while (await receive())['type'] != 'lifespan.shutdown':
            await send({'type': 'lifespan.startup.complete'})
        await send({'type': 'lifespan.shutdown.complete'})
    else:
        await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]})
        await send({'type': 'http.response.body', 'body': b'activated'})
"""


def test_the_socket_activated_service_serves_and_stops_in_time(tmp_path: Path) -> None:
    """The service's ExecStart, run as systemd runs it (the socket on descriptor 3, the unit's
    Environment), serves on the socket's address; its drain and kill timeouts fit TimeoutStopSec."""
    socket_unit, service = _unit('myapp.socket'), _unit('myapp.service')
    env = dict(value.split('=', 1) for value in service['Service.Environment'])
    drain, kill = int(env['GRANIAN_WORKERS_DRAIN_TIMEOUT']), int(env['GRANIAN_WORKERS_KILL_TIMEOUT'])
    assert drain < kill < int(service['Service.TimeoutStopSec'][0])
    assert service['Service.KillSignal'] == ['SIGTERM']

    host, _, _ = socket_unit['Socket.ListenStream'][0].rpartition(':')
    sock = socket.create_server((host, 0), backlog=int(socket_unit['Socket.Backlog'][0]))
    (tmp_path / 'main.py').write_text(ASGI_MAIN)
    program, *args = shlex.split(service['Service.ExecStart'][0])
    assert program == '/srv/myapp/.venv/bin/granian'
    argv = socket_activated([Path(sys.executable).parent / 'granian', *args], [sock])
    server = CommandServer(argv, working_dir=tmp_path, env=env, port=sock.getsockname()[1], pass_fds=[sock.fileno()])
    with sock, server, httpx.Client(timeout=30) as client:
        assert client.get(server.url('/')).text == 'activated'
        assert server.proc is not None
        # the process title names the socket it serves, not the --port default
        assert command_line(server.proc.pid) == f'granian asgi {server.host}:{server.port} main:app'
        assert _workers_start(server.proc.pid, int(args[args.index('--workers') + 1]))
        # systemd stops it with KillSignal and SIGKILLs after TimeoutStopSec: it must exit cleanly before
        assert server.stop(timeout=float(service['Service.TimeoutStopSec'][0])) == 0
