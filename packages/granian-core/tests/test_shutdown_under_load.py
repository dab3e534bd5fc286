"""SIGTERM with steady clients, for each interface: every request the server accepted is answered.

Clients open a new connection per request, and others reuse keep-alive connections, while the server
is told to stop. A request that could not connect (the listener is closed) was never accepted and is
not a failure; a request sent on a new connection that got no answer is, including connections the
kernel completed but no worker had taken yet (the workers serve those before they close the socket).

Two races remain, both before the server read the request, and both bounded here: a connection the
kernel completes in the microseconds between the last worker's final look at the listen queue and
its close is reset by the kernel (at most once per client: its next attempt is refused); and on a
keep-alive connection that sat idle, the request racing the server's close goes unread, as RFC 9112
(9.3.1) allows (clients retry it on a new connection). The server exits 0.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from tests_support.rawhttp import read_response
from tests_support.server import RunningServer

APPS_DIR = Path(__file__).parent / 'apps'
FRESH_CLIENTS = 4
KEEP_ALIVE_CLIENTS = 2


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answered = 0
        self.refused = 0
        self.failures: list[str] = []
        #: Requests on an idle keep-alive connection closed unread by the stopping server, or on a new
        #: connection reset in the listen queue when the socket closed: never read by the server.
        self.unread = 0

    def add(self, outcome: str) -> None:
        with self.lock:
            if outcome == 'answered':
                self.answered += 1
            elif outcome == 'refused':
                self.refused += 1
            elif outcome == 'unread':
                self.unread += 1
            else:
                self.failures.append(outcome)


def one_request(sock: socket.socket) -> str:
    sock.sendall(b'GET /headers HTTP/1.1\r\nHost: x\r\n\r\n')
    with sock.makefile('rb') as reader:
        response = read_response(reader)
    if response.status != 200:
        return f'status {response.status}'
    return 'closing' if (response.header('connection') or '').lower() == 'close' else 'answered'


def open_connection(port: int, stop_sent: threading.Event, tally: Tally) -> socket.socket | None:
    """A new connection, or None (counted as refused) when the server no longer listens.

    A connect that is reset rather than refused is a handshake the kernel had begun for the
    listening socket as the supervisor closed it: refused too, once the stop was sent.
    """
    try:
        return socket.create_connection(('127.0.0.1', port), timeout=10)
    except (ConnectionRefusedError, ConnectionResetError) as exc:
        if isinstance(exc, ConnectionResetError) and not stop_sent.is_set():
            raise
        tally.add('refused')
        time.sleep(0.01)
        return None


def fresh_client(port: int, stop: threading.Event, stop_sent: threading.Event, tally: Tally) -> None:
    while not stop.is_set():
        sock = open_connection(port, stop_sent, tally)
        if sock is None:
            continue
        with sock:
            try:
                outcome = one_request(sock)
            except ConnectionResetError as exc:
                outcome = 'unread' if stop_sent.is_set() else f'fresh connection: {exc!r}'
            except (OSError, ValueError) as exc:
                outcome = f'fresh connection: {exc!r}'
        tally.add('answered' if outcome == 'closing' else outcome)


def keep_alive_client(port: int, stop: threading.Event, stop_sent: threading.Event, tally: Tally) -> None:
    sock = None
    while not stop.is_set():
        if sock is None:
            sock = open_connection(port, stop_sent, tally)
            if sock is None:
                continue
        try:
            outcome = one_request(sock)
        except ConnectionError as exc:
            # No byte of an answer came: the server closed the idle connection as the request left.
            unanswered = isinstance(exc, ConnectionResetError) or 'without sending a response' in str(exc)
            outcome = 'unread' if unanswered and stop_sent.is_set() else f'keep-alive connection: {exc!r}'
        except (OSError, ValueError) as exc:
            outcome = f'keep-alive connection: {exc!r}'
        if outcome == 'closing':
            # The server said this answer was the connection's last: the client opens a new one.
            tally.add('answered')
            sock.close()
            sock = None
            continue
        tally.add(outcome)
        if outcome != 'answered':
            sock.close()
            sock = None
            if outcome == 'unread':
                # A client retries such a request on a new connection, which the stopped server refuses.
                continue
    if sock is not None:
        sock.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize('interface', ['rsgi', 'asgi', 'wsgi'])
def test_sigterm_under_load_answers_every_accepted_request(interface):
    tally = Tally()
    stop = threading.Event()
    stop_sent = threading.Event()
    server = RunningServer(
        f'semantics_app:{interface}', working_dir=APPS_DIR, interface=interface, extra_args=['--workers', '2']
    )
    with server:
        clients = [
            threading.Thread(target=fresh_client, args=(server.port, stop, stop_sent, tally))
            for _ in range(FRESH_CLIENTS)
        ]
        clients += [
            threading.Thread(target=keep_alive_client, args=(server.port, stop, stop_sent, tally))
            for _ in range(KEEP_ALIVE_CLIENTS)
        ]
        for client in clients:
            client.start()
        time.sleep(1.5)
        with tally.lock:
            before = tally.answered
        stop_sent.set()
        server.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=30)
        # Keep knocking a little after the exit: every attempt must now be refused, not hang.
        time.sleep(0.3)
        stop.set()
        for client in clients:
            client.join(15)
        output = server.output
    assert before > 50, f'the clients made no progress before SIGTERM:\n{output}'
    assert not tally.failures, f'{len(tally.failures)} accepted requests failed: {tally.failures[:5]}\n{output}'
    assert tally.unread <= FRESH_CLIENTS + KEEP_ALIVE_CLIENTS, f'{tally.unread} requests went unread'
    assert tally.refused > 0, 'no attempt after the stop was refused: did the clients run past it?'
    assert code == 0, output
