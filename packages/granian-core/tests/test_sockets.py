"""Where the server listens: Unix domain sockets (`--uds`, `--uds-permissions`), an inherited socket
(`--fd`), and systemd socket activation (`LISTEN_FDS`), including a restart behind an activated socket
that loses no request."""

from __future__ import annotations

import collections
import http.client
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests_support.server import (
    HOST,
    RunningServer,
    free_port,
    get_fresh_connection,
    run_granian,
    socket_activated,
)
from tests_support.waiting import wait_until

APPS_DIR = Path(__file__).parent / 'apps'


class ActivatedServer(RunningServer):
    """A server started as systemd starts a socket-activated service: the sockets on descriptors 3, 4, ..."""

    def __init__(self, target: str, sockets: list[socket.socket], **kwargs: object) -> None:
        self.sockets = sockets
        super().__init__(target, pass_fds=[sock.fileno() for sock in sockets], **kwargs)  # type: ignore[arg-type]

    @property
    def command(self) -> list[str]:
        return socket_activated(super().command[1:], self.sockets)


class UnixFdServer(RunningServer):
    """A server given a listening Unix socket with `--fd`: ready when that socket's path accepts."""

    def __init__(self, target: str, sock: socket.socket, **kwargs: object) -> None:
        self.path = sock.getsockname()
        args = ['--fd', str(sock.fileno())]
        super().__init__(target, pass_fds=[sock.fileno()], extra_args=args, **kwargs)  # type: ignore[arg-type]

    def accepts_connections(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.5)
                probe.connect(self.path)
                probe.sendall(b'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
                return probe.recv(12).startswith(b'HTTP/1.1 200')
        except OSError:
            return False


def _listening_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(128)
    return sock


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be long.
    directory = Path(f'/tmp/granian-uds-{os.getpid()}-{time.monotonic_ns()}')
    directory.mkdir()
    yield directory / 'app.sock'
    for leftover in directory.iterdir():
        leftover.unlink()
    directory.rmdir()


def _unix_client(path: Path) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url='http://localhost', timeout=10)


@pytest.mark.parametrize('interface', ['rsgi', 'asgi', 'wsgi'])
def test_unix_socket_serves_each_interface_with_the_path_as_address(socket_path, interface):
    with (
        RunningServer(f'address_app:{interface}', working_dir=APPS_DIR, interface=interface, uds=socket_path) as server,
        _unix_client(socket_path) as client,
    ):
        report = client.get('/').json()
        assert 'Listening at: unix:' + str(socket_path) in server.output
    path = str(socket_path)
    expected = {
        'rsgi': {'server': path, 'client': '', 'scheme': 'http'},
        'asgi': {'server': [path, None], 'client': None, 'scheme': 'http'},
        'wsgi': {
            'SERVER_NAME': path,
            'SERVER_PORT': '',
            'REMOTE_ADDR': '',
            'REMOTE_PORT': '',
            'wsgi.url_scheme': 'http',
        },
    }[interface]
    assert report == expected
    # The socket file is removed when the server stops.
    assert not socket_path.exists()


@pytest.mark.parametrize('interface', ['rsgi', 'asgi', 'wsgi'])
def test_proxy_headers_behind_a_unix_socket_need_trust_in_unix_peers(socket_path, interface):
    forwarded = {'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https'}
    with (
        RunningServer(f'proxied_app:{interface}', working_dir=APPS_DIR, interface=interface, uds=socket_path),
        _unix_client(socket_path) as client,
    ):
        assert client.get('/', headers=forwarded).json() == ['', 'http']  # trusts 127.0.0.1 only
    with (
        RunningServer(f'proxied_app:unix_{interface}', working_dir=APPS_DIR, interface=interface, uds=socket_path),
        _unix_client(socket_path) as client,
    ):
        assert client.get('/', headers=forwarded).json() == ['203.0.113.7', 'https']


def test_unix_socket_permissions_and_http2(socket_path):
    args = ['--uds-permissions', '640']
    with RunningServer('address_app:rsgi', working_dir=APPS_DIR, uds=socket_path, extra_args=args) as server:
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o640
        assert stat.S_ISSOCK(os.stat(socket_path).st_mode)
        transport = httpx.HTTPTransport(uds=str(socket_path), http1=False, http2=True)
        with httpx.Client(transport=transport, base_url='http://localhost', timeout=10) as client:
            response = client.get('/')
        assert response.http_version == 'HTTP/2'
        assert response.json()['server'] == str(socket_path)
        assert server.accepts_connections()


