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

from tests_support.server import HOST, RunningServer, collect_worker_pids, free_port, get_fresh_connection, run_granian
from tests_support.waiting import wait_until

APP = 'rsgi_app:app'
LIFECYCLE_APP = 'rsgi_app:lifecycle_app'
SIGHUP_CLIENTS = 4


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
    # Several clients, each opening a new connection per request, keep connections arriving at every
    # moment of the replacement, including the instant the old worker stops accepting.
    failures: list[tuple[float, str]] = []
    answers: list[tuple[float, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    with RunningServer(APP, working_dir=rsgi_apps_dir) as server:
        start = time.monotonic()

        def client_loop() -> None:
            while not stop.is_set():
                sent_at = time.monotonic() - start
                try:
                    status, body = get_fresh_connection(server.port, '/pid', timeout=10)
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        failures.append((sent_at, repr(exc)))
                    continue
                with lock:
                    if status == 200:
                        answers.append((sent_at, int(body)))
                    else:
                        failures.append((sent_at, f'status {status}: {body[:100]}'))

        threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(SIGHUP_CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        with lock:
            pids_before = {pid for _, pid in answers}
        hup_at = time.monotonic() - start
        server.send_signal(signal.SIGHUP)

        def replaced() -> bool:
            # Done when the last answers all came from new workers and the clients ran 4 s past SIGHUP.
            with lock:
                recent = [pid for _, pid in answers[-40:]]
            return time.monotonic() - start - hup_at >= 4.0 and len(recent) == 40 and not pids_before & set(recent)

        was_replaced = wait_until(replaced, 25.0, interval=0.1)
        stop.set()
        for thread in threads:
            thread.join(15)
        clients_stuck = sum(thread.is_alive() for thread in threads)
        output = server.output
        still_running = server.proc.poll() is None

    assert pids_before, f'no request succeeded before SIGHUP; output:\n{output}'
    report = [f'{sent_at - hup_at:+.3f}s after SIGHUP: {error}' for sent_at, error in failures]
    assert not failures, (
        f'{len(failures)} of {len(answers) + len(failures)} requests failed: {report[:10]}; output:\n{output}'
    )
    assert not clients_stuck, f'{clients_stuck} client threads did not finish'
    assert still_running, f'the server exited after SIGHUP; output:\n{output}'
    assert was_replaced, (
        f'workers were not replaced within 25 s of SIGHUP: before {pids_before}, '
        f'last answers {[pid for _, pid in answers[-40:]]}; output:\n{output}'
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
