"""RSGI WebSockets against a real server: handshake, echo, close codes, limits, pings, flow control, HTTP/2."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from tests_support.server import RunningServer
from tests_support.websocket import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    Http2WebSocket,
    RawWebSocket,
    close_payload,
    encode_frame,
)

APPS_DIR = Path(__file__).parent / 'apps'
MAX_SIZE = 16 * 1024 * 1024


@pytest.fixture(scope='module')
def ws_server(server_factory):
    return server_factory('rsgi_ws_app:app', working_dir=APPS_DIR)


def url(server: RunningServer, path: str) -> str:
    return f'ws://{server.host}:{server.port}{path}'


def report(server: RunningServer, key: str):
    return httpx.get(server.url(f'/report?{key}'), timeout=10).json()


def wait_report(server: RunningServer, key: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = report(server, key)
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f'no report for {key}')


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


@pytest.mark.parametrize('size', [0, 1, 1024, 1024 * 1024, MAX_SIZE])
def test_echo_text_and_binary(ws_server, size):
    async def exchange():
        async with connect(url(ws_server, '/echo'), max_size=None, compression=None) as ws:
            await ws.send(b'\x01' * size)
            assert await ws.recv() == b'\x01' * size
            await ws.send('é' * (size // 2))
            assert await ws.recv() == 'é' * (size // 2)

    run(exchange())


def test_scope(ws_server):
    async def exchange():
        async with connect(url(ws_server, '/scope?a=1')) as ws:
            return await ws.recv()

    assert run(exchange()) == 'ws /scope a=1 1.1'


def test_fragmented_message_with_interleaved_ping(ws_server):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        assert ws.status == 101
        ws.send(TEXT, b'hel', fin=False)
        ws.send(PING, b'p')
        ws.send(0x0, b'lo ', fin=False)
        ws.send(0x0, 'wörld'.encode(), fin=True)
        pong = ws.receive()
        assert (pong.opcode, pong.payload) == (PONG, b'p')
        echo = ws.receive()
        assert (echo.opcode, echo.payload.decode()) == (TEXT, 'hello wörld')


def test_oversized_message_closes_with_1009(ws_server):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(BINARY, b'\x00' * (MAX_SIZE // 2), fin=False)
        ws.send(0x0, b'\x00' * (MAX_SIZE // 2 + 1), fin=True)
        frame = ws.receive(timeout=30)
        assert frame is not None and frame.opcode == CLOSE and frame.close_code == 1009


def test_invalid_utf8_closes_with_1007(ws_server):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(TEXT, b'\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80')
        frame = ws.receive()
        assert frame is not None and frame.opcode == CLOSE and frame.close_code == 1007


def test_reserved_bits_fail_the_connection_with_1002(ws_server):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        ws.send(TEXT, b'x', rsv=2)
        frame = ws.receive()
        assert frame is not None and frame.opcode == CLOSE and frame.close_code == 1002


@pytest.mark.parametrize('opcode', [0x3, 0x7, 0xB, 0xF])
def test_reserved_opcodes_fail_the_connection_with_1002_after_earlier_frames(ws_server, opcode):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        # A valid frame and the reserved one in one write: the server fails the connection at once,
        # whether or not the app's echo of the first got out before.
        ws.sock.sendall(encode_frame(TEXT, b'before') + encode_frame(opcode, b'xy'))
        frame = ws.receive()
        if frame is not None and frame.opcode == TEXT:
            assert frame.payload == b'before'
            frame = ws.receive()
        assert frame is not None and frame.opcode == CLOSE and frame.close_code == 1002
        assert frame.payload[2:] == b'reserved opcode'


@pytest.mark.parametrize('opcode', [CLOSE, PING, PONG], ids=['close', 'ping', 'pong'])
def test_a_control_frame_over_125_bytes_fails_the_connection_with_1002(ws_server, opcode):
    with RawWebSocket(ws_server.host, ws_server.port, '/echo') as ws:
        payload = close_payload(1000, 'x' * 124) if opcode == CLOSE else b'p' * 126
        ws.send(opcode, payload)
        frame = ws.receive()
        assert frame is not None and frame.opcode == CLOSE and frame.close_code == 1002
        assert frame.payload[2:] == b'control frame over 125 bytes'
        assert ws.receive() is None


def test_client_close_code_and_reason_reach_the_app_and_are_echoed(ws_server):
    key = uuid.uuid4().hex
    with RawWebSocket(ws_server.host, ws_server.port, f'/record-close?{key}') as ws:
        ws.send(CLOSE, close_payload(4000, 'client done'))
        frame = ws.receive()
        assert frame is not None and frame.opcode == CLOSE and frame.close_code == 4000
        assert ws.receive() is None, 'the server closes the TCP connection after the close handshake'
    assert wait_report(ws_server, key) == [0]


def test_server_close_code_reaches_the_client(ws_server):
    key = uuid.uuid4().hex

    async def exchange():
        async with connect(url(ws_server, f'/server-close?{key}')) as ws:
            with pytest.raises(websockets.ConnectionClosed) as excinfo:
                await ws.recv()
            return excinfo.value.rcvd.code

    assert run(exchange()) == 4001
    assert wait_report(ws_server, key) == [0]


@pytest.mark.parametrize('client', [RawWebSocket, Http2WebSocket], ids=['http1.1', 'h2'])
def test_a_server_close_is_sent_once_and_the_connection_ends_after_the_answer(ws_server, client):
    # Browsers fail a WebSocket that receives anything after a close frame, a second close included;
    # after the close handshake the server ends its side (HTTP/2: END_STREAM, not RST_STREAM).
    key = uuid.uuid4().hex
    with client(ws_server.host, ws_server.port, f'/server-close?{key}') as ws:
        frame = ws.receive()
        assert frame is not None and frame.opcode == CLOSE and frame.close_code == 4001
        ws.send(CLOSE, close_payload(4001, ''))
        after = ws.receive()
        assert after is None, f'the server sent {after} after its close frame'
        assert not getattr(ws, 'reset', False), 'the stream was reset instead of ended'
    assert wait_report(ws_server, key) == [0]


@pytest.mark.parametrize(('path', 'status'), [('/reject', 403), ('/reject-418', 418), ('/no-accept', 403)])
def test_rejected_handshake_gets_http_status(ws_server, path, status):
    with RawWebSocket(ws_server.host, ws_server.port, path) as ws:
        assert ws.status == status


def test_app_raising_before_accept_gets_500_and_the_worker_lives_on(ws_server):
    with RawWebSocket(ws_server.host, ws_server.port, '/raise-before-accept') as ws:
        assert ws.status == 500
    test_echo_text_and_binary(ws_server, 10)


@pytest.mark.parametrize(('path', 'code'), [('/raise-after-accept', 1011), ('/return-after-accept', 1000)])
def test_app_ending_after_accept_closes_the_connection(ws_server, path, code):
    with RawWebSocket(ws_server.host, ws_server.port, path) as ws:
        assert ws.status == 101
        frame = ws.receive()
        assert frame is not None and frame.opcode == CLOSE and frame.close_code == code


@pytest.mark.parametrize(
    ('headers', 'status'),
    [
        ({'Sec-WebSocket-Version': '8'}, 426),
        ({'Sec-WebSocket-Key': 'short'}, 400),
    ],
)
def test_bad_handshake(ws_server, headers, status):
    import socket

    with socket.create_connection((ws_server.host, ws_server.port), timeout=10) as sock:
        lines = {
            'Host': 'x',
            'Upgrade': 'websocket',
            'Connection': 'Upgrade',
            'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
            'Sec-WebSocket-Version': '13',
            **headers,
        }
        request = 'GET /echo HTTP/1.1\r\n' + ''.join(f'{k}: {v}\r\n' for k, v in lines.items()) + '\r\n'
        sock.sendall(request.encode())
        answer = sock.recv(65536).decode('latin-1')
    assert answer.startswith(f'HTTP/1.1 {status} ')
    if status == 426:
        assert 'sec-websocket-version: 13' in answer.lower()


def test_deflate_is_negotiated(ws_server):
    async def exchange():
        async with connect(url(ws_server, '/echo'), compression='deflate') as ws:
            await ws.send('a' * 10000)
            assert await ws.recv() == 'a' * 10000
            return ws.response.headers.get('sec-websocket-extensions')

    assert run(exchange()).startswith('permessage-deflate')


def test_deflate_survives_empty_and_small_messages_after_a_large_one(ws_server):
    async def exchange():
        async with connect(url(ws_server, '/echo'), compression='deflate') as ws:
            for message in ['a' * 5000, '', 'a', b'', b'b' * 70, '']:
                await ws.send(message)
                assert await ws.recv() == message

    run(exchange())


def test_500_concurrent_connections(ws_server):
    async def one(index: int):
        async with connect(url(ws_server, '/echo'), compression=None, open_timeout=30) as ws:
            await ws.send(f'message {index}')
            assert await ws.recv() == f'message {index}'

    async def all_of_them():
        await asyncio.gather(*(one(index) for index in range(500)))

    run(all_of_them())


def test_a_client_that_stops_reading_holds_back_the_app_not_the_others(ws_server):
    key = uuid.uuid4().hex
    stalled = RawWebSocket(ws_server.host, ws_server.port, f'/flood?{key}')
    try:
        assert stalled.status == 101
        time.sleep(1.0)

        async def echo_quickly():
            async with connect(url(ws_server, '/echo')) as ws:
                started = time.monotonic()
                await ws.send('ping')
                assert await ws.recv() == 'ping'
                return time.monotonic() - started

        assert run(echo_quickly()) < 2.0
        assert report(ws_server, key) is None, 'the app finished sending 32 MiB to a client that reads nothing'
    finally:
        stalled.close()
    (sent,) = wait_report(ws_server, key)
    assert sent < 512


def test_websocket_over_http2(ws_server):
    ws = Http2WebSocket(ws_server.host, ws_server.port, '/echo')
    try:
        assert ws.server_allows_connect
        assert ws.status == 200
        ws.send(TEXT, b'over h2')
        frame = ws.receive()
        assert (frame.opcode, frame.payload) == (TEXT, b'over h2')
        ws.send(BINARY, b'\x00\x01')
        assert ws.receive().payload == b'\x00\x01'
        ws.send(CLOSE, close_payload(1000))
        assert ws.receive().opcode == CLOSE
    finally:
        ws.close()


def test_http2_scope(ws_server):
    ws = Http2WebSocket(ws_server.host, ws_server.port, '/scope?x=2')
    try:
        assert ws.receive().payload == b'ws /scope x=2 2'
    finally:
        ws.close()


def test_server_pings_and_drops_a_silent_peer(server_factory):
    server = server_factory(
        'rsgi_ws_app:app', working_dir=APPS_DIR, extra_args=['--ws-ping-interval', '0.3', '--ws-ping-timeout', '0.5']
    )
    with RawWebSocket(server.host, server.port, '/echo') as ws:
        frame = ws.receive(timeout=5)
        assert frame is not None and frame.opcode == PING
        ws.send(PONG, frame.payload)
        frame = ws.receive(timeout=5)
        assert frame is not None and frame.opcode == PING
        # No pong this time: the server gives up within the timeout (pings may come meanwhile).
        started = time.monotonic()
        while time.monotonic() - started < 5:
            frame = ws.receive(timeout=5)
            if frame is None or frame.opcode == CLOSE:
                break
        assert frame is None or frame.opcode == CLOSE
        assert time.monotonic() - started < 3


def test_no_ws_serves_upgrade_requests_as_http(server_factory):
    server = server_factory('rsgi_ws_app:app', working_dir=APPS_DIR, extra_args=['--no-ws'])
    with RawWebSocket(server.host, server.port, '/echo') as ws:
        assert ws.status == 200
    h2_client = Http2WebSocket(server.host, server.port, '/echo')
    try:
        assert not h2_client.server_allows_connect
    finally:
        h2_client.close()


def test_no_deflate_option(server_factory):
    server = server_factory('rsgi_ws_app:app', working_dir=APPS_DIR, extra_args=['--no-ws-per-message-deflate'])

    async def exchange():
        async with connect(url(server, '/echo'), compression='deflate') as ws:
            return ws.response.headers.get('sec-websocket-extensions')

    assert run(exchange()) is None


def test_max_size_option(server_factory):
    server = server_factory('rsgi_ws_app:app', working_dir=APPS_DIR, extra_args=['--ws-max-size', '1000'])
    with RawWebSocket(server.host, server.port, '/echo') as ws:
        ws.send(BINARY, b'x' * 1000)
        assert ws.receive().payload == b'x' * 1000
        ws.send(BINARY, b'x' * 1001)
        frame = ws.receive()
        assert frame.opcode == CLOSE and frame.close_code == 1009


def test_shutdown_closes_open_websockets_with_1001():
    with RunningServer('rsgi_ws_app:app', working_dir=APPS_DIR) as server:
        with RawWebSocket(server.host, server.port, '/hold') as ws:
            assert ws.status == 101
            server.send_signal(signal.SIGTERM)
            frame = ws.receive(timeout=10)
            assert frame is not None and frame.opcode == CLOSE and frame.close_code == 1001
            ws.send(CLOSE, close_payload(1001))
        assert server.wait(15) == 0


@pytest.mark.parametrize('mode', ['1', '2'])
def test_websockets_in_single_version_modes(server_factory, mode):
    server = server_factory('rsgi_ws_app:app', working_dir=APPS_DIR, extra_args=['--http', mode])
    if mode == '1':
        with RawWebSocket(server.host, server.port, '/echo') as ws:
            ws.send(TEXT, b'h1 only')
            assert ws.receive().payload == b'h1 only'
        return
    ws = Http2WebSocket(server.host, server.port, '/echo')
    try:
        assert ws.status == 200
        ws.send(TEXT, b'h2 only')
        assert ws.receive().payload == b'h2 only'
    finally:
        ws.close()


def test_open_websockets_count_against_backpressure(server_factory):
    server = server_factory('rsgi_ws_app:app', working_dir=APPS_DIR, extra_args=['--backpressure', '1'])
    ws = RawWebSocket(server.host, server.port, '/echo')
    try:
        assert ws.status == 101
        with pytest.raises(httpx.TimeoutException):
            httpx.get(server.url('/http'), timeout=1.0)
    finally:
        ws.send(CLOSE, close_payload(1000))
        ws.receive()
        ws.close()
    assert httpx.get(server.url('/http'), timeout=10).text == 'http /http'
