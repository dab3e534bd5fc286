"""The worker lifecycle and the server process, seen from outside: respawning failed workers and the
crash-loop stop, the kill timeout, the respawn interval of a reload, the pid file, a script that
serves at module level without a main guard, and how workers start (forked or spawned)."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from tests_support.processes import listening_socket_inode, shared_dirty_kib, socket_inodes, worker_pid
from tests_support.server import (
    HOST,
    RunningServer,
    child_pids,
    collect_worker_pids,
    command_line,
    free_port,
    run_granian,
    server_env,
)
from tests_support.waiting import wait_until

APP = 'rsgi_app:app'

APPS_DIR = Path(__file__).parent / 'apps'


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run(
        [sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


# -- respawning ------------------------------------------------------------------------------------


def test_a_killed_worker_is_respawned_and_the_others_keep_serving(rsgi_apps_dir: Path):
    args = ['--workers', '2', '--respawn-failed-workers']
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=args) as server:
        first = collect_worker_pids(server, want=2)
        assert len(first) == 2, server.output
        victim, survivor = sorted(first)
        os.kill(victim, signal.SIGKILL)
        # While the replacement starts, the survivor answers every request.
        for _ in range(20):
            assert httpx.get(server.url('/pid'), timeout=10).status_code == 200
        assert server.wait_for_output('Respawned worker-', 20), server.output
        second = collect_worker_pids(server, want=2)
        assert survivor in second and victim not in second and len(second) == 2, (first, second)
        assert server.proc is not None and server.proc.poll() is None


def test_without_respawn_a_worker_exit_stops_the_server(rsgi_apps_dir: Path):
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=['--workers', '2']) as server:
        victim = min(collect_worker_pids(server, want=2))
        os.kill(victim, signal.SIGKILL)
        assert server.wait(20) == 1, server.output
        assert 'exited unexpectedly' in server.output


def test_a_crash_loop_stops_the_server_with_one_line():
    # Each worker starts, serves, and dies 0.3 s later: respawned, it dies again.
    env = {'CRASH_AFTER_SECONDS': '0.3'}
    server = RunningServer('crashing_app:app', working_dir=APPS_DIR, extra_args=['--respawn-failed-workers'], env=env)
    with server:
        code = server.wait(60)
        output = server.output
    assert code == 1, output
    lines = [line for line in output.splitlines() if 'crash loop' in line]
    assert len(lines) == 1 and 'worker-1 failed 5 times within 60 s' in lines[0], output
    assert output.count('Respawned worker-1') == 4, output
    assert 'Traceback' not in output


# -- stopping --------------------------------------------------------------------------------------


def _start_slow_request(server: RunningServer, seconds: float) -> threading.Thread:
    def request() -> None:
        try:
            httpx.get(server.url(f'/sleep?seconds={seconds}'), timeout=seconds + 10)
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    return thread


def test_kill_timeout_kills_a_worker_that_does_not_drain(rsgi_apps_dir: Path):
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=['--workers-kill-timeout', '1']) as server:
        worker = min(collect_worker_pids(server, want=1))
        _start_slow_request(server, 60)
        time.sleep(0.5)
        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait(20)
        took = time.monotonic() - began
        output = server.output
    assert code == 0, output
    assert took < 8, f'the server took {took:.1f} s to stop with a 1 s kill timeout'
    assert 'worker-1 did not stop within 1 s; killing it' in output
    assert not _alive(worker)


def test_without_kill_timeout_a_stop_waits_for_the_drain(rsgi_apps_dir: Path):
    with RunningServer(APP, working_dir=rsgi_apps_dir) as server:
        thread = _start_slow_request(server, 3)
        time.sleep(0.5)
        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait(20)
        took = time.monotonic() - began
        thread.join(10)
    assert code == 0 and took >= 2, (code, took)


def _served_then_idle_http1(port: int, requests: int) -> socket.socket:
    """A keep-alive HTTP/1.1 connection that carried `requests` requests and now sits idle."""
    sock = socket.create_connection((HOST, port), timeout=10)
    for _ in range(requests):
        sock.sendall(b'GET /pid HTTP/1.1\r\nHost: x\r\n\r\n')
        answer = b''
        while b'\r\n\r\n' not in answer or not answer.split(b'\r\n\r\n', 1)[1]:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b'HTTP/1.1 200'), answer
    return sock


def _served_then_idle_http2(port: int, requests: int) -> tuple[socket.socket, h2.connection.H2Connection]:
    """An HTTP/2 connection (prior knowledge) that carried `requests` streams and now sits idle."""
    sock = socket.create_connection((HOST, port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    for _ in range(requests):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(':method', 'GET'), (':path', '/pid'), (':scheme', 'http'), (':authority', 'x')],
                          end_stream=True)  # fmt: skip
        sock.sendall(conn.data_to_send())
        ended = False
        while not ended:
            data = sock.recv(65536)
            assert data
            for event in conn.receive_data(data):
                ended = ended or (isinstance(event, h2.events.StreamEnded) and event.stream_id == stream)
            sock.sendall(conn.data_to_send())
    return sock, conn


GOAWAY = 0x7


def _frame_types_until_goaway(sock: socket.socket) -> list[int]:
    """The types of the HTTP/2 frames read up to the first GOAWAY (or the end of the stream)."""
    buffer, types = b'', []
    while True:
        while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], 'big'):
            types.append(buffer[3])
            if buffer[3] == GOAWAY:
                return types
            buffer = buffer[9 + int.from_bytes(buffer[:3], 'big') :]
        data = sock.recv(65536)
        if not data:
            return types
        buffer += data


def test_idle_connections_that_served_requests_are_closed_at_once_on_stop(rsgi_apps_dir: Path):
    """A stopping worker closes its idle keep-alive connections (HTTP/1.1) and sends GOAWAY on its
    idle HTTP/2 ones right away, however many requests each carried before (each one wakes the
    connection, and the stop must still be heard after many wake-ups)."""
    with RunningServer(APP, working_dir=rsgi_apps_dir) as server:
        http1 = [_served_then_idle_http1(server.port, requests) for requests in (1, 50, 200)]
        http2 = [_served_then_idle_http2(server.port, requests) for requests in (1, 50)]
        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        for sock in http1:
            sock.settimeout(5)
            assert sock.recv(4096) == b'', 'an idle HTTP/1.1 connection got bytes instead of its close'
        for sock, _ in http2:
            sock.settimeout(5)
            assert _frame_types_until_goaway(sock)[-1] == GOAWAY, 'an idle HTTP/2 connection closed without GOAWAY'
        closed = time.monotonic() - began
        # A client told to go away with no stream open leaves.
        for sock in [*http1, *(sock for sock, _ in http2)]:
            sock.close()
        code = server.wait(20)
    assert code == 0 and closed < 3, (code, closed)


def test_drain_timeout_lets_quick_requests_finish_and_closes_slow_ones(rsgi_apps_dir: Path, tmp_path: Path):
    outcomes: dict[int, object] = {}

    def request(index: int, seconds: float) -> None:
        marker = tmp_path / f'started-{index}'
        try:
            response = httpx.get(server.url(f'/sleep?seconds={seconds}&marker={marker}'), timeout=60)
            outcomes[index] = response.status_code
        except httpx.HTTPError as exc:
            outcomes[index] = type(exc).__name__

    args = ['--workers-drain-timeout', '3']
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=args) as server:
        # 100 requests in flight: half take 2 s, half 40 s.
        threads = [threading.Thread(target=request, args=(i, 2 if i % 2 else 40), daemon=True) for i in range(100)]
        for thread in threads:
            thread.start()
        assert wait_until(lambda: len(list(tmp_path.glob('started-*'))) == 100, 20), server.output
        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait(30)
        took = time.monotonic() - began
        for thread in threads:
            thread.join(10)
        output = server.output
    quick = [outcomes.get(i) for i in range(1, 100, 2)]
    slow = [outcomes.get(i) for i in range(0, 100, 2)]
    assert quick == [200] * 50, quick
    assert 200 not in slow and None not in slow, slow
    assert code == 0 and took < 15, (code, took, output)
    assert 'drain timeout' in output and 'closing 50 connection(s)' in output, output


def test_reload_keeps_the_old_worker_for_the_respawn_interval(rsgi_apps_dir: Path):
    # The old worker keeps accepting on the shared socket until it stops, so the first request that
    # reaches the new one may come late on a busy machine: an interval of 5 s against a required
    # overlap of 2 s leaves 3 s for that, and an ignored interval (overlap near 0) still fails.
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=['--respawn-interval', '5']) as server:
        (old,) = collect_worker_pids(server, want=1)
        server.send_signal(signal.SIGHUP)
        new_seen: list[float] = []

        def new_worker_answers() -> bool:
            pid = int(httpx.get(server.url('/pid'), headers={'connection': 'close'}, timeout=10).text)
            if pid != old:
                new_seen.append(time.monotonic())
            return bool(new_seen)

        assert wait_until(new_worker_answers, 20), server.output
        assert wait_until(lambda: not _alive(old), 20), 'the old worker never stopped'
        overlap = time.monotonic() - new_seen[0]
    assert overlap >= 2.0, f'the old worker stopped {overlap:.1f} s after its replacement served'


# -- pid file --------------------------------------------------------------------------------------


def test_pid_file_holds_the_server_pid_and_goes_with_it(rsgi_apps_dir: Path, tmp_path: Path):
    pid_file = tmp_path / 'granian.pid'
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=['--pid-file', str(pid_file)]) as server:
        assert server.proc is not None
        assert pid_file.read_text().strip() == str(server.proc.pid)
        assert server.stop() == 0
    assert not pid_file.exists()


def test_sigterm_as_soon_as_the_port_accepts_is_a_graceful_stop(tmp_path: Path):
    """The socket accepts connections (the kernel queues them) before any worker serves; a stop
    signal from then on (a supervisor probing the port, then stopping) ends the server cleanly."""
    (tmp_path / 'slow_start.py').write_text(
        textwrap.dedent(
            """
            import time

            time.sleep(2)  # a slow import: the worker is not serving yet


            async def app(scope, protocol):
                protocol.response_str(200, [], 'ok')
            """
        )
    )
    pid_file = tmp_path / 'granian.pid'
    server = RunningServer('slow_start:app', working_dir=tmp_path, extra_args=['--pid-file', str(pid_file)])
    with server:
        assert server.proc is not None
        assert pid_file.exists()
        started = time.monotonic()
        assert server.stop() == 0, server.output
        assert time.monotonic() - started < 15
    assert not pid_file.exists()
    assert 'Traceback' not in server.output


def test_a_stale_pid_file_is_replaced(rsgi_apps_dir: Path, tmp_path: Path):
    pid_file = tmp_path / 'granian.pid'
    pid_file.write_text(f'{_dead_pid()}\n')
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=['--pid-file', str(pid_file)]) as server:
        assert server.proc is not None
        assert pid_file.read_text().strip() == str(server.proc.pid)


def test_a_pid_file_of_a_running_process_refuses_to_start(rsgi_apps_dir: Path, tmp_path: Path):
    pid_file = tmp_path / 'granian.pid'
    pid_file.write_text(f'{os.getpid()}\n')
    port = free_port()
    args = ['--interface', 'rsgi', '--host', HOST, '--port', str(port), '--pid-file', str(pid_file)]
    result = run_granian([*args, '--working-dir', str(rsgi_apps_dir), APP])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    lines = [line for line in output.splitlines() if str(pid_file) in line]
    assert len(lines) == 1 and f'names process {os.getpid()}, which is running' in lines[0], output
    assert 'Traceback' not in output
    assert pid_file.read_text().strip() == str(os.getpid()), 'the other process keeps its pid file'


def test_an_unwritable_pid_file_refuses_to_start(rsgi_apps_dir: Path, tmp_path: Path):
    pid_file = tmp_path / 'no-such-directory' / 'granian.pid'
    args = ['--interface', 'rsgi', '--host', HOST, '--port', str(free_port()), '--pid-file', str(pid_file)]
    result = run_granian([*args, '--working-dir', str(rsgi_apps_dir), APP])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f'cannot write pid file {pid_file}' in output and 'Traceback' not in output


# -- a script serving at module level ------------------------------------------------------------


@contextlib.contextmanager
def serving_script(tmp_path: Path, source: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Runs `python serve.py` (the dedented `source`) in a session of its own; yields the process and its
    log file, and kills whatever is left when the block ends."""
    script, log = tmp_path / 'serve.py', tmp_path / 'serve.log'
    script.write_text(textwrap.dedent(source))
    with log.open('wb') as output:
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=server_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _answers(server: RunningServer) -> bool:
    try:
        return httpx.get(server.url('/pid'), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_script_without_a_main_guard_serves_with_two_workers(rsgi_apps_dir: Path, tmp_path: Path):
    port = free_port()
    source = f"""
        from granian import Granian

        Granian(
            {APP!r}, interface='rsgi', address={HOST!r}, port={port}, workers=2, working_dir={str(rsgi_apps_dir)!r}
        ).serve()
        """
    with serving_script(tmp_path, source) as (proc, log):
        server = RunningServer(APP, port=port)
        assert wait_until(lambda: _answers(server), 30), log.read_text()
        assert len(collect_worker_pids(server, want=2)) == 2, log.read_text()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    output = log.read_text()
    assert code == 0, output
    assert 'Address already in use' not in output


# -- recycling -------------------------------------------------------------------------------------


class SteadyClient:
    """Requests /pid on new connections one after another until stopped; records pids and failures."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.pids: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10, headers={'connection': 'close'}) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(self.server.url('/pid'))
                    self.pids.append(int(response.text))
                except (httpx.HTTPError, ValueError) as exc:
                    self.failures.append(repr(exc))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


@contextlib.contextmanager
def steady_client(server: RunningServer) -> Iterator[SteadyClient]:
    """A SteadyClient running for the duration of the block."""
    client = SteadyClient(server)
    client.start()
    try:
        yield client
    finally:
        client.stop()


def _limits(output: str) -> list[int]:
    return [int(found) for found in re.findall(r'worker-1 received \d+ requests \(limit (\d+)\)', output)]


def test_max_requests_recycles_workers_without_failed_requests(rsgi_apps_dir: Path):
    args = ['--workers-max-requests', '50', '--respawn-interval', '0']
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=args) as server, steady_client(server) as client:
        assert wait_until(lambda: len(set(client.pids)) >= 4, 60), (len(client.pids), server.output)
        output = server.output
    assert not client.failures, client.failures[:5]
    assert _limits(output)[:3] == [50, 50, 50], output
    # Each replaced worker served its 50 requests, and those that arrived while its replacement started.
    counts = collections.Counter(client.pids)
    replaced = list(dict.fromkeys(client.pids))[:-1]
    assert all(counts[pid] >= 50 for pid in replaced), [counts[pid] for pid in replaced]


def test_max_requests_jitter_spreads_the_limits(rsgi_apps_dir: Path):
    args = ['--workers-max-requests', '20', '--workers-max-requests-jitter', '300', '--respawn-interval', '0']
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=args) as server, steady_client(server):
        assert wait_until(lambda: len(_limits(server.output)) >= 3, 90), server.output
        limits = _limits(server.output)
    assert all(20 <= limit <= 320 for limit in limits), limits
    assert len(set(limits)) > 1, f'every worker drew the same limit: {limits}'


@pytest.mark.timeout(180)
def test_lifetime_with_jitter_replaces_workers_one_at_a_time(rsgi_apps_dir: Path):
    args = ['--workers', '2', '--workers-lifetime', '60', '--workers-lifetime-jitter', '15', '--respawn-interval', '1']
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=args) as server, steady_client(server) as client:
        began = time.monotonic()
        pattern = r'will be replaced in ([\d.]+) s'
        assert wait_until(lambda: len(re.findall(pattern, server.output)) >= 2, 30), server.output
        due = [float(found) for found in re.findall(pattern, server.output)[:2]]
        assert len(due) == 2 and all(59 <= value <= 75 for value in due), (due, server.output)
        replaced: dict[str, float] = {}

        def both_replaced() -> bool:
            for index in re.findall(r'worker-(\d) reached its lifetime', server.output):
                replaced.setdefault(index, time.monotonic() - began)
            return len(replaced) == 2

        assert wait_until(both_replaced, 100, interval=0.2), server.output
    assert not client.failures, client.failures[:5]
    for index, moment in replaced.items():
        assert abs(moment - due[int(index) - 1]) < 4, (replaced, due)


def test_workers_max_rss_replaces_a_worker_over_the_limit():
    args = ['--workers-max-rss', '120', '--rss-sample-interval', '1', '--rss-samples', '2', '--respawn-interval', '0']
    with RunningServer('hungry_app:app', working_dir=APPS_DIR, extra_args=args) as server:
        (before,) = collect_worker_pids(server, want=1)
        time.sleep(3)  # three readings under the limit: nothing happens
        assert collect_worker_pids(server, want=1) == {before}
        assert httpx.get(server.url('/grow?150'), timeout=30).status_code == 200
        assert wait_until(lambda: collect_worker_pids(server, want=1, timeout=2) != {before}, 20), server.output
        output = server.output
    assert 'worker-1 used more than 120 MiB in 2 reading(s) in a row; replacing it' in output, output


# -- environment files and process titles ---------------------------------------------------------


def _env(server: RunningServer, name: str) -> str:
    return httpx.get(server.url(f'/?{name}'), headers={'connection': 'close'}, timeout=10).text


def test_env_files_reach_the_app_and_are_read_again_on_reload(tmp_path: Path):
    first, second = tmp_path / 'base.env', tmp_path / 'local.env'
    first.write_text('GREETING=hello\nPRESET=from-file\nLAYERED=base\n')
    second.write_text('LAYERED=local\n')
    args = ['--env-files', str(first), '--env-files', str(second), '--respawn-interval', '0']
    env = {'PRESET': 'from-environment'}
    with RunningServer('env_app:app', working_dir=APPS_DIR, extra_args=args, env=env) as server:
        assert _env(server, 'GREETING') == 'hello'
        assert _env(server, 'PRESET') == 'from-environment', 'the environment wins over the files'
        assert _env(server, 'LAYERED') == 'local', 'a later file wins over an earlier one'
        first.write_text('GREETING=changed\nPRESET=from-file\nLAYERED=base\n')
        server.send_signal(signal.SIGHUP)
        assert wait_until(lambda: _env(server, 'GREETING') == 'changed', 20), server.output
        assert _env(server, 'PRESET') == 'from-environment'


def test_an_unreadable_env_file_stops_the_start_with_one_line(tmp_path: Path):
    missing = tmp_path / 'missing.env'
    args = ['--interface', 'rsgi', '--host', HOST, '--port', str(free_port()), '--env-files', str(missing)]
    result = run_granian([*args, '--working-dir', str(APPS_DIR), 'env_app:app'])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f'cannot read env file {missing}: No such file or directory' in output and 'Traceback' not in output


@pytest.mark.parametrize(
    ('module', 'option', 'extra'),
    [
        ('dotenv', '--env-files', 'dotenv'),
        ('setproctitle', '--process-name', 'pname'),
        ('watchfiles', '--reload', 'reload'),
    ],
    ids=['env-files', 'process-name', 'reload'],
)
def test_an_option_without_its_package_names_the_extra(tmp_path: Path, module: str, option: str, extra: str):
    blocker = tmp_path / 'blocker' / module
    blocker.mkdir(parents=True)
    (blocker / '__init__.py').write_text(f'raise ImportError("{module} is not installed")\n')
    env_file = tmp_path / 'app.env'
    env_file.write_text('A=1\n')
    values = {'--env-files': [str(env_file)], '--process-name': ['shop-api'], '--reload': []}[option]
    args = ['--interface', 'rsgi', '--host', HOST, '--port', str(free_port()), option, *values]
    result = run_granian(
        [*args, '--working-dir', str(APPS_DIR), 'env_app:app'], env={'PYTHONPATH': str(blocker.parent)}
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f'pip install granian-core[{extra}]' in output and 'Traceback' not in output


def test_process_name_titles_the_supervisor_and_workers():
    with RunningServer('env_app:app', working_dir=APPS_DIR, extra_args=['--process-name', 'shop-api']) as server:
        assert server.proc is not None
        pid = server.proc.pid
        # The supervisor titles itself once its socket is bound, which is when the port starts answering: wait.
        assert wait_until(lambda: command_line(pid) == 'shop-api', 10), command_line(pid)
        assert wait_until(lambda: 'shop-api worker-1' in _child_titles(pid), 20), _child_titles(pid)


def test_default_titles_name_interface_address_and_target():
    with RunningServer('env_app:app', working_dir=APPS_DIR) as server:
        assert server.proc is not None
        title = f'granian rsgi {HOST}:{server.port} env_app:app'
        pid = server.proc.pid
        # The title names the bound address, so it is set once the port already answers: wait for it.
        assert wait_until(lambda: command_line(pid) == title, 10), command_line(pid)
        assert wait_until(lambda: f'{title} worker-1' in _child_titles(pid), 20), _child_titles(pid)


def _child_titles(pid: int) -> list[str]:
    return [command_line(child) for child in child_pids(pid)]


def test_hooks_run_in_the_supervisor_in_order(rsgi_apps_dir: Path, tmp_path: Path):
    port = free_port()
    record = tmp_path / 'hooks.log'
    source = f"""
        import os
        from granian import Granian

        server = Granian(
            {APP!r}, address={HOST!r}, port={port}, working_dir={str(rsgi_apps_dir)!r}, respawn_interval=0
        )

        def note(event):
            with open({str(record)!r}, 'a') as file:
                file.write(f'{{event}} {{os.getpid()}}\\n')

        server.on_startup(lambda: note('startup'))
        server.on_reload(lambda: note('reload'))
        server.on_shutdown(lambda: note('shutdown'))
        server.serve()
        """
    with serving_script(tmp_path, source) as (proc, log):
        server = RunningServer(APP, port=port)
        assert wait_until(lambda: _answers(server), 30), log.read_text()
        first = collect_worker_pids(server, want=1)
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: collect_worker_pids(server, want=1, timeout=2) != first, 30), log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    events = [line.split() for line in record.read_text().splitlines()]
    assert [event for event, _ in events] == ['startup', 'reload', 'shutdown'], events
    assert {int(pid) for _, pid in events} == {proc.pid}, 'hooks run in the supervisor'


# -- reload ----------------------------------------------------------------------------------------

RELOAD_APP = """
import os

VERSION = {version!r}


async def app(scope, proto):
    if scope.path == '/exit':
        os._exit(1)
    proto.response_str(200, [], VERSION)
"""


def _write_app(directory: Path, version: str, source: str = RELOAD_APP) -> None:
    (directory / 'reload_app.py').write_text(source.format(version=version))


def _version(server: RunningServer) -> str | None:
    try:
        return httpx.get(server.url('/'), headers={'connection': 'close'}, timeout=5).text
    except httpx.HTTPError:
        return None


def _reload_server(directory: Path, *extra: str) -> RunningServer:
    args = ['--reload', '--reload-paths', str(directory), '--respawn-interval', '0', *extra]
    return RunningServer('reload_app:app', working_dir=directory, extra_args=args)


def test_reload_serves_the_changed_code_without_failed_requests(tmp_path: Path):
    _write_app(tmp_path, 'v1')
    with _reload_server(tmp_path) as server:
        assert server.wait_for_output('Watching', 20), server.output
        assert _version(server) == 'v1'
        answers: list[str | None] = []
        stop = threading.Event()

        def steady() -> None:
            while not stop.is_set():
                answers.append(_version(server))

        client = threading.Thread(target=steady, daemon=True)
        client.start()
        time.sleep(0.5)
        _write_app(tmp_path, 'v2')
        try:
            assert wait_until(lambda: answers and answers[-1] == 'v2', 30), server.output
        finally:
            stop.set()
            client.join(10)
        output = server.output
    assert None not in answers, f'{answers.count(None)} failed requests during the reload'
    assert 'reload_app.py changed' in output, output


def test_reload_keeps_the_running_worker_when_the_new_code_fails(tmp_path: Path):
    _write_app(tmp_path, 'v1')
    with _reload_server(tmp_path) as server:
        assert server.wait_for_output('Watching', 20), server.output
        (tmp_path / 'reload_app.py').write_text('this is not python\n')
        assert server.wait_for_output('Replacement for worker-1 failed to start; keeping the running one', 30)
        assert _version(server) == 'v1'
        _write_app(tmp_path, 'v3')
        assert wait_until(lambda: _version(server) == 'v3', 30), server.output


def test_reload_ignores_what_it_is_told_to(tmp_path: Path):
    _write_app(tmp_path, 'v1')
    (tmp_path / 'logs').mkdir()
    with _reload_server(tmp_path, '--reload-ignore-patterns', r'.*\.log$', '--reload-ignore-dirs', 'logs') as server:
        assert server.wait_for_output('Watching', 20), server.output
        (tmp_path / 'server.log').write_text('noise')
        (tmp_path / 'logs' / 'data.txt').write_text('noise')
        time.sleep(3)  # longer than watchfiles' debounce
        assert 'Reloading workers' not in server.output
        _write_app(tmp_path, 'v2')
        assert wait_until(lambda: _version(server) == 'v2', 30), server.output


def test_reload_ignore_worker_failure_waits_for_the_next_change(tmp_path: Path):
    _write_app(tmp_path, 'v1')
    with _reload_server(tmp_path, '--reload-ignore-worker-failure') as server:
        assert server.wait_for_output('Watching', 20), server.output
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url('/exit'), timeout=5)
        assert server.wait_for_output('worker-1 is started again at the next change', 10), server.output
        assert server.proc is not None and server.proc.poll() is None
        _write_app(tmp_path, 'v2')
        assert wait_until(lambda: _version(server) == 'v2', 30), server.output


# -- how workers start -----------------------------------------------------------------------------

VERSIONED_APP = """
import os

VERSION = {version!r}


async def app(scope, proto):
    body = str(os.getpid()) if scope.path == '/pid' else VERSION
    proto.response_str(200, [], body)
"""

#: A forked worker shares the supervisor's interpreter, core and interface module: about 12 MiB of
#: written pages. A spawned worker shares almost none (tens of KiB).
FORKED_SHARED_KIB = 4096
SPAWNED_SHARED_KIB = 1024


def test_workers_are_forks_that_share_the_supervisors_memory(rsgi_apps_dir: Path):
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=['--workers', '2']) as server:
        workers = collect_worker_pids(server, want=2)
        assert len(workers) == 2
        shared = {pid: shared_dirty_kib(pid) for pid in workers}
    assert all(kib >= FORKED_SHARED_KIB for kib in shared.values()), shared


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, exited but not yet reaped, is not)."""
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != 'Z'


def test_workers_stop_when_their_supervisor_is_killed(rsgi_apps_dir: Path):
    """An orphaned worker would serve on with the old code and hold the port a restarted server needs."""
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=['--workers', '2']) as server:
        assert server.proc is not None
        workers = collect_worker_pids(server, want=2)
        assert len(workers) == 2
        server.proc.kill()
        stopped = wait_until(lambda: not any(_running(pid) for pid in workers), 20)
        left = [pid for pid in workers if _running(pid)]
    assert stopped, f'workers {left} still run after their supervisor was killed'
    with pytest.raises(OSError):
        socket.create_connection((HOST, server.port), timeout=2).close()


