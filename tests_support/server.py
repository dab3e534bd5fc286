"""Run `python -m granian` as a real subprocess bound to 127.0.0.1, wait until it accepts, stop it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing.Self is Python >= 3.11; annotations are not evaluated at run time
    from typing import Self

from .waiting import wait_until

HOST = '127.0.0.1'
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


# Ports handed to servers come from a band below Linux's ephemeral range (32768-60999), one band per
# pytest-xdist worker: a port we pick is then never another worker's pick, nor the local port of some
# client connection that the kernel chose (a server binding such a port fails with EADDRINUSE).
_PORT_BAND_START = 12000
_PORT_BAND_SIZE = 2500
_next_port: list[int] = []


def _port_band() -> range:
    worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
    number = int(worker[2:]) if worker[2:].isdigit() else 0
    start = _PORT_BAND_START + (number % 8) * _PORT_BAND_SIZE
    return range(start, start + _PORT_BAND_SIZE)


def free_port(host: str = HOST) -> int:
    """Return a TCP port that was free on `host` a moment ago (bound and closed), from this worker's band."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    band = _port_band()
    if not _next_port:
        _next_port.append(band.start + os.getpid() % len(band))
    for _ in range(len(band)):
        port = _next_port[0]
        _next_port[0] = band.start + (port + 1 - band.start) % len(band)
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f'no free port in {band.start}-{band.stop - 1} on {host}')


def server_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment for a server subprocess: ours minus GRANIAN_* settings, plus `overrides`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith('GRANIAN_')}
    env['PYTHONUNBUFFERED'] = '1'
    env.update(overrides or {})
    return env


def granian_command(
    target: str, *, port: int, interface: str = 'rsgi', host: str = HOST, extra_args: Iterable[str] = ()
) -> list[str]:
    """Return the argv that serves `target` with `python -m granian`."""
    return [
        sys.executable,
        '-m',
        'granian',
        '--interface',
        interface,
        '--host',
        host,
        '--port',
        str(port),
        *extra_args,
        target,
    ]


# Runs the rest of its argv as Python after putting the sockets named in argv[1] on descriptors 3, 4, ...
# and setting LISTEN_PID/LISTEN_FDS, as systemd does for the process it activates.
_ACTIVATE = """
import fcntl, os, sys
sources = [int(fd) for fd in sys.argv[1].split(',')]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in sources]
for number, fd in enumerate(high):
    os.dup2(fd, 3 + number)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(high)))
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def socket_activated(python_args: Iterable[str | Path], sockets: Iterable[socket.socket]) -> list[str]:
    """The argv that runs `python *python_args` the way systemd starts a socket-activated service.

    The sockets must be passed to the child (`pass_fds`); they land on descriptors 3, 4, ...
    """
    fds = ','.join(str(sock.fileno()) for sock in sockets)
    return [sys.executable, '-c', _ACTIVATE, fds, *map(str, python_args)]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_granian(
    args: Iterable[str], *, cwd: Path | str | None = None, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m granian ARGS` to completion (bounded); kill its whole process group if it overruns."""
    argv = [sys.executable, '-m', 'granian', *args]
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=server_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        stdout, stderr = proc.communicate(timeout=10)
        raise AssertionError(
            f'{argv} did not exit within {timeout} s\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}'
        ) from None
    finally:
        if _group_alive(proc.pid):
            _kill_group(proc.pid)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


class ServerStartError(RuntimeError):
    """The server process exited or never accepted connections."""


