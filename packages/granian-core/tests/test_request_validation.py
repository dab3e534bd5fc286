"""Request validation before hyper: the HTTP/1.1 inputs RFC 9112 says to refuse, which hyper's parser
lets through, are answered 400 (505 for an unsupported version, 431 for a head that outgrows the
buffer) without reaching the app; the requests before a refused one on the connection are answered,
in order, and nothing after it is read. A chunked body that breaks its framing ends the connection."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests_support.rawhttp import connect
from tests_support.sockets import read_until_closed

APPS_DIR = Path(__file__).parent / 'apps'


@pytest.fixture(scope='module')
def server(server_factory):
    args = ['--access-log', '--access-log-fmt', 'access %(method)s %(status)d']
    return server_factory('validation_app:rsgi', working_dir=APPS_DIR, extra_args=args)


def reached(server) -> int:
    return int(httpx.get(server.url('/count'), timeout=10).text)


def talk(server, data: bytes, *, pieces: int = 1, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Sends `data` (in `pieces` writes) and reads until the server closes (True) or goes quiet."""
    with connect(server.port, timeout=timeout) as sock:
        step = max(1, len(data) // pieces)
        for start in range(0, len(data), step):
            sock.sendall(data[start : start + step])
            if pieces > 1:
                time.sleep(0.005)
        return read_until_closed(sock, timeout=1.0)


def statuses(received: bytes) -> list[int]:
    """The status of each response (a status line may follow the previous body directly)."""
    return [int(status) for status in re.findall(rb'HTTP/1\.[01] (\d{3}) ', received)]


HOST = b'Host: x\r\n'
REFUSED_HEADS = {
    'NUL in the target': b'GET /a\x00b HTTP/1.1\r\n' + HOST + b'\r\n',
    'non-ASCII in the target': b'GET /caf\xc3\xa9 HTTP/1.1\r\n' + HOST + b'\r\n',
    'space in the target': b'GET /a b HTTP/1.1\r\n' + HOST + b'\r\n',
    'BEL in a header value': b'GET / HTTP/1.1\r\n' + HOST + b'X: a\x07b\r\n\r\n',
    'DEL in a header value': b'GET / HTTP/1.1\r\n' + HOST + b'X: a\x7fb\r\n\r\n',
    'NUL in a header value': b'GET / HTTP/1.1\r\n' + HOST + b'X: a\x00b\r\n\r\n',
    'bare CR in a header value': b'GET / HTTP/1.1\r\n' + HOST + b'X: a\rb\r\n\r\n',
    'bare LF line endings': b'GET / HTTP/1.1\nHost: x\n\n',
    'one bare LF': b'GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n',
    'obs-fold': b'GET / HTTP/1.1\r\n' + HOST + b'X: a\r\n  folded\r\n\r\n',
    'space before the colon': b'GET / HTTP/1.1\r\nHost : x\r\n\r\n',
    'a name that is not a token': b'GET / HTTP/1.1\r\n' + HOST + b'X(y): z\r\n\r\n',
    'no Host in HTTP/1.1': b'GET / HTTP/1.1\r\n\r\n',
    'two Hosts': b'GET / HTTP/1.1\r\n' + HOST + b'Host: y\r\n\r\n',
    'Content-Length with Transfer-Encoding': b'POST / HTTP/1.1\r\n'
    + HOST
    + b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'two Content-Lengths': b'POST / HTTP/1.1\r\n' + HOST + b'Content-Length: 1\r\nContent-Length: 1\r\n\r\nx',
    'a Content-Length list': b'POST / HTTP/1.1\r\n' + HOST + b'Content-Length: 1, 1\r\n\r\nx',
    'a signed Content-Length': b'POST / HTTP/1.1\r\n' + HOST + b'Content-Length: +1\r\n\r\nx',
    'a hex Content-Length': b'POST / HTTP/1.1\r\n' + HOST + b'Content-Length: 0x1\r\n\r\nx',
    'chunked not last': b'POST / HTTP/1.1\r\n' + HOST + b'Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
    'a coding list': b'POST / HTTP/1.1\r\n' + HOST + b'Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    'two Transfer-Encodings': b'POST / HTTP/1.1\r\n'
    + HOST
    + b'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'xchunked': b'POST / HTTP/1.1\r\n' + HOST + b'Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
    'space before the Transfer-Encoding colon': b'POST / HTTP/1.1\r\n'
    + HOST
    + b'Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'Transfer-Encoding in HTTP/1.0': b'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'authority-form on GET': b'GET example.com:80 HTTP/1.1\r\n' + HOST + b'\r\n',
    'asterisk on GET': b'GET * HTTP/1.1\r\n' + HOST + b'\r\n',
    'origin-form on CONNECT': b'CONNECT /x HTTP/1.1\r\n' + HOST + b'\r\n',
    'two spaces in the request line': b'GET  / HTTP/1.1\r\n' + HOST + b'\r\n',
    'a lowercase version': b'GET / http/1.1\r\n' + HOST + b'\r\n',
    'a method that is not a token': b'G(T / HTTP/1.1\r\n' + HOST + b'\r\n',
    'no version': b'GET /\r\n' + HOST + b'\r\n',
    'a method alone': b'GET\r\n' + HOST + b'\r\n',
    'a space before the method': b' GET / HTTP/1.1\r\n' + HOST + b'\r\n',
    'a fourth part in the request line': b'GET / HTTP/1.1 x\r\n' + HOST + b'\r\n',
    'a space after the version': b'GET / HTTP/1.1 \r\n' + HOST + b'\r\n',
    'a fourth part after the preface line': b'PRI * HTTP/2.0 x\r\n\r\nSM\r\n\r\n',
}


@pytest.mark.parametrize('request_bytes', list(REFUSED_HEADS.values()), ids=list(REFUSED_HEADS))
def test_malformed_heads_are_refused_before_the_app(server, request_bytes):
    before = reached(server)
    received, closed = talk(server, request_bytes)
    assert statuses(received) == [400], received
    assert closed
    assert reached(server) == before


def test_versions_other_than_1_0_and_1_1_get_505(server):
    received, closed = talk(server, b'GET / HTTP/1.2\r\n' + HOST + b'\r\n')
    assert statuses(received) == [505] and closed


def test_requests_before_a_refused_one_are_answered_in_order_and_nothing_after_it_runs(server):
    before = reached(server)
    pipelined = (
        b'GET /first HTTP/1.1\r\n' + HOST + b'\r\n'
        b'POST /second HTTP/1.1\r\n' + HOST + b'Content-Length: 3\r\n\r\nabc'
        b'GET /bad HTTP/1.1\r\n' + HOST + b'X: \x01\r\n\r\n'
        b'GET /smuggled HTTP/1.1\r\n' + HOST + b'\r\n'
    )
    received, closed = talk(server, pipelined)
    assert statuses(received) == [200, 200, 400] and closed
    assert received.index(b'path=/first body=0') < received.index(b'path=/second body=3')
    assert b'/smuggled' not in received
    assert reached(server) == before + 2


@pytest.mark.parametrize(
    'smuggling',
    [
        # The front end reads Content-Length, hyper would have read chunked (or the other way round).
        b'POST / HTTP/1.1\r\n' + HOST + b'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n'
        b'0\r\n\r\nGET /smuggled HTTP/1.1\r\n' + HOST + b'\r\n',
        b'POST / HTTP/1.1\r\n' + HOST + b'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n'
        b'0\r\n\r\nGET /smuggled HTTP/1.1\r\n' + HOST + b'\r\n',
        b'POST / HTTP/1.1\r\n' + HOST + b'Content-Length: 0\r\nContent-Length: 44\r\n\r\n'
        b'GET /smuggled HTTP/1.1\r\n' + HOST + b'\r\n',
    ],
    ids=['CL.TE', 'TE.TE', 'CL.CL'],
)
def test_smuggling_attempts_never_run_the_smuggled_request(server, smuggling):
    before = reached(server)
    received, closed = talk(server, smuggling)
    assert statuses(received) == [400] and closed
    assert reached(server) == before


BROKEN_BODIES = {
    'bare CR in a chunk extension': b'3;a\rb\r\nabc\r\n0\r\n\r\n',
    'whitespace after the chunk size': b'3 \r\nabc\r\n0\r\n\r\n',
    'whitespace before the chunk size': b' 3\r\nabc\r\n0\r\n\r\n',
    'bare LF after the chunk size': b'3\nabc\r\n0\r\n\r\n',
    'a 0x prefix': b'0x3\r\nabc\r\n0\r\n\r\n',
    'data longer than its size': b'3\r\nabcd\r\n0\r\n\r\n',
    'a chunk size over 64 bits': b'10000000000000000\r\nabc\r\n0\r\n\r\n',
    'Content-Length as a trailer': b'3\r\nabc\r\n0\r\nContent-Length: 10\r\n\r\n',
    'Transfer-Encoding as a trailer': b'3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n',
    'Host as a trailer': b'3\r\nabc\r\n0\r\nHost: y\r\n\r\n',
}


@pytest.mark.parametrize('body', list(BROKEN_BODIES.values()), ids=list(BROKEN_BODIES))
def test_broken_chunked_bodies_end_the_connection(server, body):
    """The head was valid and reached the app, which sees its body end short, as when a client
    leaves; nothing after the break is read."""
    head = b'POST /upload HTTP/1.1\r\n' + HOST + b'Transfer-Encoding: chunked\r\n\r\n'
    received, closed = talk(server, head + body + b'GET /smuggled HTTP/1.1\r\n' + HOST + b'\r\n')
    assert closed
    assert b'/smuggled' not in received
    assert b'path=/upload body=3' not in received


VALID = {
    'origin-form': (b'GET /a/b?c=d HTTP/1.1\r\n' + HOST + b'\r\n', b'path=/a/b body=0'),
    'absolute-form': (b'GET http://x/abs HTTP/1.1\r\n' + HOST + b'\r\n', b'path=/abs body=0'),
    'asterisk-form on OPTIONS': (b'OPTIONS * HTTP/1.1\r\n' + HOST + b'\r\n', b'body=0'),
    'HTTP/1.0 without Host': (b'GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', b'path=/old body=0'),
    'an empty line before the request': (b'\r\nGET /late HTTP/1.1\r\n' + HOST + b'\r\n', b'path=/late body=0'),
    'obs-text in a value': (b'GET /t HTTP/1.1\r\n' + HOST + b'X: caf\xc3\xa9\r\n\r\n', b'path=/t body=0'),
    'tabs around a value': (b'GET /t HTTP/1.1\r\n' + HOST + b'X:\t v \t\r\n\r\n', b'path=/t body=0'),
    'Content-Length': (b'POST /p HTTP/1.1\r\n' + HOST + b'Content-Length: 5\r\n\r\nhello', b'path=/p body=5'),
    'chunked with extensions and trailers': (
        b'POST /c HTTP/1.1\r\n' + HOST + b'Transfer-Encoding: Chunked\r\n\r\n'
        b'3;name=value\r\nabc\r\n2 ;q="x y"\r\nde\r\n0\r\nX-Checksum: 1\r\n\r\n',
        b'path=/c body=5',
    ),
}


@pytest.mark.parametrize('pieces', [1, 97], ids=['whole', 'in-pieces'])
@pytest.mark.parametrize(('request_bytes', 'answer'), list(VALID.values()), ids=list(VALID))
def test_valid_requests_pass_whole_or_in_pieces(server, request_bytes, answer, pieces):
    """Also when the head, chunk lines and trailers arrive a few bytes at a time."""
    received, _ = talk(server, request_bytes + b'GET /next HTTP/1.1\r\n' + HOST + b'\r\n', pieces=pieces)
    assert statuses(received) == [200, 200], received
    assert answer in received and b'path=/next body=0' in received


def test_a_head_that_outgrows_the_buffer_gets_431(server_factory):
    server = server_factory('validation_app:rsgi', working_dir=APPS_DIR, extra_args=['--http1-buffer-size', '8192'])
    received, closed = talk(server, b'GET / HTTP/1.1\r\n' + HOST + b'X: ' + b'a' * 10_000)
    assert statuses(received) == [431] and closed


def test_a_request_target_over_64_kib_gets_414(server):
    before = reached(server)
    long_path = b'/' + b'a' * 70_000
    received, closed = talk(server, b'GET ' + long_path + b' HTTP/1.1\r\n' + HOST + b'\r\n')
    assert statuses(received) == [414] and closed
    # Up to the limit, a long target is served.
    fine, _ = talk(server, b'GET /' + b'b' * 60_000 + b' HTTP/1.1\r\n' + HOST + b'Connection: close\r\n\r\n')
    assert statuses(fine) == [200]
    assert reached(server) == before + 1


def test_refusals_are_in_the_access_log(server):
    talk(server, b'GET / HTTP/1.1\r\n' + HOST + b'X: \x01\r\n\r\n')
    deadline = time.monotonic() + 5
    while 'access - 400' not in server.output and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 'access - 400' in server.output


def test_an_upgrade_header_does_not_turn_checking_off(server):
    """Only a response that switches protocols ends the checking. A request that merely asks (the app
    answers it as plain HTTP) is the last one hyper reads on that connection; nothing after it runs."""
    before = reached(server)
    asking = b'GET /asks HTTP/1.1\r\n' + HOST + b'Upgrade: anything\r\nConnection: upgrade\r\n\r\n'
    received, closed = talk(
        server, asking + b'GET /bad HTTP/1.1\nHost: x\n\nGET /smuggled HTTP/1.1\r\n' + HOST + b'\r\n'
    )
    assert closed
    assert 400 not in statuses(received) or statuses(received) == [200, 400]
    assert b'/smuggled' not in received
    assert reached(server) == before + 1


def test_http2_with_prior_knowledge_passes_unchecked(server):
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        response = client.get(server.url('/h2'))
    assert response.http_version == 'HTTP/2' and response.text == 'path=/h2 body=0'