def test_a_forked_worker_keeps_no_socket_of_the_supervisor_but_the_listener(rsgi_apps_dir: Path):
    with RunningServer(APP, working_dir=rsgi_apps_dir) as server:
        assert server.proc is not None
        worker = worker_pid(server)
        common = socket_inodes(server.proc.pid) & socket_inodes(worker)
        listener = listening_socket_inode(server.port)
    assert common == {listener}, 'the worker holds the supervisor wake-up sockets'


def test_sighup_gives_forked_workers_the_changed_code(tmp_path: Path):
    (tmp_path / 'versioned_app.py').write_text(VERSIONED_APP.format(version='v1'))
    args = ['--respawn-interval', '0']
    with RunningServer('versioned_app:app', working_dir=tmp_path, extra_args=args) as server:
        assert _version(server) == 'v1'
        (tmp_path / 'versioned_app.py').write_text(VERSIONED_APP.format(version='v2'))
        server.send_signal(signal.SIGHUP)
        assert wait_until(lambda: _version(server) == 'v2', 30), server.output
        assert shared_dirty_kib(worker_pid(server)) >= FORKED_SHARED_KIB


def test_a_script_that_imported_its_app_spawns_workers_that_load_changed_code(tmp_path: Path):
    """A fork would keep the supervisor's copy of the app, and SIGHUP would serve the old code."""
    (tmp_path / 'versioned_app.py').write_text(VERSIONED_APP.format(version='v1'))
    port = free_port()
    source = f"""
        import versioned_app  # the supervisor imports the app itself
        from granian import Granian

        if __name__ == '__main__':
            Granian(
                'versioned_app:app', interface='rsgi', address={HOST!r}, port={port}, respawn_interval=0,
                working_dir={str(tmp_path)!r},
            ).serve()
        """
    with serving_script(tmp_path, source) as (proc, log):
        server = RunningServer('versioned_app:app', port=port)
        assert wait_until(lambda: _version(server) == 'v1', 30), log.read_text()
        worker = int(httpx.get(server.url('/pid'), timeout=5).text)
        assert shared_dirty_kib(worker) < SPAWNED_SHARED_KIB
        (tmp_path / 'versioned_app.py').write_text(VERSIONED_APP.format(version='v2'))
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: _version(server) == 'v2', 30), log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
