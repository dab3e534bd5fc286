"""Apps that fail in the worst ways, for each interface (apps/fault_app.py): a worker that segfaults or calls
os._exit in a request is respawned while the other worker serves, and the log names the exit; requests that
never get an answer leave a single worker serving others; an async app blocking its event loop holds up only
the requests of its own worker."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from tests_support.server import RunningServer, collect_worker_pids, get_fresh_connection
from tests_support.waiting import wait_until

APPS_DIR = Path(__file__).parent / 'apps'
INTERFACES = ['rsgi', 'asgi', 'wsgi']
# A stop must not wait for the requests that hang on purpose.
KILL_TIMEOUT = ['--workers-kill-timeout', '2']
BLOCK_SECONDS = 3.0


def start(server_factory, interface: str, *args: str) -> RunningServer:
    return server_factory(
        f'fault_app:{interface}_app', working_dir=APPS_DIR, interface=interface, extra_args=[*KILL_TIMEOUT, *args]
    )


@pytest.fixture(scope='module', params=INTERFACES)
def respawning_server(request: pytest.FixtureRequest, server_factory) -> RunningServer:
    return start(server_factory, request.param, '--workers', '2', '--respawn-failed-workers', '--respawn-interval', '0')


@pytest.fixture(scope='module', params=INTERFACES)
def single_worker_server(request: pytest.FixtureRequest, server_factory) -> RunningServer:
    threads = ['--blocking-threads', '8'] if request.param == 'wsgi' else []
    return start(server_factory, request.param, '--workers', '1', *threads)


@pytest.fixture(scope='module', params=['rsgi', 'asgi'])
def two_async_workers(request: pytest.FixtureRequest, server_factory) -> RunningServer:
    return start(server_factory, request.param, '--workers', '2')


def wait_for_marker(marker: Path, timeout: float = 10.0) -> int:
    """The pid an app wrote to `marker`."""
    assert wait_until(marker.exists, timeout), f'the app never wrote {marker}'
    return int(marker.read_text())


# -- 1, 2. a worker dying in a request -------------------------------------------------------------


@pytest.mark.parametrize(
    ('path', 'how'),
    [('/segv', r'killed by SIGSEGV \(signal 11\)'), ('/exit', 'with code 3')],
    ids=['segfault', 'os-exit'],
)
def test_a_worker_dying_in_a_request_is_respawned_while_the_other_serves(respawning_server, path, how):
    server = respawning_server
    before = collect_worker_pids(server, want=2)
    assert len(before) == 2, server.output
    respawns = server.output.count('Respawned worker-')
    with pytest.raises(ConnectionError):
        get_fresh_connection(server.port, path)
    # Until the replacement is up, every request is answered, by the surviving worker.
    answers: list[tuple[int, str]] = []
    deadline = time.monotonic() + 20
    while server.output.count('Respawned worker-') == respawns and time.monotonic() < deadline:
        answers.append(get_fresh_connection(server.port, '/ok'))
    output = server.output
    exits = re.findall(rf'worker-\d \(pid (\d+)\) exited unexpectedly {how}$', output, re.MULTILINE)
    assert exits, output
    victim = int(exits[-1])
    assert victim in before, (victim, before, output)
    (survivor,) = before - {victim}
    assert output.count('Respawned worker-') == respawns + 1, output
    assert answers and all(status == 200 for status, _ in answers), answers[:5]
    pids = [int(body) for _, body in answers]
    assert pids[0] == survivor and victim not in pids, (survivor, victim, set(pids))
    after = collect_worker_pids(server, want=2)
    assert len(after) == 2 and survivor in after and victim not in after, (before, after, output)
    (replacement,) = after - {survivor}
    assert re.search(rf'Respawned worker-\d \(pid {replacement}\)$', output, re.MULTILINE), output
    assert server.proc is not None and server.proc.poll() is None


def test_a_worker_that_dies_while_a_child_it_forked_lives_is_respawned(respawning_server):
    """An app that forks (a process pool with the fork start method) leaves its children every
    descriptor of the worker, the end of the pipe the supervisor watches too: the worker's death is
    noticed all the same."""
    server = respawning_server
    before = collect_worker_pids(server, want=2)
    assert len(before) == 2, server.output
    respawns = server.output.count('Respawned worker-')
    exited = server.output.count('exited unexpectedly with code 3')
    # The forked child holds the request's connection too: no answer comes, and none is awaited.
    with contextlib.suppress(OSError):
        get_fresh_connection(server.port, '/fork-exit', timeout=2)
    assert wait_until(lambda: server.output.count('Respawned worker-') > respawns, 10), server.output
    assert server.output.count('exited unexpectedly with code 3') == exited + 1, server.output
    assert len(collect_worker_pids(server, want=2)) == 2, server.output


# -- 3. requests that never get an answer ----------------------------------------------------------


class RawRequest:
    """A GET sent over a socket of its own, its answer read only when asked for."""

    def __init__(self, server: RunningServer, path: str) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.sock.sendall(f'GET {path} HTTP/1.1\r\nHost: {server.host}\r\n\r\n'.encode())

    def answer(self, timeout: float) -> bytes | None:
        """What the server sent within `timeout` seconds (b'' if it closed), None if nothing."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()


