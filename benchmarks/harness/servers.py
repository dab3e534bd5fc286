"""The servers compared, how each is started, and a running server's life: start, readiness, stop, memory.

Every server runs one worker on 127.0.0.1, pinned to `SERVER_CPU` with taskset, in a session of its
own so that it (and any worker it spawns) is stopped through its process group. Ours runs from the
repository's .venv; the peers from benchmarks/.venv-peers (granian 2.8.1 owns the `granian` import
name too, so it cannot share a venv with ours).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / 'benchmarks'
APPS = BENCHMARKS / 'apps'
OURS_PYTHON = ROOT / '.venv' / 'bin' / 'python'
PEERS_VENV = BENCHMARKS / '.venv-peers'
PEERS_PYTHON = PEERS_VENV / 'bin' / 'python'
#: Another commit of ours, built by `python benchmarks/run.py ref COMMIT` (harness/reference.py).
REF_VENV = BENCHMARKS / '.venv-ref'
REF_PYTHON = REF_VENV / 'bin' / 'python'
HOST = '127.0.0.1'
SERVER_CPU = 0
LOAD_CPU = 1
READY_TIMEOUT = 30.0
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
STOP_TIMEOUT = 10.0

OURS = 'ours'
BASELINE = 'granian-2.8.1'
#: Ours built from another commit, for A/B runs.
REF = 'ours-ref'
#: The one other peer with a target: WSGI over HTTP/1.1 should reach its figure.
TARGET_PEER = 'bjoern'


def _granian(interface: str, port: int) -> list[str]:
    # The same flags are valid for ours and for granian 2.8.1 (ours keeps its CLI).
    return [
        '-m', 'granian', '--interface', interface, '--host', HOST, '--port', str(port), '--workers', '1',
        '--loop', 'uvloop', '--log-level', 'warning', '--working-dir', str(APPS), f'{interface}_app:app',
    ]  # fmt: skip


def _granian_access_log(interface: str, port: int) -> list[str]:
    # The default access log format, written to the server's log file.
    return [*_granian(interface, port), '--access-log']


def _granian_metrics(interface: str, port: int) -> list[str]:
    # Metrics on, nobody scraping: the cost of counting.
    return [*_granian(interface, port), '--metrics', '--metrics-port', str(port + 1)]


def _uvicorn(interface: str, port: int) -> list[str]:
    return [
        '-m', 'uvicorn', '--host', HOST, '--port', str(port), '--workers', '1', '--loop', 'uvloop',
        '--http', 'httptools', '--no-access-log', '--log-level', 'warning', 'asgi_app:app',
    ]  # fmt: skip


def _hypercorn(interface: str, port: int) -> list[str]:
    return [
        '-m', 'hypercorn', '--bind', f'{HOST}:{port}', '--workers', '1', '--worker-class', 'uvloop',
        '--log-level', 'warning', 'asgi_app:app',
    ]  # fmt: skip


def _gunicorn_uvicorn(interface: str, port: int) -> list[str]:
    return [
        '-m', 'gunicorn', '--worker-class', 'uvicorn_worker.UvicornWorker', '--workers', '1',
        '--bind', f'{HOST}:{port}', '--log-level', 'warning', 'asgi_app:app',
    ]  # fmt: skip


def _gunicorn_gthread(interface: str, port: int) -> list[str]:
    return [
        '-m', 'gunicorn', '--worker-class', 'gthread', '--threads', '4', '--workers', '1',
        '--bind', f'{HOST}:{port}', '--log-level', 'warning', 'wsgi_app:app',
    ]  # fmt: skip


def _bjoern(interface: str, port: int) -> list[str]:
    return ['-c', f'import bjoern, wsgi_app; bjoern.run(wsgi_app.app, {HOST!r}, {port})']


def _fastwsgi(interface: str, port: int) -> list[str]:
    return ['-c', f'import fastwsgi, wsgi_app; fastwsgi.run(wsgi_app.app, host={HOST!r}, port={port})']


def _socketify(interface: str, port: int) -> list[str]:
    return ['-m', 'socketify', f'{interface}_app:app', '--interface', interface, '--host', HOST, '--port', str(port)]


@dataclass(frozen=True)
class ServerSpec:
    """A server we compare: the interfaces it serves, how to start it, whether it speaks h2c."""

    name: str
    interfaces: tuple[str, ...]
    arguments: Callable[[str, int], list[str]]
    #: Module that must import in the server's venv for the server to be available.
    module: str
    #: Distribution whose version the results record.
    distribution: str
    python: Path = PEERS_PYTHON
    http2: bool = False
    note: str = ''
    #: A configuration of ours measured beside ours and granian 2.8.1 (same session, alternating
    #: repeats), only when named with --servers: the cost of a feature in the same run.
    variant: bool = False

    def command(self, interface: str, port: int, wrapper: tuple[str, ...] = ()) -> list[str]:
        """argv serving the benchmark app of `interface` on `port`, pinned to the server CPU (run by
        `wrapper`, such as a profiler's command line, when given)."""
        return ['taskset', '-c', str(SERVER_CPU), *wrapper, str(self.python), *self.arguments(interface, port)]


def _variant(
    name: str, arguments: Callable[[str, int], list[str]], note: str, python: Path = OURS_PYTHON
) -> ServerSpec:
    """A configuration (or another build) of ours, measured beside ours when named."""
    return ServerSpec(
        name,
        ('rsgi', 'asgi', 'wsgi'),
        arguments,
        'granian',
        'granian-core',
        python,
        http2=True,
        note=note,
        variant=True,
    )


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(OURS, ('rsgi', 'asgi', 'wsgi'), _granian, 'granian', 'granian-core', OURS_PYTHON, http2=True),
        ServerSpec(BASELINE, ('rsgi', 'asgi', 'wsgi'), _granian, 'granian', 'granian', http2=True),
        _variant('ours-access-log', _granian_access_log, 'ours with --access-log (default format)'),
        _variant('ours-metrics', _granian_metrics, 'ours with --metrics (endpoint on the next port)'),
        _variant(REF, _granian, 'ours built from another commit (python benchmarks/run.py ref COMMIT)', REF_PYTHON),
        ServerSpec('uvicorn', ('asgi',), _uvicorn, 'uvicorn', 'uvicorn', note='httptools + uvloop'),
        ServerSpec('hypercorn', ('asgi',), _hypercorn, 'hypercorn', 'hypercorn', http2=True, note='uvloop worker'),
        ServerSpec(
            'gunicorn-uvicorn',
            ('asgi',),
            _gunicorn_uvicorn,
            'uvicorn_worker',
            'uvicorn-worker',
            note='gunicorn with uvicorn-worker',
        ),
        ServerSpec('gunicorn-gthread', ('wsgi',), _gunicorn_gthread, 'gunicorn', 'gunicorn', note='4 threads'),
        ServerSpec('bjoern', ('wsgi',), _bjoern, 'bjoern', 'bjoern', note='HTTP/1.1 only'),
        ServerSpec('fastwsgi', ('wsgi',), _fastwsgi, 'fastwsgi', 'fastwsgi', note='HTTP/1.1 only'),
        ServerSpec('socketify', ('asgi', 'wsgi'), _socketify, 'socketify', 'socketify'),
    )
}