class RunningServer:
    """A granian server in a subprocess of its own session; use as a context manager or call start()/close().

    stdout and stderr go to one temporary log file (`output`), kept until close().
    """

    def __init__(
        self,
        target: str,
        *,
        working_dir: Path | str | None = None,
        interface: str = 'rsgi',
        extra_args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        host: str = HOST,
        port: int | None = None,
        ready_timeout: float = READY_TIMEOUT,
        uds: Path | str | None = None,
        pass_fds: Iterable[int] = (),
    ) -> None:
        self.target = target
        #: A Unix socket to serve on (`--uds`); readiness is then checked there.
        self.uds = str(uds) if uds is not None else None
        #: Descriptors the server inherits (listening sockets for `--fd` and socket activation).
        self.pass_fds = tuple(pass_fds)
        self.working_dir = Path(working_dir) if working_dir is not None else None
        self.interface = interface
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.leftover_processes = False
        self._log_path: Path | None = None
        self._log_file = None

    @property
    def base_url(self) -> str:
        """The http:// URL of the server root, without a trailing slash."""
        return f'http://{self.host}:{self.port}'

    def url(self, path: str) -> str:
        """Return the absolute URL for `path` (which starts with '/')."""
        return self.base_url + path

    @property
    def command(self) -> list[str]:
        """The argv used to start the server."""
        extra = list(self.extra_args)
        if self.working_dir is not None:
            extra = ['--working-dir', str(self.working_dir), *extra]
        if self.uds is not None:
            extra = ['--uds', self.uds, *extra]
        return granian_command(self.target, port=self.port, interface=self.interface, host=self.host, extra_args=extra)

    @property
    def output(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        if self._log_path is None or not self._log_path.exists():
            return ''
        return self._log_path.read_text(encoding='utf-8', errors='replace')

    def process_env(self) -> dict[str, str]:
        """The server process's environment: ours minus GRANIAN_* settings, plus `env`."""
        return server_env(self.env)

    def start(self) -> Self:
        """Spawn the server and block until its port accepts TCP connections (bounded by ready_timeout)."""
        fd, name = tempfile.mkstemp(prefix='granian-test-', suffix='.log')
        self._log_path = Path(name)
        self._log_file = os.fdopen(fd, 'wb')
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.working_dir,
            env=self.process_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=self.pass_fds,
        )
        deadline = time.monotonic() + self.ready_timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                self._finish(code)
                raise ServerStartError(
                    f'server {self.command} exited with code {code} before accepting connections:\n{self.output}'
                )
            if self.accepts_connections():
                return self
            if time.monotonic() >= deadline:
                self.stop()
                raise ServerStartError(
                    f'server {self.command} did not accept connections within {self.ready_timeout} s:\n{self.output}'
                )
            time.sleep(0.05)

    def accepts_connections(self) -> bool:
        """Whether the server's socket (TCP, or the Unix socket) accepts a connection now."""
        try:
            if self.uds is not None:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.settimeout(0.5)
                    probe.connect(self.uds)
            else:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    pass
        except OSError:
            return False
        return True

    def wait_for_output(self, text: str, timeout: float = 10.0) -> bool:
        """Wait (bounded) until `text` appears in the server output."""
        return wait_until(lambda: text in self.output, timeout)

    def send_signal(self, sig: int) -> None:
        """Send `sig` to the supervisor process only (not to its workers)."""
        assert self.proc is not None, 'server not started'
        self.proc.send_signal(sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Wait (bounded) for the supervisor to exit; return its exit code, or None if it is still running."""
        assert self.proc is not None, 'server not started'
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._finish(code)
        return code

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the supervisor and wait (bounded); SIGKILL the whole process group if it overruns.

        Returns the supervisor's exit code (negative signal number when it had to be killed).
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            code = self.wait(timeout)
            if code is None:
                _kill_group(self.proc.pid)
                code = self.proc.wait(timeout=10)
                self._finish(code)
        else:
            self._finish(self.proc.returncode)
        return self.returncode

    def _finish(self, code: int) -> None:
        if self.returncode is not None:
            return
        self.returncode = code
        assert self.proc is not None
        pgid = self.proc.pid
        # Workers live in the supervisor's session; any still alive shortly after it exits were orphaned.
        if not wait_until(lambda: not _group_alive(pgid), 3.0):
            self.leftover_processes = True
            _kill_group(pgid)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def close(self) -> None:
        """Stop the server if needed and remove its log file."""
        self.stop()
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f'<RunningServer {self.target} at {self.base_url} pid={self.proc.pid if self.proc else None}>'


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (read from /proc)."""
    found = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def command_line(pid: int) -> str:
    """The command line (or process title) of `pid`, its arguments joined by spaces; '' once it is gone."""
    try:
        return Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace').strip()
    except OSError:
        return ''


def get_fresh_connection(port: int, path: str, timeout: float = 10.0) -> tuple[int, str]:
    """GET `path` on a new TCP connection that is closed afterwards; return (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request('GET', path, headers={'Connection': 'close'})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def collect_worker_pids(server: RunningServer, want: int, timeout: float = 20.0) -> set[int]:
    """Ask /pid over new connections until `want` distinct pids answered or `timeout` passes."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < want and time.monotonic() < deadline:
        status, body = get_fresh_connection(server.port, '/pid')
        assert status == 200, body
        pids.add(int(body))
    return pids
