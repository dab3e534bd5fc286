"""Hostile WebSocket clients against the RSGI and ASGI echo apps: a frame header declaring a huge payload,
floods of empty continuation frames and of fragments over --ws-max-size, ping floods from a client that
reads and from one that never reads, and invalid close frames (RFC 6455 section 7.4 codes, a 1-byte
payload, a reason that is not UTF-8), over HTTP/1.1 and, for close codes and the huge header, HTTP/2."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from tests_support.processes import rss_mib, worker_pid
from tests_support.server import RunningServer
from tests_support.websocket import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    Frame,
    Http2WebSocket,
    RawWebSocket,
    close_payload,
    encode_frame,
)

PACKAGES = Path(__file__).resolve().parents[2]
APPS = {
    'rsgi': ('rsgi_ws_app:app', PACKAGES / 'granian-rsgi' / 'tests' / 'apps'),
    'asgi': ('asgi_ws_app:app', PACKAGES / 'granian-asgi' / 'tests' / 'apps'),
}
MAX_SIZE = 65536
CONTINUATION = 0x0


@pytest.fixture(scope='module', params=sorted(APPS))
def ws_server(request: pytest.FixtureRequest, server_factory) -> RunningServer:
    target, apps_dir = APPS[request.param]
    return server_factory(
        target, working_dir=apps_dir, interface=request.param, extra_args=['--ws-max-size', str(MAX_SIZE)]
    )


# -- helpers ---------------------------------------------------------------------------------------


def echo_round_trip(server: RunningServer, payload: bytes = b'still here') -> float:
    """Echo one text message on a new WebSocket; return the seconds it took."""
    started = time.monotonic()
    with RawWebSocket(server.host, server.port, '/echo') as ws:
        assert ws.status == 101
        ws.send(TEXT, payload)
        frame = ws.receive(timeout=5)
        assert frame is not None and (frame.opcode, frame.payload) == (TEXT, payload), frame
    return time.monotonic() - started


def frames_until_eof(ws: RawWebSocket | Http2WebSocket, timeout: float = 5.0) -> list[Frame]:
    """Every frame the server sends until it ends the connection (the stream over HTTP/2), bounded in time."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        frame = ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if frame is None:
            return frames
        frames.append(frame)


def assert_closed_with(ws: RawWebSocket | Http2WebSocket, code: int, timeout: float = 5.0) -> list[Frame]:
    """The server's first frame is a close with `code`, and it then ends the connection; returns all frames."""
    frames = frames_until_eof(ws, timeout)
    assert frames, 'the server ended the connection without a close frame'
    assert frames[0].opcode == CLOSE and frames[0].close_code == code, frames
    # Nothing follows a close frame (RFC 6455, 5.5.1).
    assert len(frames) == 1, frames
    return frames


