"""Fuzzing with hypothesis, bounded in examples: generated and mutated HTTP/1.1 requests against a live
server (it answers only with well-formed responses, never runs a request it refused, and stays up),
and the proxy-header parser (`granian.utils.proxies`) fed arbitrary header values.

The Rust parsers (request validation, ranges, static paths, WebSocket negotiation) have their own
property tests (proptest) next to their code; `cargo test` runs them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granian.utils.proxies import TrustedHosts, forwarded_from_headers
from tests_support.rawhttp import connect

APPS_DIR = Path(__file__).parent / 'apps'
STATUS_LINE = re.compile(rb'HTTP/1\.1 ([1-5]\d\d) [^\r\n]*\r\n')
REFUSALS = {400, 431, 505}


@pytest.fixture(scope='module')
def server(server_factory):
    return server_factory('validation_app:rsgi', working_dir=APPS_DIR)


def reached(server) -> int:
    return int(httpx.get(server.url('/count'), timeout=10).text)


def exchange(port: int, data: bytes) -> bytes:
    """Sends `data`; returns what arrives until the server closes or stays silent for 0.3 s."""
    with connect(port, timeout=5) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b''
        received = b''
        sock.settimeout(0.3)
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                return received
            if not chunk:
                return received
            received += chunk


TOKEN = st.text(alphabet='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&*+^`|~', min_size=1)
VALUE = st.text(alphabet=[chr(c) for c in range(0x20, 0x7F)], max_size=30)


@st.composite
def requests(draw) -> bytes:
    method = draw(st.sampled_from(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH']))
    path = '/' + draw(st.text(alphabet='abcdefghijklmnopqrstuvwxyz0123456789/._~-%?=&', max_size=20))
    headers = [('Host', 'fuzz')] + draw(st.lists(st.tuples(TOKEN, VALUE), max_size=6))
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(['none', 'length', 'chunked']))
    if framing == 'length':
        headers.append(('Content-Length', str(len(body))))
    elif framing == 'chunked':
        headers.append(('Transfer-Encoding', 'chunked'))
        body = (b'%x\r\n%s\r\n' % (len(body), body) if body else b'') + b'0\r\n\r\n'
    else:
        body = b''
    # Connection: close ends each exchange at the answer rather than at the read timeout.
    headers.append(('Connection', 'close'))
    lines = [f'{method} {path} HTTP/1.1'] + [f'{name}: {value.strip()}' for name, value in headers]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body


INTERESTING = b'\r\n\x00\t :;,="0123456789abcdefxX-\x7f\x80\xff'


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(requests()))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        byte = draw(st.sampled_from(INTERESTING))
        kind = draw(st.sampled_from(['insert', 'replace', 'delete']))
        if kind == 'insert' or at == len(data):
            data.insert(at, byte)
        elif kind == 'replace':
            data[at] = byte
        else:
            del data[at]
    return bytes(data)


FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_answer(server, data: bytes) -> None:
    before = reached(server)
    received = exchange(server.port, data)
    statuses = []
    at = 0
    while at < len(received):
        match = STATUS_LINE.match(received, at)
        assert match, f'not an HTTP/1.1 response at byte {at}: {received[at : at + 80]!r} (sent {data!r})'
        statuses.append(int(match.group(1)))
        end = received.find(b'\r\n\r\n', at)
        length = re.search(rb'(?i)\r\ncontent-length: (\d+)', received[at:end])
        at = end + 4 + (int(length.group(1)) if length else 0)
    after = reached(server)
    if statuses and statuses[0] in REFUSALS:
        assert after == before, f'a request answered {statuses[0]} reached the app (sent {data!r})'
    if statuses == [200]:
        assert after == before + 1


@FUZZ
@given(data=requests())
def test_generated_requests_are_answered_well_formed(server, data):
    check_answer(server, data)


@FUZZ
@given(data=mutated())
def test_mutated_requests_are_answered_or_refused_never_misread(server, data):
    check_answer(server, data)


@FUZZ
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_break_the_server(server, data):
    # Ended by a blank line, so that the server has a whole "head" to judge rather than waiting.
    check_answer(server, data + b'\r\n\r\n')


def test_the_server_is_still_serving_after_the_fuzzing(server):
    assert httpx.get(server.url('/ok'), timeout=10).status_code == 200


# --- proxy headers ----------------------------------------------------------------------------------

ADDRESSES = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda address: f'[{address}]:{8080}'),
    st.sampled_from(['unknown', '_hidden', '', 'not-an-ip', '1.2.3.4:99999', '1.2.3.4:\u00b2', '[::1', '::1']),
)
# Header values as apps receive them: bytes decoded as latin-1 (digits like '²' included).
HEADER_TEXT = st.text(alphabet=[chr(c) for c in range(0x20, 0x100) if c != 0x7F], max_size=60)


def forwarded_values() -> st.SearchStrategy[str]:
    element = st.lists(
        st.tuples(st.sampled_from(['for', 'proto', 'by', 'host', 'For', 'x']), st.one_of(ADDRESSES, HEADER_TEXT)),
        max_size=3,
    ).map(lambda pairs: ';'.join(f'{name}={value}' for name, value in pairs))
    return st.one_of(st.lists(element, max_size=4).map(', '.join), HEADER_TEXT)


@settings(max_examples=400, deadline=None)
@given(
    forwarded=st.lists(forwarded_values(), max_size=2),
    x_for=st.lists(st.one_of(st.lists(ADDRESSES, max_size=4).map(', '.join), HEADER_TEXT), max_size=2),
    x_proto=st.lists(st.one_of(st.sampled_from(['https', 'HTTP', 'wss', 'ftp', '']), HEADER_TEXT), max_size=2),
    trusted=st.sampled_from(['127.0.0.1', '10.0.0.0/8', '*', 'unix', '::1, 192.168.0.0/16']),
)
def test_proxy_headers_give_a_client_from_the_headers_or_nothing(forwarded, x_for, x_proto, trusted):
    headers = {'forwarded': forwarded, 'x-forwarded-for': x_for, 'x-forwarded-proto': x_proto}
    result = forwarded_from_headers(lambda name: headers.get(name, []), TrustedHosts(trusted))
    assert result.scheme in (None, 'http', 'https', 'ws', 'wss')
    assert result.port is None or 0 <= result.port <= 65535
    if result.client is not None:
        assert result.client in ' '.join(forwarded + x_for)


PROXIES = ipaddress.ip_network('10.0.0.0/8')


@settings(max_examples=300, deadline=None)
@given(chain=st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(network='10.0.0.0/8')), min_size=1, max_size=6))
def test_the_client_is_the_last_hop_that_is_not_a_trusted_proxy(chain):
    headers = {'x-forwarded-for': [', '.join(map(str, chain))]}
    result = forwarded_from_headers(lambda name: headers.get(name, []), TrustedHosts('10.0.0.0/8'))
    untrusted = [address for address in chain if address not in PROXIES]
    expected = untrusted[-1] if untrusted else chain[0]
    assert result.client == str(expected)


def test_a_socket_that_sends_nothing_is_closed_without_an_answer(server):
    with socket.create_connection(('127.0.0.1', server.port), timeout=5) as sock:
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b''