def test_https_over_a_unix_socket(socket_path, tmp_path):
    ca = trustme.CA()
    leaf = ca.issue_cert('localhost')
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    args = ['--ssl-certificate', str(cert), '--ssl-keyfile', str(key)]
    with RunningServer('address_app:rsgi', working_dir=APPS_DIR, uds=socket_path, extra_args=args):
        transport = httpx.HTTPTransport(uds=str(socket_path), verify=context, http2=True)
        with httpx.Client(transport=transport, base_url='https://localhost', timeout=10) as client:
            response = client.get('/')
    assert response.http_version == 'HTTP/2'
    assert response.json() == {'server': str(socket_path), 'client': '', 'scheme': 'https'}


def test_unix_socket_permissions_from_the_environment(socket_path):
    env = {'GRANIAN_UDS_PERMISSIONS': '0o600'}
    with RunningServer('address_app:rsgi', working_dir=APPS_DIR, uds=socket_path, env=env):
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600


def test_a_stale_socket_file_is_replaced_and_a_live_one_refused(socket_path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_path))
    stale.close()  # the file stays, with nothing listening
    assert socket_path.exists()
    with RunningServer('address_app:rsgi', working_dir=APPS_DIR, uds=socket_path) as server:
        assert server.wait_for_output('Removing stale socket file')
        second = run_granian(['--interface', 'rsgi', '--uds', str(socket_path), 'address_app:rsgi'], cwd=APPS_DIR)
        assert second.returncode == 1
        assert (
            f'cannot listen on unix:{socket_path}: another server is listening on it' in second.stdout + second.stderr
        )
        # The refused server left the running one's socket alone.
        with _unix_client(socket_path) as client:
            assert client.get('/').status_code == 200


def test_a_path_that_is_not_a_socket_is_refused(socket_path):
    socket_path.write_text('not a socket')
    result = run_granian(['--interface', 'rsgi', '--uds', str(socket_path), 'address_app:rsgi'], cwd=APPS_DIR)
    assert result.returncode == 1
    assert 'the path exists and is not a socket' in result.stdout + result.stderr
    assert socket_path.read_text() == 'not a socket'


def test_fd_serves_an_inherited_tcp_socket():
    sock = _listening_socket()
    port = sock.getsockname()[1]
    try:
        args = ['--fd', str(sock.fileno())]
        with RunningServer(
            'address_app:rsgi', working_dir=APPS_DIR, port=port, pass_fds=[sock.fileno()], extra_args=args
        ) as server:
            status, body = get_fresh_connection(port, '/')
            assert status == 200
            assert f'"server": "{HOST}:{port}"' in body
            assert f'Listening at: http://{HOST}:{port} (descriptor {sock.fileno()}, from --fd)' in server.output
        # The socket belongs to whoever passed it: still listening after the server stopped.
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    finally:
        sock.close()


def test_fd_serves_an_inherited_unix_socket(socket_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(socket_path))
    sock.listen(16)
    try:
        with UnixFdServer('address_app:rsgi', sock, working_dir=APPS_DIR), _unix_client(socket_path) as client:
            assert client.get('/').json()['server'] == str(socket_path)
        # Not ours to remove.
        assert socket_path.exists()
    finally:
        sock.close()


