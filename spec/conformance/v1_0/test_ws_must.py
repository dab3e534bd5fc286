"""WebSockets: accepting, refusing, receiving, sending, closing, pings (rsgi.md section 6)."""

from __future__ import annotations

import os

import pytest
from clients import TIMEOUT, key, recv_json, websocket, ws_handshake
from websockets.exceptions import ConnectionClosed, InvalidStatus

pytestmark = pytest.mark.usefixtures('server')


# -- ws-accept ---------------------------------------------------------------------------------------


@pytest.mark.requirement('ws-accept')
def test_accept_completes_the_handshake(server):
    with websocket(server, '/ws/accept') as ws:
        assert ws.response.status_code == 101
        methods = recv_json(ws)
    assert methods == {'receive': True, 'send_bytes': True, 'send_str': True}, 'accept() returned no transport'


# -- ws-reject ---------------------------------------------------------------------------------------


@pytest.mark.requirement('ws-reject')
@pytest.mark.parametrize('status', [403, 401, 404, 429])
def test_close_before_accept_refuses_with_the_status(server, status):
    with pytest.raises(InvalidStatus) as refused, websocket(server, f'/ws/reject?status={status}'):
        pass
    assert refused.value.response.status_code == status


@pytest.mark.requirement('ws-reject')
def test_close_before_accept_without_status_refuses_with_403(server_factory):
    dedicated = server_factory('conformance_app:app')  # a server that fails here may not survive it
    with pytest.raises(InvalidStatus) as refused, websocket(dedicated, '/ws/reject'):
        pass
    assert refused.value.response.status_code == 403


# -- ws-receive --------------------------------------------------------------------------------------


@pytest.mark.requirement('ws-receive')
def test_receive_text_and_binary(server):
    with websocket(server, '/ws/describe') as ws:
        ws.send('héllo ✓')
        assert recv_json(ws) == {'kind': 2, 'kind_is_int': True, 'type': 'str', 'data': 'héllo ✓'}
        ws.send(b'\x00\x01\xfe\xff')
        assert recv_json(ws) == {'kind': 1, 'kind_is_int': True, 'type': 'bytes', 'data': '0001feff'}


@pytest.mark.requirement('ws-receive')
def test_fragmented_messages_arrive_whole(server):
    with websocket(server, '/ws/describe') as ws:
        ws.send(['frag', 'men', 'ted ✓'])
        assert recv_json(ws) == {'kind': 2, 'kind_is_int': True, 'type': 'str', 'data': 'fragmented ✓'}
        ws.send([b'\x01\x02', b'\x03', b'\x04\x05'])
        assert recv_json(ws) == {'kind': 1, 'kind_is_int': True, 'type': 'bytes', 'data': '0102030405'}


@pytest.mark.requirement('ws-receive')
def test_a_large_message_arrives_whole(server):
    data = os.urandom(256 * 1024)
    with websocket(server, '/ws/echo', max_size=None) as ws:
        ws.send(data)
        assert ws.recv(timeout=TIMEOUT) == data


# -- ws-receive-close --------------------------------------------------------------------------------


@pytest.mark.requirement('ws-receive-close')
def test_client_close_frame_gives_kind_0(server):
    name = key()
    with websocket(server, f'/ws/describe?key={name}') as ws:
        ws.send('x')
        recv_json(ws)
        ws.close(1000)
        # The server answered the close frame itself: the closing handshake completed.
        assert ws.protocol.close_rcvd is not None, 'the server did not answer the close frame'
        assert ws.protocol.close_rcvd.code == 1000
    recorded = server.state(f'ws-describe-close-{name}', timeout=5)
    assert recorded['outcome'] == 'received', recorded
    assert recorded['kind'] == 0


@pytest.mark.requirement('ws-receive-close')
def test_lost_connection_ends_receive(server):
    name = key()
    sock, head = ws_handshake(server, f'/ws/describe?key={name}')
    try:
        assert head.startswith(b'HTTP/1.1 101'), head
    finally:
        sock.close()  # no close frame: the connection is just lost
    recorded = server.state(f'ws-describe-close-{name}', timeout=8)
    # Without a close frame, receive() either returns kind 0 or raises the protocol-closed error
    # (a RuntimeError); either way it does not wait forever or return data.
    if recorded['outcome'] == 'raised':
        assert recorded['runtime_error'], f'receive() raised a non-protocol error: {recorded}'
    else:
        assert recorded['outcome'] == 'received', f'receive() did not end when the connection was lost: {recorded}'
        assert recorded['kind'] == 0


# -- ws-send -----------------------------------------------------------------------------------------


@pytest.mark.requirement('ws-send')
def test_send_str_and_send_bytes_in_order(server):
    with websocket(server, '/ws/send') as ws:
        received = [ws.recv(timeout=TIMEOUT) for _ in range(4)]
    assert received == ['one', b'two', 'thr€e', b'\x00\xff']


# -- ws-close ----------------------------------------------------------------------------------------


def closed_code(ws) -> int | None:
    """Receive until the server closes; the close code the server sent (None without a close frame)."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=TIMEOUT)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


@pytest.mark.requirement('ws-close')
@pytest.mark.parametrize('status', [4001, 1001])
def test_close_after_accept_sends_the_status(server, status):
    with websocket(server, f'/ws/close?status={status}') as ws:
        assert ws.recv(timeout=TIMEOUT) == 'open'
        assert closed_code(ws) == status


@pytest.mark.requirement('ws-close')
def test_close_after_accept_without_status_sends_1000(server):
    with websocket(server, '/ws/close') as ws:
        assert ws.recv(timeout=TIMEOUT) == 'open'
        assert closed_code(ws) == 1000


@pytest.mark.requirement('ws-close')
def test_returning_after_accept_closes_the_websocket(server):
    with websocket(server, '/ws/return') as ws:
        assert ws.recv(timeout=TIMEOUT) == 'open'
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)  # a TimeoutError here: the WebSocket was left open


# -- ws-ping -----------------------------------------------------------------------------------------


@pytest.mark.requirement('ws-ping')
def test_pings_are_answered_and_not_received(server):
    with websocket(server, '/ws/describe') as ws:
        pong = ws.ping(b'ping-data')
        assert pong.wait(TIMEOUT), 'no pong for the ping'
        ws.pong(b'unsolicited')
        ws.send('after')
        # The app answers every message receive() returns: the first answer must be for 'after'.
        assert recv_json(ws) == {'kind': 2, 'kind_is_int': True, 'type': 'str', 'data': 'after'}
