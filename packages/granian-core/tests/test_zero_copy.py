"""Zero-copy file bodies: on plain-text HTTP/1 connections, files larger than 64 KiB (static files and
files an app sends) go from the page cache to the socket with sendfile; over HTTP/2, TLS, or with
`--http1-pipeline-flush` they are read and copied. Every byte must arrive as it is on disk, in order,
whichever path sent it; the system calls of the worker (strace) show which path did."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests_support.certs import server_certificate
from tests_support.rawhttp import connect, get_request, read_response
from tests_support.server import RunningServer
from tests_support.syscalls import SyscallTrace

APPS_DIR = Path(__file__).parent / 'apps'
BIG_SIZE = 3_000_017  # several sendfile frames (1 MiB each), ending mid-page
MID_SIZE = 100_003  # above the 64 KiB read-whole limit: one frame
SMALL_SIZE = 10_000  # read whole and copied on every connection


@pytest.fixture(scope='module')
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp('zero-copy')
    for name, size in (('big.bin', BIG_SIZE), ('mid.bin', MID_SIZE), ('small.bin', SMALL_SIZE)):
        (directory / name).write_bytes(os.urandom(size))
    return directory


def _static_args(files: Path) -> list[str]:
    return ['--static-path-mount', str(files), '--static-path-route', '/static']


def worker_pid(server: RunningServer) -> int:
    assert server.wait_for_output('Started worker-1'), server.output
    (pid,) = re.findall(r'Started worker-1 \(pid (\d+)\)', server.output)
    return int(pid)


def sendfile_bytes(trace: SyscallTrace) -> int:
    assert all(result >= 0 for result in trace.results), trace.results
    return sum(trace.results)


@pytest.fixture(scope='module')
def plain(server_factory, files: Path) -> RunningServer:
    return server_factory('address_app:rsgi', working_dir=APPS_DIR, extra_args=_static_args(files))


def test_static_files_go_zero_copy_over_http1(plain, files):
    content = (files / 'big.bin').read_bytes()
    with (
        SyscallTrace(worker_pid(plain), ('sendfile',)) as trace,
        httpx.Client(base_url=plain.base_url, timeout=30) as client,
    ):
        whole = client.get('/static/big.bin')
        part = client.get('/static/big.bin', headers={'range': 'bytes=1000001-2500000'})
        small = client.get('/static/small.bin')
        with connect(plain.port, timeout=30) as sock:
            sock.sendall(get_request('/static/mid.bin', version='HTTP/1.0'))
            with sock.makefile('rb') as reader:
                old = read_response(reader)
    assert whole.content == content
    assert (part.status_code, part.content) == (206, content[1000001:2500001])
    assert small.content == (files / 'small.bin').read_bytes()
    assert (old.status, old.body) == (200, (files / 'mid.bin').read_bytes())
    # Every byte of the large bodies went through sendfile, none of the small one.
    assert sendfile_bytes(trace) == BIG_SIZE + 1_500_000 + MID_SIZE


def test_pipelined_responses_keep_their_order_and_bytes(plain, files):
    """File bodies sent by the kernel between responses hyper writes itself, on one connection."""
    paths = ['/static/big.bin', '/pid', '/static/small.bin', '/static/mid.bin', '/static/missing', '/static/big.bin']
    requests = b''.join(get_request(path) for path in paths)
    with connect(plain.port, timeout=30) as sock:
        sock.sendall(requests)
        with sock.makefile('rb') as reader:
            responses = [read_response(reader) for _ in paths]
    expected = {name: (files / name).read_bytes() for name in ('big.bin', 'small.bin', 'mid.bin')}
    assert [r.status for r in responses] == [200, 200, 200, 200, 404, 200]
    assert responses[0].body == expected['big.bin'] and responses[5].body == expected['big.bin']
    assert responses[1].body == str(worker_pid(plain)).encode()
    assert responses[2].body == expected['small.bin']
    assert responses[3].body == expected['mid.bin']


def test_http2_never_uses_sendfile(plain, files):
    with (
        SyscallTrace(worker_pid(plain), ('sendfile',)) as trace,
        httpx.Client(base_url=plain.base_url, http1=False, http2=True, timeout=30) as client,
    ):
        response = client.get('/static/big.bin')
    assert response.http_version == 'HTTP/2'
    assert hashlib.sha256(response.content).digest() == hashlib.sha256((files / 'big.bin').read_bytes()).digest()
    assert trace.results == []


def test_tls_never_uses_sendfile(server_factory, files, tmp_path):
    cert, key, context = server_certificate(tmp_path)
    args = [*_static_args(files), '--ssl-certificate', str(cert), '--ssl-keyfile', str(key)]
    server = server_factory('address_app:rsgi', working_dir=APPS_DIR, extra_args=args)
    with SyscallTrace(worker_pid(server), ('sendfile',)) as trace, httpx.Client(verify=context, timeout=30) as client:
        response = client.get(f'https://127.0.0.1:{server.port}/static/big.bin')
    assert response.content == (files / 'big.bin').read_bytes()
    assert trace.results == []


def test_pipeline_flush_connections_copy_file_bodies(server_factory, files):
    """hyper copies body frames into one buffer when it holds back pipelined responses."""
    args = [*_static_args(files), '--http1-pipeline-flush']
    server = server_factory('address_app:rsgi', working_dir=APPS_DIR, extra_args=args)
    with (
        SyscallTrace(worker_pid(server), ('sendfile',)) as trace,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        response = client.get('/static/big.bin')
    assert response.content == (files / 'big.bin').read_bytes()
    assert trace.results == []


@pytest.mark.parametrize('interface', ['rsgi', 'asgi', 'wsgi'])
def test_files_sent_by_apps_go_zero_copy(server_factory, files, interface):
    server = server_factory(f'file_app:{interface}', working_dir=APPS_DIR, interface=interface)
    with (
        SyscallTrace(worker_pid(server), ('sendfile',)) as trace,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        big = client.get('/file', params={'path': str(files / 'big.bin')})
        small = client.get('/file', params={'path': str(files / 'small.bin')})
    assert big.content == (files / 'big.bin').read_bytes()
    assert small.content == (files / 'small.bin').read_bytes()
    assert sendfile_bytes(trace) == BIG_SIZE


LARGE = 48 * 1024 * 1024  # more than loopback socket buffers hold while the client waits


def _start_download(port: int, path: str) -> tuple[socket.socket, bytes]:
    """Sends a GET and reads the response head; returns the socket and the body bytes read with it."""
    sock = connect(port, timeout=30)
    sock.sendall(get_request(path))
    head = b''
    while b'\r\n\r\n' not in head:
        head += sock.recv(65536)
    assert f'content-length: {LARGE}'.encode() in head.lower()
    time.sleep(0.3)  # the server fills the socket buffers and waits
    return sock, head.split(b'\r\n\r\n', 1)[1]


def _read_until_closed(sock: socket.socket, received: bytes, limit: int) -> tuple[bytes, bool]:
    """Reads until the server closes the connection (True) or `limit` bytes arrived (False)."""
    sock.settimeout(10)
    while len(received) < limit:
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b''
        if not chunk:
            return received, True
        received += chunk
    return received, False


@pytest.fixture
def large_file_server(server_factory, tmp_path: Path) -> tuple[RunningServer, Path, bytes]:
    directory = tmp_path / 'large'
    directory.mkdir()
    content = os.urandom(1024 * 1024) * 48
    (directory / 'large.bin').write_bytes(content)
    server = server_factory('address_app:rsgi', working_dir=APPS_DIR, extra_args=_static_args(directory))
    return server, directory / 'large.bin', content


def test_a_file_that_shrinks_while_sent_ends_the_response_short(large_file_server):
    """The connection closes before the promised length, so no client takes the response as complete,
    and the server keeps serving. (Bytes queued before the truncation may show it: with sendfile the
    socket holds the file's pages, not a copy; docs/deployment.md says to replace files by renaming.)"""
    server, path, content = large_file_server
    sock, received = _start_download(server.port, '/static/large.bin')
    with sock:
        os.truncate(path, 1024 * 1024)
        received, closed = _read_until_closed(sock, received, LARGE)
    assert closed
    assert 1024 * 1024 <= len(received) < LARGE
    assert received[: 1024 * 1024] == content[: 1024 * 1024]
    assert httpx.get(server.url('/pid'), timeout=10).text == str(worker_pid(server))


def test_a_file_replaced_by_rename_while_sent_arrives_whole(large_file_server):
    """The response keeps the file it opened: a deploy that writes a new file and renames it over the
    old one never mixes their contents."""
    server, path, content = large_file_server
    sock, received = _start_download(server.port, '/static/large.bin')
    with sock:
        replacement = path.with_name('large.bin.new')
        replacement.write_bytes(b'new')
        os.replace(replacement, path)
        received, closed = _read_until_closed(sock, received, LARGE)
    assert not closed
    assert len(received) == LARGE and received == content
    assert httpx.get(server.url('/static/large.bin'), timeout=10).content == b'new'