def test_a_single_worker_serves_others_while_requests_hang_and_after_their_clients_give_up(
    single_worker_server, tmp_path
):
    server = single_worker_server
    hanging = []
    try:
        for index in range(5):
            client = RawRequest(server, f'/hang?{tmp_path / f"hang-{index}"}')
            hanging.append(client)
        for index in range(5):
            wait_for_marker(tmp_path / f'hang-{index}')
        # Five handlers are stuck in the app: the worker still answers at once.
        started = time.monotonic()
        assert get_fresh_connection(server.port, '/ok', timeout=5)[0] == 200
        assert time.monotonic() - started < 2
        assert all(client.answer(timeout=0.2) is None for client in hanging), 'a /hang request was answered'
    finally:
        for client in hanging:
            client.close()
    # The clients gave up: the worker serves as before.
    for _ in range(5):
        started = time.monotonic()
        assert get_fresh_connection(server.port, '/ok', timeout=5)[0] == 200
        assert time.monotonic() - started < 2


# -- 4. an async app blocking its event loop -------------------------------------------------------


def test_a_blocked_event_loop_holds_up_only_its_own_worker(two_async_workers, tmp_path):
    server = two_async_workers
    pids = collect_worker_pids(server, want=2)
    assert len(pids) == 2, server.output
    marker = tmp_path / 'blocked'
    block_answer: dict[str, object] = {}

    def block() -> None:
        began = time.monotonic()
        block_answer['answer'] = get_fresh_connection(server.port, f'/block?{marker}', timeout=20)
        block_answer['took'] = time.monotonic() - began

    blocker = threading.Thread(target=block, daemon=True)
    blocker.start()
    blocked = wait_for_marker(marker)
    block_began = time.monotonic()
    (other,) = pids - {blocked}

    # New connections, each from a thread of its own, until one reaches the other worker: those that reach
    # the blocked one wait for the block to end without holding up the next.
    answers: list[tuple[int, float]] = []

    def ask() -> None:
        status, body = get_fresh_connection(server.port, '/ok', timeout=20)
        assert status == 200
        answers.append((int(body), time.monotonic() - block_began))

    askers = []
    while time.monotonic() - block_began < BLOCK_SECONDS - 0.5 and not any(pid == other for pid, _ in answers):
        askers.append(threading.Thread(target=ask, daemon=True))
        askers[-1].start()
        time.sleep(0.05)
    for asker in askers:
        asker.join(20)
    blocker.join(20)

    assert not any(asker.is_alive() for asker in askers) and len(answers) == len(askers), answers
    from_other = [moment for pid, moment in answers if pid == other]
    from_blocked = [moment for pid, moment in answers if pid == blocked]
    assert from_other and min(from_other) < BLOCK_SECONDS - 0.5, (
        'the other worker did not answer during the block',
        answers,
    )
    assert all(moment > BLOCK_SECONDS - 0.5 for moment in from_blocked), answers
    # The blocked worker answers once the block is over.
    assert block_answer.get('answer') == (200, str(blocked)), block_answer
    # The server said so while it lasted, and again when it ended (the probe of loopwatch.rs). The probe runs as
    # a job queued behind the blocked one, so its line can come after the blocked request's answer: wait for it.
    server.wait_for_output('the event loop ran again after', timeout=5)
    output = server.output
    stalled = re.search(r'the event loop has not run for (\d+\.\d) s: the app is blocking it', output)
    assert stalled, output
    assert 1.0 <= float(stalled.group(1)) < BLOCK_SECONDS, output
    ran_again = re.search(r'the event loop ran again after (\d+\.\d) s', output)
    assert ran_again, output
    assert BLOCK_SECONDS - 0.5 <= float(ran_again.group(1)) < BLOCK_SECONDS + 1.5, output
    assert BLOCK_SECONDS - 0.1 <= block_answer['took'] < BLOCK_SECONDS + 3, block_answer
    assert blocked in collect_worker_pids(server, want=2)