def send_ignoring_close(ws: RawWebSocket, data: bytes) -> bool:
    """Send `data`; False when the server had already closed the connection."""
    try:
        ws.send_raw(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def huge_header(length: int) -> bytes:
    """The masked header of a binary frame declaring a 64-bit payload `length` (no payload follows)."""
    return bytes([0x80 | BINARY, 0x80 | 127]) + struct.pack('!Q', length) + os.urandom(4)


# -- 1. a frame header declaring a huge payload ----------------------------------------------------


@pytest.mark.parametrize('length', [2**62, 2**64 - 1], ids=['2**62', '2**64-1'])
def test_a_huge_declared_length_closes_with_1009_without_waiting_for_the_payload(ws_server, length):
    worker = worker_pid(ws_server)
    before = rss_mib(worker)
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        assert ws.status == 101
        started = time.monotonic()
        ws.send_raw(huge_header(length))
        first = ws.receive(timeout=2)
        assert first is not None and first.opcode == CLOSE and first.close_code == 1009, first
        assert time.monotonic() - started < 2
        ws.pending.insert(0, first)
        assert_closed_with(ws, 1009)
    assert rss_mib(worker) - before < 32, 'the worker allocated memory for the declared payload'
    assert echo_round_trip(ws_server) < 2


def test_a_huge_declared_length_over_http2_closes_with_1009(ws_server):
    ws = Http2WebSocket(ws_server.host, ws_server.port, '/echo')
    try:
        assert ws.status == 200
        ws.conn.send_data(ws.stream_id, huge_header(2**62))
        ws.sock.sendall(ws.conn.data_to_send())
        assert_closed_with(ws, 1009)
    finally:
        ws.close()
    assert echo_round_trip(ws_server) < 2


# -- 2. endless fragments --------------------------------------------------------------------------


@pytest.mark.parametrize('opcode', [TEXT, BINARY], ids=['text', 'binary'])
def test_20000_empty_continuations_are_echoed_as_one_empty_message(ws_server, opcode):
    continuations = encode_frame(CONTINUATION, b'', fin=False) * 5000
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(opcode, b'', fin=False)
        for _ in range(4):
            ws.send_raw(continuations)
            # Others are served while the flood is in progress.
            assert echo_round_trip(ws_server) < 2
        ws.send(CONTINUATION, b'', fin=True)
        frame = ws.receive(timeout=10)
        assert frame is not None and (frame.opcode, frame.payload, frame.fin) == (opcode, b'', True), frame
        # The connection is still usable afterwards.
        ws.send(TEXT, b'after the fragments')
        frame = ws.receive(timeout=5)
        assert frame is not None and frame.payload == b'after the fragments', frame
    assert echo_round_trip(ws_server) < 2


def test_two_fragments_over_the_max_size_close_with_1009(ws_server):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(BINARY, b'a' * (MAX_SIZE // 2 + 10), fin=False)
        send_ignoring_close(ws, encode_frame(CONTINUATION, b'b' * (MAX_SIZE // 2), fin=False))
        assert_closed_with(ws, 1009)
    assert echo_round_trip(ws_server) < 2


def test_one_byte_fragments_adding_up_over_the_max_size_close_with_1009(ws_server):
    continuations = encode_frame(CONTINUATION, b'x', fin=False) * 5000
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(TEXT, b'x', fin=False)
        for _ in range(MAX_SIZE // 5000 + 1):
            if not send_ignoring_close(ws, continuations):
                break
        assert_closed_with(ws, 1009)
    assert echo_round_trip(ws_server) < 2


# -- 3. ping floods --------------------------------------------------------------------------------


def test_a_ping_flood_from_a_reading_client_is_answered_and_the_connection_stays_usable(ws_server):
    count = 10_000
    payloads = [b'%05d' % index for index in range(count)]
    received: list[Frame] = []
    done = threading.Event()
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:

        def read() -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    frame = ws.receive(timeout=1)
                except TimeoutError:
                    continue
                if frame is None:
                    break
                received.append(frame)
                if frame.opcode == TEXT:
                    break
            done.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for start in range(0, count, 2500):
            ws.send_raw(b''.join(encode_frame(PING, payload) for payload in payloads[start : start + 2500]))
        ws.send(TEXT, b'after the flood')
        assert done.wait(40), 'the reader did not finish'
        reader.join(5)
    pongs = [frame.payload for frame in received if frame.opcode == PONG]
    others = [frame for frame in received if frame.opcode not in (PONG, TEXT)]
    assert not others, others[:3]
    assert received and (received[-1].opcode, received[-1].payload) == (TEXT, b'after the flood'), received[-3:]
    # RFC 6455 5.5.3 lets a server skip pongs for all but the latest ping; those sent answer pings in order.
    assert pongs and pongs[-1] == payloads[-1], pongs[-3:]
    assert [int(payload) for payload in pongs] == sorted({int(payload) for payload in pongs})


def flood_pings(ws: RawWebSocket, total: int) -> bool:
    """Send about `total` bytes of 125-byte pings; False when the writes blocked for 2 s or the server closed."""
    chunk = b''.join(encode_frame(PING, b'p' * 125) for _ in range(1000))
    ws.sock.settimeout(2)
    sent = 0
    try:
        while sent < total:
            ws.sock.sendall(chunk)
            sent += len(chunk)
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        return False
    return True


def non_reading_client(server: RunningServer) -> RawWebSocket:
    ws = RawWebSocket(server.host, server.port, '/echo')
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return ws


def test_a_ping_flooder_that_never_reads_does_not_hold_up_other_connections(ws_server):
    with non_reading_client(ws_server) as flooder:
        for _ in range(3):
            if not flood_pings(flooder, 4 * 1024 * 1024):
                break
            assert echo_round_trip(ws_server) < 2
    assert echo_round_trip(ws_server) < 2


def test_a_ping_flooder_that_never_reads_is_held_back(ws_server):
    worker = worker_pid(ws_server)
    before = rss_mib(worker)
    with non_reading_client(ws_server) as flooder:
        # A bounded server stops reading once its pongs back up: the socket buffers hold a few MiB at most.
        held_back = not flood_pings(flooder, 64 * 1024 * 1024)
        growth = rss_mib(worker) - before
    assert held_back, f'the server read 64 MiB of pings from a client that reads nothing (RSS +{growth:.0f} MiB)'
    assert growth < 64, f'the worker RSS grew by {growth:.0f} MiB'


# -- 4. close frames -------------------------------------------------------------------------------

INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
VALID_CODES = [1000, 1001, 1003, 1007, 1011, 3000, 4999]


@pytest.mark.parametrize('code', INVALID_CODES)
def test_an_invalid_close_code_is_answered_with_1002(ws_server, code):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(CLOSE, struct.pack('!H', code))
        assert_closed_with(ws, 1002)


@pytest.mark.parametrize('code', VALID_CODES)
def test_a_valid_close_code_is_echoed(ws_server, code):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(CLOSE, close_payload(code, 'bye'))
        frames = frames_until_eof(ws)
    assert len(frames) == 1 and frames[0].opcode == CLOSE and frames[0].close_code == code, frames


def test_a_one_byte_close_payload_is_answered_with_1002(ws_server):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(CLOSE, b'\x03')
        assert_closed_with(ws, 1002)


@pytest.mark.parametrize(
    'reason',
    [b'\xff\xfe', b'\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80'],
    ids=['invalid-bytes', 'surrogate'],
)
def test_a_close_reason_that_is_not_utf8_is_answered_with_1007(ws_server, reason):
    # RFC 6455 8.1 and 7.4.1: invalid UTF-8 fails the connection with 1007 (Autobahn case 7.5.1).
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(CLOSE, struct.pack('!H', 1000) + reason)
        assert_closed_with(ws, 1007)


@pytest.mark.parametrize(('code', 'answer'), [(999, 1002), (1005, 1002), (4999, 4999)])
def test_close_codes_over_http2(ws_server, code, answer):
    ws = Http2WebSocket(ws_server.host, ws_server.port, '/echo')
    try:
        assert ws.status == 200
        ws.send(CLOSE, struct.pack('!H', code))
        assert_closed_with(ws, answer)
    finally:
        ws.close()


# -- one close frame only --------------------------------------------------------------------------


def _fail_with_huge_header(ws: RawWebSocket) -> None:
    ws.send_raw(huge_header(2**62))


def _fail_with_fragments(ws: RawWebSocket) -> None:
    ws.send(BINARY, b'a' * (MAX_SIZE // 2 + 10), fin=False)
    send_ignoring_close(ws, encode_frame(CONTINUATION, b'b' * (MAX_SIZE // 2), fin=False))


def _fail_with_close_reason(ws: RawWebSocket) -> None:
    ws.send(CLOSE, struct.pack('!H', 1000) + b'\xff\xfe')


@pytest.mark.parametrize(
    'fail',
    [_fail_with_huge_header, _fail_with_fragments, _fail_with_close_reason],
    ids=['huge-header-1009', 'fragments-1009', 'close-reason-1007'],
)
def test_a_failing_server_sends_one_close_frame_only(ws_server, fail):
    # RFC 6455 5.5.1: nothing follows a close frame; browsers fail a WebSocket that receives a second one.
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        fail(ws)
        frames = frames_until_eof(ws)
    assert len(frames) == 1 and frames[0].opcode == CLOSE, frames