def test_fd_that_is_not_a_listening_socket_is_refused(tmp_path):
    unopened = run_granian(['--interface', 'rsgi', '--fd', '987', 'address_app:rsgi'], cwd=APPS_DIR)
    assert unopened.returncode == 1
    assert '--fd: descriptor 987 is not an open socket' in unopened.stdout + unopened.stderr
    idle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        idle.bind((HOST, 0))
        fd = idle.fileno()
        argv = [sys.executable, '-m', 'granian', '--interface', 'rsgi', '--fd', str(fd), 'address_app:rsgi']
        result = subprocess.run(
            argv, check=False, cwd=APPS_DIR, pass_fds=[fd], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 1
        assert f'--fd: descriptor {fd} is not listening' in result.stdout + result.stderr
    finally:
        idle.close()


def test_fd_and_uds_together_are_refused(socket_path):
    result = run_granian(['--interface', 'rsgi', '--fd', '3', '--uds', str(socket_path), 'address_app:rsgi'])
    assert result.returncode == 2
    assert 'give either fd or uds, not both' in result.stderr


def test_socket_activation_serves_the_activated_socket():
    sock = _listening_socket()
    port = sock.getsockname()[1]
    try:
        with ActivatedServer('address_app:rsgi', [sock], working_dir=APPS_DIR, port=port) as server:
            assert server.wait_for_output('Started worker-1')
            assert get_fresh_connection(port, '/')[0] == 200
            assert '(descriptor 3, from socket activation)' in server.output
    finally:
        sock.close()


def test_socket_activation_with_several_sockets_needs_fd():
    first, second = _listening_socket(), _listening_socket()
    try:
        many = ActivatedServer('address_app:rsgi', [first, second], working_dir=APPS_DIR, port=free_port())
        with pytest.raises(Exception, match='socket activation passed 2 sockets'):
            many.start()
        many.close()
        port = second.getsockname()[1]
        chosen = ActivatedServer(
            'address_app:rsgi', [first, second], working_dir=APPS_DIR, port=port, extra_args=['--fd', '4']
        )
        with chosen:
            assert chosen.wait_for_output('Started worker-1')
            assert get_fresh_connection(port, '/')[0] == 200
    finally:
        first.close()
        second.close()


@pytest.mark.timeout(90)
def test_restart_behind_an_activated_socket_loses_no_request():
    """systemd keeps the socket while the service restarts: connections made meanwhile wait in the
    backlog and the next server answers them; the old one finishes what it accepted."""
    sock = _listening_socket()
    port = sock.getsockname()[1]
    results: list[tuple[int, str] | Exception] = []
    done = threading.Event()

    def steady_client() -> None:
        while not done.is_set():
            try:
                results.append(get_fresh_connection(port, '/pid', timeout=30))
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                results.append(exc)

    server_args = {'working_dir': APPS_DIR, 'port': port, 'extra_args': ['--workers', '2']}
    client = threading.Thread(target=steady_client)
    try:
        with ActivatedServer('address_app:rsgi', [sock], **server_args) as first:
            assert wait_until(lambda: first.output.count('Started worker-') == 2, 20)
            client.start()
            assert wait_until(lambda: len(results) >= 50, 20)
            assert first.stop() == 0
        served_before = len(results)
        with ActivatedServer('address_app:rsgi', [sock], **server_args) as second:
            assert wait_until(lambda: second.output.count('Started worker-') == 2, 20)
            assert wait_until(lambda: len(results) >= served_before + 50, 20)
            done.set()
            client.join(40)
    finally:
        done.set()
        if client.is_alive():
            client.join(40)
        sock.close()
    failures = [result for result in results if isinstance(result, Exception) or result[0] != 200]
    assert failures == []
    pids = {int(result[1]) for result in results if not isinstance(result, Exception)}
    assert len(pids) >= 3, pids  # workers of both servers answered


def test_socket_activation_ignores_variables_meant_for_another_process():
    port = free_port()
    env = {'LISTEN_PID': '1', 'LISTEN_FDS': '1'}
    with RunningServer('address_app:rsgi', working_dir=APPS_DIR, port=port, env=env) as server:
        assert get_fresh_connection(port, '/')[0] == 200
        assert 'socket activation' not in server.output


def test_uds_permissions_are_checked():
    result = run_granian(['--interface', 'rsgi', '--uds-permissions', '99', 'address_app:rsgi'])
    assert result.returncode == 2
    assert 'octal permissions' in result.stderr


def _requests_per_worker(port: int, connections: int, seconds: float) -> collections.Counter[str]:
    """Open `connections` keep-alive connections at once, then GET /pid on each for `seconds`."""
    clients = [http.client.HTTPConnection(HOST, port, timeout=10) for _ in range(connections)]
    for client in clients:
        client.connect()
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(client: http.client.HTTPConnection) -> None:
        seen: collections.Counter[str] = collections.Counter()
        try:
            while time.monotonic() < deadline:
                client.request('GET', '/pid')
                seen[client.getresponse().read().decode()] += 1
        finally:
            client.close()
            with lock:
                counts.update(seen)

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    return counts


@pytest.mark.timeout(90)
def test_reuse_port_spreads_keep_alive_connections_over_the_workers():
    args = ['--workers', '4', '--reuse-port']
    with RunningServer('address_app:rsgi', working_dir=APPS_DIR, extra_args=args) as server:
        assert wait_until(lambda: server.output.count('Started worker-') == 4, 30)
        assert 'a socket per worker, SO_REUSEPORT' in server.output
        counts = _requests_per_worker(server.port, 64, 3.0)
        total = sum(counts.values())
        shares = {pid: count / total for pid, count in counts.items()}
        assert len(shares) == 4, shares
        # The kernel hashes connections: an even spread within chance (a shared socket gives one
        # worker 52% to 97% in the same test).
        assert max(shares.values()) <= 0.50, shares
        assert min(shares.values()) >= 0.08, shares
        # Workers are replaced as usual: the new ones join the port's group before the old ones leave.
        server.send_signal(signal.SIGHUP)
        assert wait_until(lambda: server.output.count('Started worker-') == 8, 60)
        assert get_fresh_connection(server.port, '/pid')[0] == 200


def test_reuse_port_applies_to_tcp_only(socket_path):
    result = run_granian(['--interface', 'rsgi', '--reuse-port', '--uds', str(socket_path), 'address_app:rsgi'])
    assert result.returncode == 2
    assert 'it applies to a TCP address, not to uds or fd' in result.stderr
