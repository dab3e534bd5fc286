"""Slow and greedy HTTP/1.1 clients, for each interface: bodies trickled a byte at a time, a client
that never reads a large response, and 10,000 idle keep-alive connections. While they hold on, other
clients are answered at once, and the worker's memory stays bounded.

(200 slowloris connections and HTTP/2 readers that stop reading are in test_http_settings.py.)
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests_support.processes import rss_bytes, worker_pid
from tests_support.rawhttp import connect

APPS_DIR = Path(__file__).parent / 'apps'
MIB = 1024 * 1024
IDLE_CONNECTIONS = 10_000


@pytest.fixture(scope='module', params=['rsgi', 'asgi', 'wsgi'])
def server(request, server_factory):
    interface = request.param
    # WSGI apps hold a blocking thread while they wait for a trickled body: allow enough of them.
    threads = ['--blocking-threads', '64'] if interface == 'wsgi' else []
    return server_factory(
        f'semantics_app:{interface}',
        working_dir=APPS_DIR,
        interface=interface,
        extra_args=['--workers', '1', '--backpressure', '12000', *threads],
    )


def answered_quickly(server, limit: float = 1.0) -> float:
    started = time.monotonic()
    response = httpx.get(server.url('/headers'), timeout=10)
    took = time.monotonic() - started
    assert response.status_code == 200
    assert took < limit, f'a normal request took {took:.2f} s'
    return took


def test_bodies_trickled_a_byte_at_a_time_hold_up_no_one_else(server):
    stop = threading.Event()
    socks = []
    for _ in range(50):
        sock = connect(server.port)
        sock.sendall(b'POST /whole HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n')
        socks.append(sock)

    def trickle() -> None:
        while not stop.is_set():
            for sock in socks:
                try:
                    sock.sendall(b'x')
                except OSError:
                    pass
            stop.wait(0.05)

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    try:
        time.sleep(0.5)
        for _ in range(5):
            answered_quickly(server)
    finally:
        stop.set()
        feeder.join(5)
        for sock in socks:
            sock.close()
    answered_quickly(server)


def test_a_client_that_never_reads_a_large_response_holds_only_its_own_request(server):
    pid = worker_pid(server)
    before = rss_bytes(pid)
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        # 256 MiB are on offer; the client reads none of it.
        sock.sendall(b'GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
        time.sleep(1.5)
        grown = rss_bytes(pid) - before
        answered_quickly(server)
        assert grown < 64 * MIB, f'the worker buffered {grown / MIB:.0f} MiB for a client that reads nothing'
    finally:
        sock.close()
    answered_quickly(server)


def test_ten_thousand_idle_keep_alive_connections(server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < IDLE_CONNECTIONS + 2000:
        pytest.skip(f'the descriptor limit ({hard}) is below what the test needs')
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    pid = worker_pid(server)
    before = rss_bytes(pid)
    socks: list[socket.socket] = []
    try:
        request = b'GET /headers HTTP/1.1\r\nHost: x\r\n\r\n'
        for _ in range(IDLE_CONNECTIONS):
            sock = socket.create_connection(('127.0.0.1', server.port), timeout=10)
            sock.sendall(request)
            socks.append(sock)
        # Every connection got its answer and stays open (keep-alive), idle.
        for sock in socks:
            assert sock.recv(4096).startswith(b'HTTP/1.1 200 ')
        grown = rss_bytes(pid) - before
        answered_quickly(server)
        # About 25 KiB each here (hyper's buffers, mostly; granian 2.8.1: 22 KiB): 40 KiB is the bound.
        assert grown < IDLE_CONNECTIONS * 40 * 1024, f'{IDLE_CONNECTIONS} idle connections cost {grown / MIB:.0f} MiB'
    finally:
        for sock in socks:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    answered_quickly(server)
