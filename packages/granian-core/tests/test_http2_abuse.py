"""HTTP/2 abuse: rapid reset, CONTINUATION, SETTINGS, PING and empty-DATA floods, and a peer that never
opens its window. None may take the worker down or starve a second, well-behaved client."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import httpx
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

from tests_support.sockets import received

APPS_DIR = Path(__file__).parent / 'apps'
PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
#: A well-behaved client must get its answer within this while (or right after) an abuser works.
PROMPT = 2.0


@pytest.fixture(scope='module')
def server(server_factory):
    return server_factory('tls_app:rsgi', working_dir=APPS_DIR)


def _others_are_served(server) -> None:
    began = time.monotonic()
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        response = client.get(server.url('/'))
    assert response.status_code == 200 and response.http_version == 'HTTP/2'
    assert time.monotonic() - began < PROMPT, f'a well-behaved client waited {time.monotonic() - began:.1f} s'
    assert server.proc.poll() is None, 'the server exited'


class Abuser:
    """Sends raw frames in a background thread, and drains whatever the server answers."""

    def __init__(self, server, opening: bytes = PREFACE + SettingsFrame(0).serialize()) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.sock.sendall(opening)
        self.stop = threading.Event()
        self.received = 0
        self.ended = False

    def drain(self) -> None:
        for chunk in received(self.sock, lambda: not self.stop.is_set(), poll=0.2):
            if not chunk:
                self.ended = True
            self.received += len(chunk)

    def send_all(self, frames: list[bytes], batch: int = 200) -> None:
        """Sends the frames in batches; stops quietly once the server has closed the connection."""
        for start in range(0, len(frames), batch):
            try:
                self.sock.sendall(b''.join(frames[start : start + batch]))
            except OSError:
                self.ended = True
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def _with_abuser(server, frames: list[bytes], read: bool = True) -> Abuser:
    abuser = Abuser(server)
    reader = threading.Thread(target=abuser.drain, daemon=True) if read else None
    if reader is not None:
        reader.start()
    sender = threading.Thread(target=abuser.send_all, args=(frames,), daemon=True)
    sender.start()
    try:
        time.sleep(0.3)  # the flood is under way
        _others_are_served(server)
        sender.join(30)
        _others_are_served(server)
    finally:
        abuser.close()
    return abuser


def _request_block() -> bytes:
    headers = [(':method', 'GET'), (':path', '/'), (':scheme', 'http'), (':authority', 'x')]
    return hpack.Encoder().encode(headers)


def test_rapid_reset(server):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.data_to_send()
    frames = []
    for _ in range(5000):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(':method', 'GET'), (':path', '/'), (':scheme', 'http'), (':authority', 'x')])
        conn.reset_stream(stream)
        frames.append(conn.data_to_send())
    abuser = _with_abuser(server, frames)
    assert abuser.ended, 'the rapid-reset connection was not closed'


def test_continuation_flood(server):
    first = HeadersFrame(1)
    first.data = _request_block()
    frames = [first.serialize()]
    filler = hpack.Encoder().encode([('x-flood', 'a' * 100)])
    for _ in range(20000):
        frame = ContinuationFrame(1)
        frame.data = filler
        frames.append(frame.serialize())
    abuser = _with_abuser(server, frames)
    assert abuser.ended, 'the CONTINUATION flood was not cut off'


def test_settings_flood_from_a_peer_that_does_not_read(server):
    frames = [SettingsFrame(0, settings={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100}).serialize()] * 50000
    _with_abuser(server, frames, read=False)


def test_ping_flood_from_a_peer_that_does_not_read(server):
    frames = [PingFrame(0, opaque_data=b'12345678').serialize()] * 50000
    _with_abuser(server, frames, read=False)


def test_empty_data_flood(server):
    opening = HeadersFrame(1)
    opening.data = hpack.Encoder().encode(
        [(':method', 'POST'), (':path', '/'), (':scheme', 'http'), (':authority', 'x')]
    )
    opening.flags.add('END_HEADERS')
    frames = [opening.serialize(), *([DataFrame(1, data=b'').serialize()] * 50000)]
    _with_abuser(server, frames)


def test_a_peer_that_never_opens_its_window(server):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
    )
    conn.initiate_connection()
    opening = conn.data_to_send()
    frames = []
    for _ in range(200):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(
            stream, [(':method', 'GET'), (':path', '/'), (':scheme', 'http'), (':authority', 'x')], end_stream=True
        )
        frames.append(conn.data_to_send())
    abuser = Abuser(server, opening)
    try:
        abuser.send_all(frames)
        time.sleep(1.0)
        _others_are_served(server)
    finally:
        abuser.close()


def _bomb(streams: int, copies: int) -> list[bytes]:
    """HEADERS frames whose few KiB of HPACK decode to `copies` x 4000 bytes each: the header is sent
    once into the dynamic table, then referred to by its index (one or two bytes per copy)."""
    encoder = hpack.Encoder()
    request = [(':method', 'GET'), (':path', '/'), (':scheme', 'http'), (':authority', 'x')]
    frames = []
    for index in range(streams):
        frame = HeadersFrame(1 + 2 * index)
        frame.data = encoder.encode(request + [('x-bomb', 'a' * 4000)] * copies)
        frame.flags.add('END_HEADERS')
        frame.flags.add('END_STREAM')
        frames.append(frame.serialize())
    return frames


def _answers_to_stream_1(data: bytes) -> tuple[list[str], int]:
    """The :status values the server sent on stream 1, and how many RST_STREAM/GOAWAY frames it sent."""
    decoder, statuses, resets = hpack.Decoder(), [], 0
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        if len(data) < 9 + length:
            break
        frame.parse_body(memoryview(data[9 : 9 + length]))
        data = data[9 + length :]
        if isinstance(frame, HeadersFrame) and frame.stream_id == 1:
            statuses += [value for name, value in decoder.decode(frame.data) if name == ':status']
        elif isinstance(frame, RstStreamFrame | GoAwayFrame):
            resets += 1
    return statuses, resets


def test_hpack_bomb_over_the_header_list_limit_is_refused(server):
    # 5000 x 4000 bytes = 20 MB decoded, over --http2-max-headers-size (16 MiB by default).
    frames = _bomb(1, 5000)
    abuser = Abuser(server)
    try:
        abuser.send_all(frames)
        until = time.monotonic() + 2.0
        answer = b''.join(received(abuser.sock, lambda: time.monotonic() < until, poll=0.2))
    finally:
        abuser.close()
    # The server's SETTINGS and whatever it says about stream 1: never a response from the app.
    statuses, resets = _answers_to_stream_1(answer)
    assert statuses in ([], ['431']) and (statuses or resets), (statuses, resets)
    _others_are_served(server)


def test_hpack_bombs_under_the_limit_cost_no_memory_per_copy(server):
    from tests_support.processes import MIB, rss_bytes, worker_pid

    worker = worker_pid(server)
    before = rss_bytes(worker)
    # 40 streams of 15.6 MB decoded each (600 MB if every copy were held): h2 keeps one copy.
    abuser = _with_abuser(server, _bomb(40, 3900))
    grown = rss_bytes(worker) - before
    assert grown < 64 * MIB, f'the worker grew by {grown / MIB:.0f} MiB decoding HPACK references'
    assert abuser.received > 0
