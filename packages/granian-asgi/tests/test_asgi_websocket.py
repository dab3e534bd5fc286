"""ASGI WebSockets (spec 2.5) against a real server, including the points where Granian 2.8 misbehaves."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from tests_support.websocket import CLOSE, TEXT, Http2WebSocket, RawWebSocket, close_payload


@pytest.fixture(scope='module')
def ws_server(server_factory, asgi_apps_dir):
    return server_factory('asgi_ws_app:app', working_dir=asgi_apps_dir, interface='asgi')


def url(server, path: str) -> str:
    return f'ws://{server.host}:{server.port}{path}'


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def wait_report(server, key: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = httpx.get(server.url(f'/report?{key}'), timeout=10).json()
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f'no report for {key}')


@pytest.mark.parametrize('size', [0, 1024, 1024 * 1024])
def test_echo(ws_server, size):
    async def exchange():
        async with connect(url(ws_server, '/echo'), max_size=None) as ws:
            await ws.send('t' * size)
            assert await ws.recv() == 't' * size
            await ws.send(b'b' * size)
            assert await ws.recv() == b'b' * size

    run(exchange())


def test_scope(ws_server):
    async def exchange():
        async with connect(url(ws_server, '/scope?q=1'), subprotocols=['a', 'b']) as ws:
            scope = json.loads(await ws.recv())
            return scope, ws.subprotocol, ws.response.headers

    scope, chosen, headers = run(exchange())
    assert scope['type'] == 'websocket' and scope['scheme'] == 'ws'
    assert (scope['path'], scope['raw_path'], scope['query_string']) == ('/scope', '/scope', 'q=1')
    assert scope['root_path'] == '' and scope['http_version'] == '1.1'
    assert scope['subprotocols'] == ['a', 'b']
    assert scope['asgi'] == {'version': '3.0', 'spec_version': '2.5'}
    assert scope['extensions'] == ['websocket.http.response']
    assert scope['client_port_is_int'] and scope['server'][1] == ws_server.port
    assert ['sec-websocket-protocol', 'a, b'] in scope['headers']
    assert scope['state'] == {'greeting': 'hi'}
    assert chosen == 'b'
    assert headers['x-accepted'] == 'yes'


def test_subprotocols_from_several_headers_are_one_list(ws_server):
    with RawWebSocket(ws_server.host, ws_server.port, '/scope', headers={'Sec-WebSocket-Protocol': 'x, y'}) as ws:
        scope = json.loads(ws.receive().payload)
    assert scope['subprotocols'] == ['x', 'y']


def test_close_before_accept_is_403_at_once(ws_server):
    started = time.monotonic()
    with RawWebSocket(ws_server.host, ws_server.port, '/close-before-accept') as ws:
        assert ws.status == 403
    assert time.monotonic() - started < 2


def test_denial_response(ws_server):
    with RawWebSocket(ws_server.host, ws_server.port, '/deny') as ws:
        assert ws.status == 401
        assert 'x-reason: token' in ws.response_head.lower()
        while len(ws.buffer) < len(b'no entry'):
            ws.buffer += ws.sock.recv(100)
        assert bytes(ws.buffer) == b'no entry'


@pytest.mark.parametrize(('path', 'status'), [('/no-accept', 403), ('/raise-before-accept', 500)])
def test_app_ending_before_accept(ws_server, path, status):
    with RawWebSocket(ws_server.host, ws_server.port, path) as ws:
        assert ws.status == status


@pytest.mark.parametrize(('path', 'code'), [('/raise-after-accept', 1011), ('/return-after-accept', 1000)])
def test_app_ending_after_accept(ws_server, path, code):
    with RawWebSocket(ws_server.host, ws_server.port, path) as ws:
        frame = ws.receive()
        assert frame.opcode == CLOSE and frame.close_code == code


def test_custom_close_code_and_reason_reach_the_client_and_a_later_receive(ws_server):
    key = uuid.uuid4().hex

    async def exchange():
        async with connect(url(ws_server, f'/server-close?{key}')) as ws:
            with pytest.raises(websockets.ConnectionClosed) as excinfo:
                await ws.recv()
            return excinfo.value.rcvd.code, excinfo.value.rcvd.reason

    assert run(exchange()) == (4002, 'server says bye')
    assert wait_report(ws_server, key) == [['websocket.disconnect', 4002, 'server says bye']]


def test_client_close_code_and_reason_reach_the_app(ws_server):
    key = uuid.uuid4().hex

    async def exchange():
        async with connect(url(ws_server, f'/client-close?{key}')) as ws:
            await ws.close(4100, 'client says bye')

    run(exchange())
    assert wait_report(ws_server, key) == [['websocket.disconnect', 4100, 'client says bye']]


def test_client_leaving_before_accept_is_a_disconnect(ws_server):
    key = uuid.uuid4().hex
    sock = socket.create_connection((ws_server.host, ws_server.port), timeout=10)
    sock.sendall(
        (
            f'GET /slow-accept?{key} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
        ).encode()
    )
    time.sleep(0.2)
    sock.close()
    assert wait_report(ws_server, key) == ['websocket.disconnect']


def test_send_after_the_client_left_raises_client_disconnected(ws_server):
    key = uuid.uuid4().hex
    with RawWebSocket(ws_server.host, ws_server.port, f'/send-after-disconnect?{key}') as ws:
        ws.send(CLOSE, close_payload(1000))
        assert ws.receive().opcode == CLOSE
    assert wait_report(ws_server, key) == [['websocket.disconnect', 'ClientDisconnected']]


def test_websocket_over_http2(ws_server):
    ws = Http2WebSocket(ws_server.host, ws_server.port, '/scope')
    try:
        assert ws.status == 200
        scope = json.loads(ws.receive().payload)
        assert scope['http_version'] == '2'
        ws.send(TEXT, b'h2 echo')
        assert ws.receive().payload == b'h2 echo'
    finally:
        ws.close()


@pytest.fixture(scope='module')
def fastapi_ws_server(server_factory, asgi_apps_dir):
    return server_factory('starlette_ws_app:app', working_dir=asgi_apps_dir, interface='asgi')


def test_fastapi_websocket_route(fastapi_ws_server):
    async def exchange():
        async with connect(url(fastapi_ws_server, '/ws/lobby'), subprotocols=['chat']) as ws:
            await ws.send(json.dumps({'n': 1}))
            answer = json.loads(await ws.recv())
            subprotocol = ws.subprotocol
            await ws.close(4321)
            return answer, subprotocol

    assert run(exchange()) == ({'room': 'lobby', 'echo': {'n': 1}}, 'chat')
    deadline = time.monotonic() + 10
    while 4321 not in httpx.get(fastapi_ws_server.url('/disconnects')).json():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_fastapi_close_before_accept(fastapi_ws_server):
    with RawWebSocket(fastapi_ws_server.host, fastapi_ws_server.port, '/denied') as ws:
        assert ws.status == 403


@pytest.fixture(scope='module')
def channels_server(server_factory, asgi_apps_dir):
    return server_factory('channels_app:app', working_dir=asgi_apps_dir, interface='asginl')


def test_django_channels_consumers(channels_server):
    async def exchange():
        async with connect(url(channels_server, '/ws/echo/')) as ws:
            await ws.send('hi')
            text = await ws.recv()
            await ws.send(b'\x00\x01')
            binary = await ws.recv()
        async with connect(url(channels_server, '/ws/room/blue/')) as ws:
            await ws.send(json.dumps({'n': 2}))
            room = json.loads(await ws.recv())
            await ws.send(json.dumps({'close': True}))
            with pytest.raises(websockets.ConnectionClosed) as excinfo:
                await ws.recv()
        return text, binary, room, excinfo.value.rcvd.code

    assert run(exchange()) == ('echo:hi', b'\x00\x01', {'room': 'blue', 'got': {'n': 2}}, 4003)
    assert httpx.get(channels_server.url('/'), timeout=10).text == 'channels http'
