"""HTTP/1 and HTTP/2 settings observed from outside: raw sockets for HTTP/1, the `h2` library for the
frames of HTTP/2 (the server's SETTINGS, window updates, pings, limits)."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest
from hyperframe.frame import DataFrame

from tests_support.rawhttp import read_response
from tests_support.sockets import received

APPS_DIR = Path(__file__).parent / 'apps'
TARGET = 'tls_app:rsgi'  # answers every request at once with a small JSON body
FLOW_TARGET = 'flow_app:rsgi'  # uploads, a long stream and how much of it the app could hand over


def _serve(server_factory, *args: str, target: str = TARGET):
    return server_factory(target, working_dir=APPS_DIR, extra_args=list(args))


def _read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    data = b''
    for chunk in received(sock, lambda: time.monotonic() < deadline, poll=0.2):
        if not chunk:
            return data, True
        data += chunk
    return data, False


# -- HTTP/1 -------------------------------------------------------------------------------------


def test_header_read_timeout_cuts_off_slow_headers_and_others_are_served(server_factory):
    server = _serve(server_factory, '--http1-header-read-timeout', '1000')
    slow = []
    for _ in range(200):
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ')  # headers never finished
        slow.append(sock)
    try:
        began = time.monotonic()
        assert httpx.get(server.url('/'), timeout=5).status_code == 200
        assert time.monotonic() - began < 1.0, 'a well-behaved client waited behind slow ones'
        with ThreadPoolExecutor(max_workers=16) as pool:
            outcomes = list(pool.map(lambda sock: _read_until_closed(sock, 6.0)[1], slow))
        assert all(outcomes), f'{outcomes.count(False)} slow connections were still open after 6 s'
    finally:
        for sock in slow:
            sock.close()


def test_headers_within_the_timeout_are_served(server_factory):
    server = _serve(server_factory, '--http1-header-read-timeout', '3000')
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n')
        time.sleep(1.0)
        sock.sendall(b'\r\n')
        data = sock.recv(65536)
    assert data.startswith(b'HTTP/1.1 200')


def test_header_read_timeout_runs_while_waiting_for_a_head_not_while_answering(server_factory):
    """As in hyper: the timeout runs from when a connection waits for a request head (a new one, or
    one between keep-alive requests) until the head is complete, never while a request is answered."""
    server = _serve(server_factory, '--http1-header-read-timeout', '1000')
    with socket.create_connection((server.host, server.port), timeout=10) as silent:
        data, closed = _read_until_closed(silent, 6.0)
    assert (data, closed) == (b'', True), 'a connection that never sent a head was left open'
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        reader = sock.makefile('rb')
        # Answered after 1.5 s, longer than the timeout: the answer still comes, and the connection
        # takes another request.
        sock.sendall(b'GET /?pause=1.5 HTTP/1.1\r\nHost: x\r\n\r\n')
        assert read_response(reader).status == 200
        time.sleep(0.5)
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        assert read_response(reader).status == 200
        # Idle between requests for longer than the timeout: closed without an answer.
        began = time.monotonic()
        data, closed = _read_until_closed(sock, 6.0)
        assert (data, closed) == (b'', True), 'an idle keep-alive connection was left open'
        assert time.monotonic() - began > 0.5, 'closed before the timeout'


def test_keep_alive_off_closes_after_each_response(server_factory):
    server = _serve(server_factory, '--no-http1-keep-alive')
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        data, closed = _read_until_closed(sock, 5.0)
    assert data.startswith(b'HTTP/1.1 200')
    assert b'connection: close' in data.lower()
    assert closed


def test_keep_alive_on_serves_requests_on_one_connection(server_factory):
    server = _serve(server_factory)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            assert sock.recv(65536).startswith(b'HTTP/1.1 200')


def _big_header_status(server, size: int) -> int | None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * size + b'\r\n\r\n')
        data, _ = _read_until_closed(sock, 3.0)
    return int(data.split(b' ', 2)[1]) if data.startswith(b'HTTP/1.1 ') else None


def test_buffer_size_bounds_the_request_head(server_factory):
    small = _serve(server_factory, '--http1-buffer-size', '8192')
    assert _big_header_status(small, 4000) == 200
    assert _big_header_status(small, 16_000) == 431
    default = _serve(server_factory)
    assert _big_header_status(default, 16_000) == 200


@pytest.mark.parametrize('flush', [False, True], ids=['no-pipeline-flush', 'pipeline-flush'])
def test_pipelined_requests_are_answered_in_order(server_factory, flush):
    args = ['--http1-pipeline-flush'] if flush else []
    server = _serve(server_factory, *args)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b''.join(b'GET /%d HTTP/1.1\r\nHost: x\r\n\r\n' % i for i in range(5)))
        data = b''
        deadline = time.monotonic() + 5
        while data.count(b'HTTP/1.1 200') < 5 and time.monotonic() < deadline:
            data += sock.recv(65536)
    assert data.count(b'HTTP/1.1 200') == 5


@pytest.mark.parametrize(('flush', 'together'), [(False, 1), (True, 2)], ids=['no-pipeline-flush', 'pipeline-flush'])
def test_pipeline_flush_holds_responses_while_pipelined_requests_wait(server_factory, flush, together):
    """With --http1-pipeline-flush a response is written once no pipelined request is left unread, so
    the first two of three slow pipelined requests arrive in one write; without it each is written
    as soon as it is ready (0.3 s apart)."""
    server = _serve(server_factory, *(['--http1-pipeline-flush'] if flush else []))
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b''.join(b'GET /%d?pause HTTP/1.1\r\nHost: x\r\n\r\n' % i for i in range(3)))
        first = sock.recv(65536)
        rest = b''
        deadline = time.monotonic() + 5
        while (first + rest).count(b'HTTP/1.1 200') < 3 and time.monotonic() < deadline:
            rest += sock.recv(65536)
    assert first.count(b'HTTP/1.1 200') == together
    assert (first + rest).count(b'HTTP/1.1 200') == 3


# -- HTTP/2 -------------------------------------------------------------------------------------


class H2Client:
    """An HTTP/2 prior-knowledge client over a raw socket, with the events it has seen."""

    def __init__(self, server, window: int | None = None, receive_buffer: int | None = None) -> None:
        """`window`: the client's stream and connection windows; `receive_buffer`: SO_RCVBUF."""
        self.sock = socket.socket()
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect((server.host, server.port))
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
            self.conn.increment_flow_control_window(window - self.conn.inbound_flow_control_window)
        self.sock.sendall(self.conn.data_to_send())
        self.events: list[h2.events.Event] = []
        self.closed = False

    def pump(self, seconds: float, until=None) -> None:
        """Reads and records events for up to `seconds`, or until `until(event)` is true."""
        deadline = time.monotonic() + seconds
        for data in received(self.sock, lambda: time.monotonic() < deadline and not self.closed):
            if not data:
                self.closed = True
                return
            events = self.conn.receive_data(data)
            self.events.extend(events)
            outgoing = self.conn.data_to_send()
            if outgoing:
                self.sock.sendall(outgoing)
            if until is not None and any(until(event) for event in events):
                return

    def settings(self) -> dict[int, int]:
        self.pump(5, lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        for event in self.events:
            if isinstance(event, h2.events.RemoteSettingsChanged):
                return {code: change.new_value for code, change in event.changed_settings.items()}
        raise AssertionError(f'no SETTINGS from the server: {self.events}')

    def get(self, path: str = '/', headers: list[tuple[str, str]] | None = None) -> int:
        stream = self.conn.get_next_available_stream_id()
        request = [(':method', 'GET'), (':path', path), (':scheme', 'http'), (':authority', 'x'), *(headers or [])]
        self.conn.send_headers(stream, request, end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        return stream

    def upload(self, path: str, size: int) -> int:
        """POSTs `size` bytes as flow control allows; the stream id."""
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [(':method', 'POST'), (':path', path), (':scheme', 'http'), (':authority', 'x')])
        remaining = size
        deadline = time.monotonic() + 30
        while remaining and time.monotonic() < deadline:
            room = min(self.conn.local_flow_control_window(stream), self.conn.max_outbound_frame_size, remaining)
            if room == 0:
                self.pump(1, lambda e: isinstance(e, h2.events.WindowUpdated))
                continue
            self.conn.send_data(stream, b'x' * room)
            remaining -= room
            self.sock.sendall(self.conn.data_to_send())
        self.conn.end_stream(stream)
        self.sock.sendall(self.conn.data_to_send())
        self.pump(10, lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == stream)
        return stream

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def h2_client_factory():
    clients: list[H2Client] = []

    def make(server) -> H2Client:
        client = H2Client(server)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_settings_frame_carries_the_configured_values(server_factory, h2_client_factory):
    server = _serve(
        server_factory,
        '--http2-max-concurrent-streams', '12',
        '--http2-initial-stream-window-size', '100000',
        '--http2-initial-connection-window-size', '3000000',
        '--http2-max-frame-size', '32768',
        '--http2-max-headers-size', '20000',
        '--no-http2-adaptive-window',
    )  # fmt: skip
    client = h2_client_factory(server)
    settings = client.settings()
    codes = h2.settings.SettingCodes
    assert settings[codes.MAX_CONCURRENT_STREAMS] == 12
    assert settings[codes.INITIAL_WINDOW_SIZE] == 100000
    assert settings[codes.MAX_FRAME_SIZE] == 32768
    assert settings[codes.MAX_HEADER_LIST_SIZE] == 20000
    client.pump(2, lambda e: isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0)
    grants = [e.delta for e in client.events if isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0]
    assert grants and 65535 + grants[0] == 3000000, grants


def test_max_concurrent_streams_is_enforced(server_factory, h2_client_factory):
    server = _serve(server_factory, '--http2-max-concurrent-streams', '10')
    client = h2_client_factory(server)
    client.settings()
    # Lift the h2 library's own limit so the client can break the server's.
    client.conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 100
    client.conn.remote_settings.acknowledge()
    streams = []
    for _ in range(14):
        stream = client.conn.get_next_available_stream_id()
        headers = [(':method', 'POST'), (':path', '/'), (':scheme', 'http'), (':authority', 'x')]
        client.conn.send_headers(stream, headers, end_stream=False)  # bodies never finished: streams stay open
        streams.append(stream)
    client.sock.sendall(client.conn.data_to_send())
    client.pump(3)
    refused = {
        e.stream_id
        for e in client.events
        if isinstance(e, h2.events.StreamReset) and e.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
    }
    answered = {e.stream_id for e in client.events if isinstance(e, h2.events.ResponseReceived)}
    assert refused, 'streams beyond the limit were accepted'
    assert refused <= set(streams[10:]), (refused, streams)
    assert set(streams[:10]) <= answered


def test_a_frame_over_max_frame_size_is_a_connection_error(server_factory, h2_client_factory):
    server = _serve(server_factory, '--http2-max-frame-size', '16384')
    client = h2_client_factory(server)
    client.settings()
    stream = client.conn.get_next_available_stream_id()
    headers = [(':method', 'POST'), (':path', '/'), (':scheme', 'http'), (':authority', 'x')]
    client.conn.send_headers(stream, headers)
    client.sock.sendall(client.conn.data_to_send())
    # A DATA frame of 20,000 bytes, written by hand: the h2 library would split it.
    oversized = DataFrame(stream, data=b'x' * 20000)
    client.sock.sendall(oversized.serialize())
    client.pump(5, lambda e: isinstance(e, h2.events.ConnectionTerminated))
    ended = [e for e in client.events if isinstance(e, h2.events.ConnectionTerminated)]
    assert ended and ended[0].error_code == h2.errors.ErrorCodes.FRAME_SIZE_ERROR, client.events


def test_a_header_list_over_the_limit_is_refused(server_factory, h2_client_factory):
    server = _serve(server_factory, '--http2-max-headers-size', '4096')
    client = h2_client_factory(server)
    client.settings()
    stream = client.get('/', [('x-big', 'a' * 8000)])
    client.pump(5, lambda e: isinstance(e, (h2.events.ResponseReceived, h2.events.StreamReset)))
    answers = [e for e in client.events if getattr(e, 'stream_id', None) == stream]
    statuses = [dict(e.headers).get(b':status') for e in answers if isinstance(e, h2.events.ResponseReceived)]
    assert statuses == [b'431'] or any(isinstance(e, h2.events.StreamReset) for e in answers), answers
    ok = client.get('/')
    client.pump(5, lambda e: isinstance(e, h2.events.ResponseReceived) and e.stream_id == ok)
    assert any(isinstance(e, h2.events.ResponseReceived) and e.stream_id == ok for e in client.events)


def test_keep_alive_pings_and_drops_a_silent_peer(server_factory):
    server = _serve(server_factory, '--http2-keep-alive-interval', '300', '--http2-keep-alive-timeout', '1')
    # A peer that answers pings stays connected.
    lively = H2Client(server)
    try:
        lively.pump(2.5)
        assert any(isinstance(e, h2.events.PingReceived) for e in lively.events)
        assert not lively.closed
    finally:
        lively.close()
    # A peer that never reads (so never answers) is dropped after interval + timeout.
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        time.sleep(3.0)
        _, closed = _read_until_closed(sock, 3.0)
    assert closed, 'a peer that never answered pings was kept'


def test_http2_without_keep_alive_pings_sends_none(server_factory, h2_client_factory):
    client = h2_client_factory(_serve(server_factory))
    client.pump(1.5)
    assert not any(isinstance(e, h2.events.PingReceived) for e in client.events)


def _pings_during_upload(server_factory, *args: str) -> tuple[list, bytes]:
    client = H2Client(_serve(server_factory, *args, target=FLOW_TARGET))
    try:
        client.settings()
        stream = client.upload('/upload', 8 * 1024 * 1024)
        body = b''.join(
            e.data for e in client.events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream
        )
        return [e for e in client.events if isinstance(e, h2.events.PingReceived)], body
    finally:
        client.close()


def test_adaptive_window_probes_the_bandwidth_delay_product(server_factory):
    pings, body = _pings_during_upload(server_factory, '--http2-adaptive-window')
    assert body == str(8 * 1024 * 1024).encode()
    assert pings, 'an adaptive window measures round trips with PINGs while data arrives'


def test_fixed_window_sends_no_pings_during_an_upload(server_factory):
    pings, body = _pings_during_upload(server_factory, '--no-http2-adaptive-window')
    assert body == str(8 * 1024 * 1024).encode()
    assert not pings


def _handed_over_to_a_client_that_stops_reading(server_factory, send_buffer: int) -> int:
    """How much of a stream the app could send to a client that opened huge windows and then read
    nothing: the socket buffers (small here) plus the stream's send buffer plus the server's queue."""
    server = _serve(server_factory, '--http2-max-send-buffer-size', str(send_buffer), target=FLOW_TARGET)
    client = H2Client(server, window=2**31 - 1, receive_buffer=4096)
    try:
        client.settings()
        client.get('/stream')
        time.sleep(2.0)
        return int(httpx.get(server.url('/sent'), timeout=10).text)
    finally:
        client.close()


def test_max_send_buffer_bounds_what_waits_for_a_slow_reader(server_factory):
    small = _handed_over_to_a_client_that_stops_reading(server_factory, 16 * 1024)
    large = _handed_over_to_a_client_that_stops_reading(server_factory, 16 * 1024 * 1024)
    # The socket buffers and the queue are the same in both runs: the difference is the send buffer.
    assert 12 * 1024 * 1024 < large - small < 20 * 1024 * 1024, (small, large)
