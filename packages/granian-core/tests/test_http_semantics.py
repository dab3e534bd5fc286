"""HTTP semantics every interface must get right, read off the socket: the request body limit (413),
`Expect: 100-continue`, HEAD on a streamed response, many headers, and who closes a connection.

One app (apps/semantics_app.py) in each interface, each served with `--max-request-body-size 1000`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from tests_support.rawhttp import connect, read_response
from tests_support.sockets import read_until_closed
from tests_support.waiting import wait_until

APPS_DIR = Path(__file__).parent / 'apps'
LIMIT = 1000


@pytest.fixture(scope='module', params=['rsgi', 'asgi', 'wsgi'])
def server(request, server_factory):
    interface = request.param
    return server_factory(
        f'semantics_app:{interface}',
        working_dir=APPS_DIR,
        interface=interface,
        extra_args=['--max-request-body-size', str(LIMIT)],
    )


def reached(server) -> int:
    return int(httpx.get(server.url('/count'), timeout=10).text)


def failed_sends(server) -> int:
    return int(httpx.get(server.url('/failures'), timeout=10).text)


def post_head(path: str, length: int, *extra: str) -> bytes:
    lines = [f'POST {path} HTTP/1.1', 'Host: x', f'Content-Length: {length}', *extra]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode()


def chunked(body: bytes, size: int = 300) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in pieces) + b'0\r\n\r\n'


# --- the request body limit -------------------------------------------------------------------------


def test_a_body_at_the_limit_reaches_the_app(server):
    with connect(server.port) as sock:
        sock.sendall(post_head('/whole', LIMIT) + b'x' * LIMIT)
        response = read_response(sock.makefile('rb'))
    assert (response.status, response.body) == (200, b'len=%d' % LIMIT)


def test_a_declared_length_over_the_limit_is_413_before_the_app_runs(server):
    before = reached(server)
    with connect(server.port) as sock:
        # Only the head is sent: the answer must not wait for a body it will never read.
        sock.sendall(post_head('/whole', LIMIT + 1))
        received, closed = read_until_closed(sock)
    assert received.startswith(b'HTTP/1.1 413 '), received
    assert b'connection: close' in received.lower()
    assert closed, 'the connection stayed open with an unread body in it'
    assert reached(server) == before


def test_expect_100_continue_over_the_limit_gets_413_instead_of_100(server):
    with connect(server.port) as sock:
        sock.sendall(post_head('/whole', 10 * LIMIT, 'Expect: 100-continue'))
        received, closed = read_until_closed(sock)
    assert received.startswith(b'HTTP/1.1 413 '), received
    assert b' 100 ' not in received
    assert closed


@pytest.mark.parametrize('path', ['/whole', '/chunks'])
def test_a_chunked_body_that_outgrows_the_limit_is_413(server, path):
    with connect(server.port) as sock:
        sock.sendall(b'POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' % path.encode())
        sock.sendall(chunked(b'y' * (3 * LIMIT)))
        received, closed = read_until_closed(sock)
    assert received.startswith(b'HTTP/1.1 413 '), received
    assert closed


def test_an_app_that_handles_the_failed_read_keeps_its_answer(server):
    expected = {'rsgi': 'RSGIProtocolClosed', 'asgi': 'ClientDisconnected', 'wsgi': 'OSError'}[server.interface]
    with connect(server.port) as sock:
        sock.sendall(b'POST /catch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')
        sock.sendall(chunked(b'y' * (3 * LIMIT)))
        received, closed = read_until_closed(sock)
    assert received.startswith(b'HTTP/1.1 422 '), received
    assert received.endswith(f'error={expected}'.encode())
    assert closed, 'the rest of the body is unread: the connection must close'


def test_a_chunked_body_within_the_limit_passes_and_the_connection_stays_open(server):
    with connect(server.port) as sock, sock.makefile('rb') as reader:
        for _ in range(2):
            sock.sendall(b'POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')
            sock.sendall(chunked(b'z' * LIMIT))
            response = read_response(reader)
            assert (response.status, response.body) == (200, b'len=%d' % LIMIT)


def streamed(size: int) -> Iterator[bytes]:
    for _ in range(size // 250):
        yield b'w' * 250


def test_http2_bodies_over_the_limit_are_413_and_the_connection_stays_usable(server):
    with httpx.Client(http1=False, http2=True, base_url=server.base_url, timeout=10) as client:
        declared = client.post('/whole', content=b'x' * (LIMIT + 1))
        undeclared = client.post('/chunks', content=streamed(4 * LIMIT))
        fine = client.post('/chunks', content=streamed(LIMIT))
    assert declared.http_version == 'HTTP/2'
    assert (declared.status_code, undeclared.status_code) == (413, 413)
    assert (fine.status_code, fine.text) == (200, f'len={LIMIT}')


def test_a_request_without_a_body_is_not_affected(server):
    with connect(server.port) as sock, sock.makefile('rb') as reader:
        sock.sendall(b'GET /whole HTTP/1.1\r\nHost: x\r\n\r\n')
        assert read_response(reader).body == b'len=0'


# --- Expect: 100-continue ---------------------------------------------------------------------------


def test_expect_100_continue_is_answered_when_the_app_reads_the_body(server):
    with connect(server.port) as sock:
        sock.sendall(post_head('/whole', 10, 'Expect: 100-continue'))
        sock.settimeout(5)
        interim = sock.recv(65536)
        assert interim.startswith(b'HTTP/1.1 100 Continue\r\n'), interim
        sock.sendall(b'0123456789')
        with sock.makefile('rb') as reader:
            response = read_response(reader)
    assert (response.status, response.body) == (200, b'len=10')


def test_expect_100_continue_is_not_sent_when_the_app_answers_without_the_body(server):
    with connect(server.port) as sock:
        sock.sendall(post_head('/headers', 10, 'Expect: 100-continue'))
        sock.settimeout(5)
        first = sock.recv(65536)
    assert first.startswith(b'HTTP/1.1 200 '), first


def h2_exchange(port: int, headers: list[tuple[str, str]], body: bytes = b'', *, expect_interim: bool = False):
    """One HTTP/2 request on its own connection; returns (interim statuses, final headers, body).

    With `expect_interim` the body waits for a 100 (Continue) or, like curl, for one second.
    """
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    interim, final, data = [], {}, b''
    body_due = time.monotonic() + (1.0 if expect_interim else 0.0)
    body_sent = not body
    with connect(port) as sock:
        sock.sendall(conn.data_to_send())
        conn.send_headers(1, headers, end_stream=not body)
        sock.sendall(conn.data_to_send())
        ended = False
        while not ended:
            if not body_sent and time.monotonic() >= body_due:
                conn.send_data(1, body, end_stream=True)
                sock.sendall(conn.data_to_send())
                body_sent = True
            sock.settimeout(max(0.05, body_due - time.monotonic()) if not body_sent else 10)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if body_sent:
                    raise
                continue
            if not chunk:
                break
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.InformationalResponseReceived):
                    interim.append(int(dict(event.headers)[b':status']))
                    body_due = time.monotonic()
                elif isinstance(event, h2.events.ResponseReceived):
                    final = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    ended = True
            sock.sendall(conn.data_to_send())
    return interim, final, data


def test_expect_100_continue_over_http2(server):
    """hyper's HTTP/2 server sends no 100 (Continue) (it has no API for interim responses): a client
    that waits for one proceeds after its timeout, as RFC 9110 (10.1.1) lets it, and is answered."""
    headers = [
        (':method', 'POST'),
        (':path', '/whole'),
        (':scheme', 'http'),
        (':authority', 'x'),
        ('content-length', '10'),
        ('expect', '100-continue'),
    ]
    interim, final, data = h2_exchange(server.port, headers, b'0123456789', expect_interim=True)
    assert interim in ([], [100])
    assert (final[b':status'], data) == (b'200', b'len=10')


# --- HEAD ---------------------------------------------------------------------------------------------


def test_head_of_a_streamed_response_sends_no_body_and_the_app_sends_on(server):
    before = failed_sends(server)
    with connect(server.port) as sock:
        sock.sendall(b'HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n')
        # Stay connected while the app streams (a client that left would make its sends fail).
        time.sleep(0.4)
        sock.sendall(b'GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        received, closed = read_until_closed(sock)
    head, _, rest = received.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200 ')
    # The next bytes are the second response's status line: the HEAD response had no body.
    assert rest.startswith(b'HTTP/1.1 200 '), rest
    assert closed
    if server.interface != 'wsgi':
        assert failed_sends(server) == before


def test_head_of_an_endless_stream_ends_the_app_once_the_client_leaves(server):
    if server.interface == 'wsgi':
        pytest.skip('WSGI apps stream by returning an iterable: the server stops iterating it')
    before = failed_sends(server)
    with connect(server.port) as sock:
        sock.sendall(b'HEAD /endless HTTP/1.1\r\nHost: x\r\n\r\n')
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b'HTTP/1.1 200 ')
        time.sleep(0.3)  # the app streams into the void meanwhile, without failing
        assert failed_sends(server) == before
    # The client left: the app's next send fails and it stops (it would stream forever otherwise).
    assert wait_until(lambda: failed_sends(server) == before + 1, timeout=5)


def test_head_over_http2_sends_no_data(server):
    headers = [(':method', 'HEAD'), (':path', '/stream'), (':scheme', 'http'), (':authority', 'x')]
    _, final, data = h2_exchange(server.port, headers)
    assert (final[b':status'], data) == (b'200', b'')


def test_ipv6_binding(server_factory):
    if not socket.has_ipv6:
        pytest.skip('no IPv6 on this machine')
    ipv6 = server_factory('semantics_app:rsgi', working_dir=APPS_DIR, host='::1')
    with socket.create_connection(('::1', ipv6.port), timeout=10) as sock:
        sock.sendall(b'GET /headers HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n')
        response = read_response(sock.makefile('rb'))
    assert response.status == 200
    assert 'Listening at: http://[::1]:' in ipv6.output


# --- headers and connections --------------------------------------------------------------------------


def test_a_request_with_many_headers_reaches_the_app(server):
    many = ''.join(f'X-Header-{i}: {i}\r\n' for i in range(90))
    with connect(server.port) as sock:
        sock.sendall(f'GET /headers HTTP/1.1\r\nHost: x\r\n{many}\r\n'.encode())
        response = read_response(sock.makefile('rb'))
    assert (response.status, response.body) == (200, b'headers=91')


def test_more_headers_than_the_server_accepts_get_431(server):
    many = ''.join(f'X-Header-{i}: {i}\r\n' for i in range(150))
    before = reached(server)
    with connect(server.port) as sock:
        sock.sendall(f'GET /headers HTTP/1.1\r\nHost: x\r\n{many}\r\n'.encode())
        received, closed = read_until_closed(sock)
    assert received.startswith(b'HTTP/1.1 431 '), received
    assert closed
    assert reached(server) == before


@pytest.mark.parametrize(
    'request_bytes',
    [
        b'GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        b'GET /headers HTTP/1.0\r\n\r\n',
    ],
    ids=['Connection: close', 'HTTP/1.0'],
)
def test_the_server_closes_when_the_client_asks(server, request_bytes):
    with connect(server.port) as sock:
        sock.sendall(request_bytes)
        received, closed = read_until_closed(sock)
    assert received.split(b' ', 2)[1] == b'200'
    assert closed


def test_http_1_0_keep_alive_keeps_the_connection(server):
    with connect(server.port) as sock, sock.makefile('rb') as reader:
        for _ in range(3):
            sock.sendall(b'GET /headers HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
            response = read_response(reader)
            assert response.status == 200
            assert (response.header('connection') or '').lower() == 'keep-alive'


def test_a_204_from_the_app_goes_out_without_its_body(server):
    with connect(server.port) as sock:
        sock.sendall(
            b'GET /no-content HTTP/1.1\r\nHost: x\r\n\r\nGET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
        )
        received, _ = read_until_closed(sock)
    head, _, rest = received.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 204 '), received
    assert b'content-length' not in head.lower() and b'transfer-encoding' not in head.lower(), head
    assert rest.startswith(b'HTTP/1.1 200 '), rest
    assert b'oops' not in received


def test_an_encoded_slash_is_decoded_in_the_path_the_app_sees(server):
    # Every interface gives apps the decoded path (ASGI keeps the original in raw_path): an app that
    # routes on it cannot tell /a%2Fb from /a/b, as with other servers.
    with connect(server.port) as sock:
        sock.sendall(b'GET /path/a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        response = read_response(sock.makefile('rb'))
    assert response.body == b'path=/path/a/b'


def test_the_server_keeps_serving_after_every_case(server):
    assert wait_until(lambda: httpx.get(server.url('/headers'), timeout=5).status_code == 200, timeout=5)