#: The servers a run measures unless --servers names others (variants only when named).
DEFAULT_SERVERS = tuple(name for name, spec in SERVERS.items() if not spec.variant)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_environment() -> dict[str, str]:
    """Our environment without GRANIAN_* settings (they would change both granians' configuration)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith('GRANIAN_')}
    env['PYTHONUNBUFFERED'] = '1'
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    return env


class ServerError(RuntimeError):
    """The server exited, or did not answer, before it was ready."""


def connect(port: int, timeout: float, tls: bool = False) -> http.client.HTTPConnection:
    """An HTTP client connection to a benchmarked server; over TLS without verification (the
    harness's own throwaway certificate has nothing to verify it against)."""
    if tls:
        context = ssl._create_unverified_context()
        return http.client.HTTPSConnection(HOST, port, timeout=timeout, context=context)
    return http.client.HTTPConnection(HOST, port, timeout=timeout)


def answers(port: int, timeout: float = 2.0, tls: bool = False) -> bool:
    """True when `GET /b/10` on `port` (over HTTPS if `tls`) gets a 200 response."""
    connection = connect(port, timeout, tls)
    try:
        connection.request('GET', '/b/10')
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


@dataclass(eq=False)
class RunningServer:
    """One server process (and its workers) serving one interface's app."""

    spec: ServerSpec
    interface: str
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    #: Flags appended to the server's command line (the granians take options after the app).
    extra_arguments: tuple[str, ...] = ()
    #: Serves HTTPS (readiness is checked over TLS).
    tls: bool = False
    #: Runs the server's python (a profiler's command line, such as valgrind's).
    wrapper: tuple[str, ...] = ()
    #: Seconds the server may take to answer its first request.
    ready_timeout: float = READY_TIMEOUT

    @property
    def name(self) -> str:
        """The server's name in results (`ours`, `granian-2.8.1`, `uvicorn`, ...)."""
        return self.spec.name

    def start(self) -> RunningServer:
        """Start the server and wait (bounded) until it answers a request."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open('wb') as log:
            self.process = subprocess.Popen(
                [*self.spec.command(self.interface, self.port, self.wrapper), *self.extra_arguments],
                cwd=APPS,
                env=server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise ServerError(f'exited with code {self.process.returncode}: {self.log_tail()}')
            if answers(self.port, timeout=1.0, tls=self.tls):
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerError(f'did not answer within {self.ready_timeout:.0f} s: {self.log_tail()}')

    def stop(self) -> None:
        """SIGTERM the server's process group; SIGKILL whatever is left after STOP_TIMEOUT."""
        if self.process is None:
            return
        group = self.process.pid
        _signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(group) or self.process.poll() is None:
            _signal_group(group, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 5) -> str:
        """The last lines the server wrote, on one line."""
        try:
            text = self.log_path.read_text(errors='replace')
        except OSError:
            return ''
        return ' | '.join(line.strip() for line in text.strip().splitlines()[-lines:])

    def log_excerpt(self) -> str:
        """The line of the server's log that best explains a crash (a fatal error), else its last lines."""
        try:
            lines = [line.strip() for line in self.log_path.read_text(errors='replace').splitlines() if line.strip()]
        except OSError:
            return ''
        for line in lines:
            if line.startswith(('Fatal Python error', 'Segmentation fault', 'Traceback')):
                return line[:300]
        return ' | '.join(lines[-3:])[:300]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by every process of the server's group."""
        if self.process is None:
            raise ServerError('not started')
        ticks = sum(
            int(stat[11]) + int(stat[12]) for pid in _group_members(self.process.pid) if (stat := _proc_stat(pid))
        )
        return ticks / CLOCK_TICKS

    def worker_pids(self) -> list[int]:
        """The supervisor's children other than multiprocessing's resource tracker (none: no supervisor)."""
        if self.process is None:
            raise ServerError('not started')
        return [pid for pid in _children(self.process.pid) if 'resource_tracker' not in _cmdline(pid)]

    def memory(self) -> dict[str, int]:
        """RSS in KiB: `worker`, `supervisor`, `supervisor_worker` (their sum), `group` (every process), `worker_peak`;
        and what RSS cannot compare between servers that start workers differently: `worker_private`
        (pages only the worker maps: what one more worker costs) and `supervisor_worker_pss` (the two
        processes' proportional shares: what they cost together).

        A forked worker shares the pages of the supervisor it was copied from, and does not count shared
        library pages in its RSS until it touches them; a spawned worker imports everything anew.

        The worker is the supervisor's child other than multiprocessing's resource tracker (the largest
        one if there are several); a server without a supervisor is its own worker.
        """
        if self.process is None:
            raise ServerError('not started')
        supervisor = self.process.pid
        children = self.worker_pids()
        supervisor_status = _status(supervisor)
        statuses = {pid: _status(pid) for pid in children}
        statuses = {pid: status for pid, status in statuses.items() if status}
        if statuses:
            worker = max(statuses, key=lambda pid: statuses[pid].get('VmRSS', 0))
            worker_status = statuses[worker]
            combined = supervisor_status.get('VmRSS', 0) + worker_status.get('VmRSS', 0)
            worker_shares, supervisor_pss = _shares(worker), _shares(supervisor)['pss']
        else:
            worker_status = supervisor_status
            combined = supervisor_status.get('VmRSS', 0)
            worker_shares, supervisor_pss = _shares(supervisor), 0
        group = sum(_status(pid).get('VmRSS', 0) for pid in _group_members(supervisor))
        return {
            'worker': worker_status.get('VmRSS', 0),
            'worker_peak': worker_status.get('VmHWM', 0),
            'supervisor': supervisor_status.get('VmRSS', 0) if statuses else 0,
            'supervisor_worker': combined,
            'group': group,
            'worker_private': worker_shares['private'],
            'supervisor_worker_pss': supervisor_pss + worker_shares['pss'],
        }


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...)."""
    try:
        text = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return []
    return text[text.rfind(')') + 2 :].split()


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir('/proc') if entry.isdigit()]


def _children(pid: int) -> list[int]:
    return [child for child in _all_pids() if (stat := _proc_stat(child)) and int(stat[1]) == pid]


def _group_members(group: int) -> list[int]:
    return [pid for pid in _all_pids() if (stat := _proc_stat(pid)) and int(stat[2]) == group]


def _cmdline(pid: int) -> str:
    try:
        return Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


def kib_fields(text: str) -> dict[str, int]:
    """The `Name: N kB` lines of a /proc file (status, smaps_rollup) as {name: N}."""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(':')
        parts = value.split()
        if len(parts) == 2 and parts[1] == 'kB':
            fields[key] = int(parts[0])
    return fields


def _proc_kib(pid: int, name: str) -> dict[str, int]:
    """The kB fields of /proc/PID/`name`; empty if the process is gone."""
    try:
        return kib_fields(Path(f'/proc/{pid}/{name}').read_text())
    except OSError:
        return {}


def _status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status (VmRSS, VmHWM, ...)."""
    return _proc_kib(pid, 'status')


def _shares(pid: int) -> dict[str, int]:
    """What process `pid` holds alone (`private`: pages no other process maps) and its proportional
    share of everything it maps (`pss`: each shared page divided by the processes mapping it)."""
    rollup = _proc_kib(pid, 'smaps_rollup')
    return {'private': rollup.get('Private_Clean', 0) + rollup.get('Private_Dirty', 0), 'pss': rollup.get('Pss', 0)}
