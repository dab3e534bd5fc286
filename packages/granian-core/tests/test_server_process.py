"""Server process behaviour seen from outside: workers, graceful stop, graceful reload, startup failures."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from tests_support.server import HOST, RunningServer, free_port, run_granian
from tests_support.waiting import wait_until

APP = 'rsgi_app:app'
LIFECYCLE_APP = 'rsgi_app:lifecycle_app'


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


def test_two_workers_both_serve(rsgi_apps_dir: Path):
    with RunningServer(APP, working_dir=rsgi_apps_dir, extra_args=['--workers', '2']) as server:
        pids = collect_worker_pids(server, want=2)
        assert len(pids) == 2, f'only worker pids {pids} answered; output:\n{server.output}'
        assert server.proc.pid not in pids, 'requests must be served by worker processes, not the supervisor'


def test_rsgi_del_runs_in_every_worker_on_stop(rsgi_apps_dir: Path, tmp_path: Path):
    marker = tmp_path / 'rsgi-del.jsonl'
    server = RunningServer(
        LIFECYCLE_APP, working_dir=rsgi_apps_dir, extra_args=['--workers', '2'], env={'RSGI_DEL_MARKER': str(marker)}
    )
    with server:
        pids = collect_worker_pids(server, want=2)
        assert len(pids) == 2, f'only worker pids {pids} answered; output:\n{server.output}'
        assert server.stop() == 0, server.output
        output = server.output
    assert marker.exists(), f'__rsgi_del__ did not run; server output:\n{output}'
    records = [json.loads(line) for line in marker.read_text().splitlines()]
    assert sorted(record['pid'] for record in records) == sorted(pids)
    assert all(record['same_loop_as_init'] for record in records), records


def test_sigterm_lets_in_flight_request_finish_then_exits_0(rsgi_apps_dir: Path, tmp_path: Path):
    started = tmp_path / 'sleep-started'
    result: dict[str, object] = {}
    with RunningServer(APP, working_dir=rsgi_apps_dir) as server:

        def slow_request() -> None:
            try:
                response = httpx.get(server.url(f'/sleep?seconds=2&marker={quote(str(started))}'), timeout=20)
                result.update(status=response.status_code, body=response.text)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                result.update(error=repr(exc))

        thread = threading.Thread(target=slow_request, daemon=True)
        thread.start()
        assert wait_until(started.exists, 10), f'the slow request never reached the app; output:\n{server.output}'
        server.send_signal(signal.SIGTERM)
        thread.join(20)
        assert not thread.is_alive(), 'the in-flight request did not finish within 20 s of SIGTERM'
        code = server.wait(20)
        output = server.output
        leftovers = server.leftover_processes
    assert result == {'status': 200, 'body': 'slept'}, f'{result}; output:\n{output}'
    assert code == 0, f'exit code {code}; output:\n{output}'
    assert not leftovers, 'worker processes outlived the supervisor'


def test_sighup_replaces_workers_without_failed_requests(rsgi_apps_dir: Path):
    failures: list[str] = []
    pids_before: set[int] = set()
    pids_after: list[int] = []

    def request_pid() -> int | None:
        try:
            status, body = get_fresh_connection(server.port, '/pid', timeout=10)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f'{time.monotonic() - t_hup:+.2f}s {exc!r}')
            return None
        if status != 200:
            failures.append(f'{time.monotonic() - t_hup:+.2f}s status {status}: {body[:100]}')
            return None
        return int(body)

    with RunningServer(APP, working_dir=rsgi_apps_dir) as server:
        t_hup = time.monotonic() + 1.0
        while time.monotonic() < t_hup:
            pid = request_pid()
            if pid is not None:
                pids_before.add(pid)
        assert pids_before, f'no request succeeded before SIGHUP; output:\n{server.output}'
        server.send_signal(signal.SIGHUP)

        def replaced() -> bool:
            # Done when the last 20 answers all came from new workers and the loop ran at least 4 s.
            recent = pids_after[-20:]
            return time.monotonic() - t_hup >= 4.0 and len(recent) == 20 and not pids_before.intersection(recent)

        deadline = t_hup + 25.0
        while not replaced() and time.monotonic() < deadline:
            pid = request_pid()
            if pid is not None:
                pids_after.append(pid)
        output = server.output
        still_running = server.proc.poll() is None

    assert not failures, f'{len(failures)} requests failed around SIGHUP: {failures[:10]}; output:\n{output}'
    assert still_running, f'the server exited after SIGHUP; output:\n{output}'
    assert replaced(), (
        f'workers were not replaced within 25 s of SIGHUP: before {pids_before}, '
        f'last answers {pids_after[-20:]}; output:\n{output}'
    )


def test_unimportable_app_exits_1_with_one_line_error(tmp_path: Path):
    result = run_granian(
        ['--interface', 'rsgi', '--host', HOST, '--port', str(free_port()), 'nosuchmodule:app'], cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, f'exit code {result.returncode}; output:\n{output}'
    naming = [line for line in output.splitlines() if 'nosuchmodule:app' in line]
    assert naming, f'no line names the target nosuchmodule:app; output:\n{output}'
    assert 'Traceback' not in output, f'a user error should be one line, not a traceback; output:\n{output}'
