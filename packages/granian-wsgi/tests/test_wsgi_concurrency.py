"""Blocking threads: long streams do not starve short requests, and the app runs at most N requests at once.

Every WSGI call runs on one of the worker's `--blocking-threads`; `--backpressure` bounds how many requests are
handed to Python at once.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests_support.rawhttp import connect, get_request, read_response
from tests_support.waiting import wait_until

LONG_STREAMS = 3
SHORT_REQUESTS = 20
# 20 chunks of 32 KiB, one every 0.2 s: each long stream lasts about 4 s.
SLOW_STREAM = 'count=20&size=32768&delay=0.2'
STREAM_BYTES = 20 * 32768 + len(b'END')
SHORT_REQUEST_LIMIT = 2.0


@pytest.fixture(scope='module')
def bounded_server(start_wsgi_app):
    return start_wsgi_app('--blocking-threads', '2', '--backpressure', '2')


@pytest.fixture(scope='module')
def wide_server(start_wsgi_app):
    return start_wsgi_app('--blocking-threads', '8')


def read_slowly(port: int, path: str) -> bytes:
    """GET `path` over HTTP/1.1 and read the response 8 KiB at a time with pauses, like a slow client."""
    with connect(port, timeout=30) as sock:
        sock.sendall(f'GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'.encode('latin-1'))
        received = bytearray()
        while True:
            data = sock.recv(8192)
            if not data:
                break
            received += data
            time.sleep(0.02)
    response = read_response(io.BytesIO(bytes(received)))
    assert response.status == 200, response
    return response.body


def timed_get(server, http_version: str) -> float:
    """One short GET on a new connection; return how long it took."""
    http2 = http_version == '2'
    began = time.monotonic()
    with httpx.Client(http1=not http2, http2=http2, timeout=30) as client:
        response = client.get(server.url('/hello'))
    elapsed = time.monotonic() - began
    assert (response.status_code, response.text) == (200, 'hello')
    return elapsed


def test_short_requests_are_not_starved_by_long_streams(wsgi_server, http_version: str, tmp_path: Path):
    # wsgi_server has 4 blocking threads: three are busy with the long streams, short requests need the fourth.
    markers = [tmp_path / f'stream-{index}.started' for index in range(LONG_STREAMS)]
    with ThreadPoolExecutor(LONG_STREAMS + 4) as pool:
        streams = [
            pool.submit(read_slowly, wsgi_server.port, f'/slow-stream?{SLOW_STREAM}&started={quote(str(marker))}')
            for marker in markers
        ]
        assert wait_until(lambda: all(marker.exists() for marker in markers), 10), 'the long streams did not start'
        streams_began = time.monotonic()
        short = [pool.submit(timed_get, wsgi_server, http_version) for _ in range(SHORT_REQUESTS)]
        durations = [future.result(timeout=60) for future in short]
        short_done = time.monotonic() - streams_began
        bodies = [future.result(timeout=60) for future in streams]
        streams_done = time.monotonic() - streams_began
    slowest = max(durations)
    assert slowest < SHORT_REQUEST_LIMIT, (
        f'short requests waited behind the long streams: slowest {slowest:.2f} s, all {sorted(durations)}'
    )
    assert short_done < streams_done, 'the short requests finished only after the long streams'
    for body in bodies:
        assert len(body) == STREAM_BYTES and body.endswith(b'END'), len(body)


def peak_concurrency(server, requests: int, seconds: float = 0.5) -> int:
    """Send `requests` concurrent /sleep requests (each on its own connection); return the app's peak concurrency."""
    group = uuid.uuid4().hex
    barrier = threading.Barrier(requests)

    def sleep_request() -> int:
        barrier.wait(timeout=10)
        with httpx.Client(timeout=30) as client:
            return client.get(server.url(f'/sleep?seconds={seconds}&group={group}')).status_code

    with ThreadPoolExecutor(requests) as pool:
        futures = [pool.submit(sleep_request) for _ in range(requests)]
        statuses = [future.result(timeout=60) for future in futures]
    assert statuses == [200] * requests, statuses
    with httpx.Client(timeout=30) as client:
        document = client.get(server.url(f'/peak?group={group}')).json()
    assert document['in_app'] == 0
    return document['peak']


def test_blocking_threads_and_backpressure_bound_concurrency(bounded_server):
    assert peak_concurrency(bounded_server, 6) == 2


def test_more_blocking_threads_run_more_requests_at_once(wide_server):
    peak = peak_concurrency(wide_server, 6)
    assert peak > 2, f'with --blocking-threads 8, only {peak} of 6 sleeping requests ran at once'


@pytest.fixture(scope='module')
def single_thread_server(start_wsgi_app):
    return start_wsgi_app('--blocking-threads', '1')


def test_answered_requests_do_not_wait_behind_a_body_that_has_not_arrived(single_thread_server):
    # A blocking thread that finds more work queued runs it before handing the responses it made to tokio (they
    # go in batches). When the next request's app waits for a body that has not arrived, the responses it holds
    # must leave first: a client that is slow to send its body must not hold up other clients' answers.
    port = single_thread_server.port
    with connect(port, timeout=15) as busy, connect(port, timeout=15) as answered, connect(port, timeout=15) as upload:
        busy.sendall(get_request('/sleep?seconds=1.5&group=held-batch'))
        time.sleep(0.3)  # the only thread is in /sleep; the next two requests queue behind it, in this order
        answered.sendall(get_request('/hello'))
        time.sleep(0.3)
        upload.sendall(b'POST /digest HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n')
        # The thread finishes /sleep, answers /hello, then waits in /digest for a body still unsent.
        for sock, body in ((busy, b'slept'), (answered, b'hello')):
            response = read_response(sock.makefile('rb'))
            assert (response.status, response.body) == (200, body)
        upload.sendall(b'12345')
        response = read_response(upload.makefile('rb'))
    assert response.status == 200
    assert json.loads(response.body)['length'] == 5


def test_answered_requests_do_not_wait_behind_a_slow_app(single_thread_server):
    # Same batching, but the next app takes long (a sleep standing for a database query): the responses the
    # thread holds are handed over while it runs, not after.
    port = single_thread_server.port
    with connect(port, timeout=15) as busy, connect(port, timeout=15) as answered, connect(port, timeout=15) as slow:
        busy.sendall(get_request('/sleep?seconds=1&group=held-slow'))
        time.sleep(0.3)
        answered.sendall(get_request('/hello'))
        time.sleep(0.3)
        slow.sendall(get_request('/sleep?seconds=4&group=held-slow'))
        for sock, body in ((busy, b'slept'), (answered, b'hello')):
            response = read_response(sock.makefile('rb'))
            assert (response.status, response.body) == (200, body)
        # Both arrived while the thread is still in the 4 s sleep, which has not answered yet.
        slow.setblocking(False)
        with pytest.raises(BlockingIOError):
            slow.recv(1)
        slow.setblocking(True)
        response = read_response(slow.makefile('rb'))
    assert (response.status, response.body) == (200, b'slept')
