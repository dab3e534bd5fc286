"""HTTP/3 over QUIC (`--http3`) with aioquic's client: every interface, request and response bodies,
streamed responses, many streams on one connection, client disconnects, Alt-Svc on TCP responses,
draining on shutdown, several workers, and the settings refused at start."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest
from aioquic.quic.connection import QuicConnection
from cryptography import x509

from tests_support.certs import Pki, server_pki
from tests_support.http3 import StreamFailed, configuration, h3_connection, h3_request
from tests_support.server import HOST, free_port, run_granian

APPS_DIR = Path(__file__).parent / 'apps'
TARGETS = {'rsgi': 'http3_app:rsgi', 'asgi': 'http3_app:asgi', 'wsgi': 'http3_app:wsgi'}


@pytest.fixture(scope='module')
def pki(tmp_path_factory) -> Pki:
    return server_pki(tmp_path_factory.mktemp('h3pki'))


@pytest.fixture(scope='module', params=sorted(TARGETS))
def interface(request) -> str:
    return request.param


@pytest.fixture(scope='module')
def h3_server(server_factory, pki, interface):
    return server_factory(TARGETS[interface], interface=interface, working_dir=APPS_DIR, extra_args=pki.args('--http3'))


def run(coroutine, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def test_every_interface_serves_http3(h3_server, pki, interface):
    response = h3_request(h3_server.port, pki.ca_file, 'GET', '/info')
    assert response.status == 200
    assert response.header('date') and response.header('content-length') == str(len(response.body))
    seen = json.loads(response.body)
    assert seen['scheme'] == 'https'
    assert seen['http_version'] == ('HTTP/3' if interface == 'wsgi' else '3')
    if interface == 'asgi':
        tls = seen['tls']
        assert tls['tls_version'] == 0x0304
        assert tls['cipher_suite'] is None  # quinn does not tell which suite QUIC negotiated
        assert tls['server_cert'] == pki.cert.read_text()
        assert tls['client_cert_chain'] == []
    if interface == 'wsgi':
        assert seen['tls'] == {'https': 'on'}


@pytest.mark.parametrize('size', [0, 1, 65_536, 10 * 1024 * 1024], ids=['0B', '1B', '64KiB', '10MiB'])
def test_request_bodies_are_echoed(h3_server, pki, size):
    body = bytes(range(256)) * (size // 256) + b'x' * (size % 256)
    response = h3_request(h3_server.port, pki.ca_file, 'POST', '/echo', body=body, timeout=60)
    assert response.status == 200
    assert response.header('x-length') == str(size)
    assert response.body == body


def test_a_streamed_response_arrives_in_chunks(h3_server, pki):
    async def stream() -> tuple[list[bytes], str | None]:
        async with h3_connection(h3_server.port, pki.ca_file) as client:
            stream_id = client.open('GET', '/stream')
            chunks = [chunk async for chunk in client.chunks(stream_id)]
            response = await client.response(stream_id)
            return chunks, response.header('content-length')

    chunks, length = run(stream())
    assert b''.join(chunks) == b'one,two,three'
    assert len(chunks) >= 2, chunks  # sent as the app produced them, not gathered
    assert length is None


def test_a_hundred_concurrent_streams_on_one_connection(h3_server, pki):
    async def many() -> list:
        async with h3_connection(h3_server.port, pki.ca_file) as client:
            requests = [client.request('POST', '/echo', body=f'request {n}'.encode()) for n in range(100)]
            return await asyncio.gather(*requests)

    responses = run(many())
    assert [r.status for r in responses] == [200] * 100
    assert [r.body for r in responses] == [f'request {n}'.encode() for n in range(100)]


@pytest.mark.parametrize('interface', ['rsgi', 'asgi'], indirect=True)
def test_the_app_hears_when_the_client_goes(h3_server, pki):
    before = int(h3_request(h3_server.port, pki.ca_file, 'GET', '/gone').body)

    async def leave() -> None:
        async with h3_connection(h3_server.port, pki.ca_file) as client:
            client.open('GET', '/wait')
            await asyncio.sleep(0.5)
        # Leaving the block closes the QUIC connection.

    run(leave())
    deadline = time.monotonic() + 10
    while int(h3_request(h3_server.port, pki.ca_file, 'GET', '/gone').body) == before:
        assert time.monotonic() < deadline, 'the app never heard that the client left'
        time.sleep(0.1)


@pytest.mark.parametrize('interface', ['rsgi', 'asgi'], indirect=True)
def test_the_app_hears_when_the_client_cancels_a_request(h3_server, pki):
    """STOP_SENDING on one stream, the connection staying open: the app hears it as a disconnect
    (as for a reset HTTP/2 stream), and the connection goes on serving."""

    async def cancel_one() -> tuple[int, int]:
        async with h3_connection(h3_server.port, pki.ca_file) as client:
            before = int((await client.request('GET', '/gone')).body)
            client.cancel(client.open('GET', '/wait'))
            deadline = time.monotonic() + 10
            while (now := int((await client.request('GET', '/gone')).body)) == before:
                assert time.monotonic() < deadline, 'the app never heard that the request was cancelled'
                await asyncio.sleep(0.1)
            return before, now

    before, now = run(cancel_one())
    assert now == before + 1


@pytest.mark.parametrize('http2', [False, True], ids=['http1.1', 'h2'])
def test_tcp_responses_advertise_http3(h3_server, pki, http2):
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    with httpx.Client(verify=context, http1=not http2, http2=http2, timeout=10) as client:
        response = client.get(f'https://{h3_server.host}:{h3_server.port}/info')
    assert response.status_code == 200
    assert response.headers['alt-svc'] == f'h3=":{h3_server.port}"; ma=86400'


def test_no_alt_svc_without_http3(server_factory, pki):
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=pki.args())
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    response = httpx.get(f'https://{server.host}:{server.port}/info', verify=context, timeout=10)
    assert response.status_code == 200
    assert 'alt-svc' not in response.headers


@pytest.mark.parametrize('interface', sorted(TARGETS))
def test_shutdown_lets_every_stream_in_flight_finish(server_factory, pki, interface):
    server = server_factory(
        TARGETS[interface],
        interface=interface,
        working_dir=APPS_DIR,
        extra_args=pki.args('--http3', '--blocking-threads', '8') if interface == 'wsgi' else pki.args('--http3'),
    )

    async def load() -> list:
        async with (
            h3_connection(server.port, pki.ca_file) as first,
            h3_connection(server.port, pki.ca_file) as second,
        ):
            requests = [client.request('GET', '/slow') for client in (first, second) for _ in range(8)]
            pending = asyncio.gather(*requests, return_exceptions=True)
            await asyncio.sleep(0.2)
            server.send_signal(signal.SIGTERM)
            return await pending

    responses = run(load())
    failed = [r for r in responses if isinstance(r, BaseException)]
    assert not failed, failed
    assert [(r.status, r.body) for r in responses] == [(200, b'slow')] * 16
    assert server.wait(15) == 0, server.output


def test_several_workers_serve_http3(server_factory, pki):
    server = server_factory(
        TARGETS['asgi'], interface='asgi', working_dir=APPS_DIR, extra_args=pki.args('--http3', '--workers', '2')
    )

    async def many_connections() -> list:
        async def one() -> list:
            async with h3_connection(server.port, pki.ca_file) as client:
                return [await client.request('POST', '/echo', body=b'%d' % n) for n in range(5)]

        return await asyncio.gather(*(one() for _ in range(8)))

    for responses in run(many_connections()):
        assert [r.body for r in responses] == [b'%d' % n for n in range(5)]


def test_replacing_a_worker_leaves_the_other_workers_connections_alone(server_factory, pki):
    server = server_factory(
        TARGETS['asgi'],
        interface='asgi',
        working_dir=APPS_DIR,
        extra_args=pki.args('--http3', '--workers', '2', '--respawn-failed-workers'),
    )

    async def kill_one_worker() -> list:
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(h3_connection(server.port, pki.ca_file)) for _ in range(16)]
            served_by = [json.loads((await client.request('GET', '/info')).body)['pid'] for client in clients]
            assert len(set(served_by)) == 2, served_by  # the kernel spread the clients over both workers
            victim = min(served_by)
            os.kill(victim, signal.SIGKILL)
            assert await asyncio.to_thread(server.wait_for_output, 'Respawned worker-', 30), server.output
            survivors = [client for client, pid in zip(clients, served_by, strict=True) if pid != victim]
            requests = [client.request('GET', '/info') for client in survivors]
            return await asyncio.gather(*requests, return_exceptions=True)

    answers = run(kill_one_worker(), 60)
    failed = [answer for answer in answers if isinstance(answer, BaseException)]
    assert not failed, f'{len(failed)} of {len(answers)} connections of the surviving worker broke: {failed}'


def test_a_reload_under_load_loses_no_request(server_factory, pki):
    """SIGHUP while four connections send requests back to back. The old worker answers every
    request it accepted; what a client sends after its GOAWAY (this client ignores GOAWAY) is refused
    with H3_REQUEST_REJECTED, which RFC 9114 makes safe to retry; the new worker serves the rest."""
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=pki.args('--http3'))
    pids: list[int] = []
    failures: list[str] = []

    def done() -> bool:
        # Until the new worker has answered a hundred requests (or 20 s went by).
        return len(pids) > 100 and pids[-100] != pids[0] or time.monotonic() > deadline

    async def back_to_back() -> None:
        while not done():
            async with h3_connection(server.port, pki.ca_file) as client:
                while not done():
                    try:
                        pids.append(json.loads((await client.request('GET', '/info')).body)['pid'])
                    except StreamFailed as exc:
                        failures.append(str(exc))
                        break

    async def load() -> None:
        clients = [asyncio.create_task(back_to_back()) for _ in range(4)]
        await asyncio.sleep(1)
        server.send_signal(signal.SIGHUP)
        await asyncio.gather(*clients)

    deadline = time.monotonic() + 20
    run(load())
    assert len(set(pids)) == 2 and pids[-1] != pids[0], 'the new worker served nothing'
    assert all(failure == 'stream reset with code 0x10b' for failure in failures), failures


def test_a_long_drain_hands_the_socket_over_after_a_few_seconds(server_factory, pki):
    """The old worker keeps its slot's socket to itself for at most 5 s of draining: a request that
    never ends (here one waiting for its client to go) must not keep the new worker from serving
    new HTTP/3 clients for the whole drain."""
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=pki.args('--http3'))

    async def pid() -> int:
        async with h3_connection(server.port, pki.ca_file) as client:
            return json.loads((await client.request('GET', '/info')).body)['pid']

    async def reload_while_draining() -> tuple[int, int]:
        first = await pid()
        async with h3_connection(server.port, pki.ca_file) as holder:
            holder.open('GET', '/wait')
            await asyncio.sleep(0.3)
            server.send_signal(signal.SIGHUP)
            # After the handover both workers read the socket (the old one still drains), so a
            # new client's packets may reach either: each attempt is a fresh connection, bounded.
            deadline = time.monotonic() + 60
            while True:
                assert time.monotonic() < deadline, server.output
                with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                    if (now := await asyncio.wait_for(pid(), 4)) != first:
                        return first, now
                await asyncio.sleep(0.2)

    first, now = run(reload_while_draining(), timeout=90)
    assert now != first


def test_a_reload_serves_http3_after_the_lock_directory_was_removed(server_factory, pki, tmp_path):
    """A cleaner of temporary files may remove the supervisor's directory of slot locks: the next
    worker makes it again and serves HTTP/3."""
    server = server_factory(
        TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=pki.args('--http3'), env={'TMPDIR': str(tmp_path)}
    )
    first = json.loads(h3_request(server.port, pki.ca_file, 'GET', '/info').body)['pid']
    (locks,) = tmp_path.glob('granian-http3-*')
    shutil.rmtree(locks)
    server.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while json.loads(h3_request(server.port, pki.ca_file, 'GET', '/info').body)['pid'] == first:
        assert time.monotonic() < deadline, server.output
        time.sleep(0.2)
    assert 'slot lock' not in server.output, server.output


def test_client_certificates_over_http3(server_factory, pki, tmp_path):
    client = pki.ca.issue_cert('client@example.com')
    cert, key = tmp_path / 'client.pem', tmp_path / 'client-key.pem'
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    args = pki.args('--http3', '--ssl-ca', str(pki.ca_file), '--ssl-client-verify')
    server = server_factory(TARGETS['asgi'], interface='asgi', working_dir=APPS_DIR, extra_args=args)

    async def info(**options) -> dict:
        async with h3_connection(server.port, pki.ca_file, **options) as connection:
            return json.loads((await connection.request('GET', '/info')).body)

    tls = run(info(client_cert=(cert, key)))['tls']
    client_pem = client.cert_chain_pems[0].bytes().decode()
    assert tls['client_cert_chain'] == [client_pem]
    subject = x509.load_pem_x509_certificate(client_pem.encode()).subject.rfc4514_string()
    assert tls['client_cert_name'] == subject
    with pytest.raises((ConnectionError, StreamFailed, asyncio.TimeoutError)):
        run(info(), timeout=10)  # --ssl-client-verify: no certificate, no connection


def test_access_log_names_http3(server_factory, pki):
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=pki.args('--http3', '--access-log'))
    assert h3_request(server.port, pki.ca_file, 'GET', '/info').status == 200
    assert server.wait_for_output('"GET /info HTTP/3" 200'), server.output


def test_a_cancelled_request_is_logged_as_499(server_factory, pki):
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=pki.args('--http3', '--access-log'))

    async def cancel_one() -> None:
        async with h3_connection(server.port, pki.ca_file) as client:
            client.cancel(client.open('GET', '/wait'))
            assert (await client.request('GET', '/info')).status == 200

    run(cancel_one())
    assert server.wait_for_output('"GET /wait HTTP/3" 499'), server.output


def test_a_stream_reset_by_the_client_leaves_the_connection_serving(h3_server, pki):
    async def reset_then_request():
        async with h3_connection(h3_server.port, pki.ca_file) as client:
            stream_id = client.open('POST', '/echo', end=False)
            client.send(stream_id, b'partial')
            client.reset(stream_id)
            with pytest.raises((StreamFailed, asyncio.TimeoutError)):
                await asyncio.wait_for(client.response(stream_id), 2)
            return await client.request('POST', '/echo', body=b'after')

    response = run(reset_then_request())
    assert (response.status, response.body) == (200, b'after')


def test_a_burst_of_handshakes_makes_new_clients_prove_their_address(server_factory, pki):
    """Above 64 handshakes in progress, a new client is first sent a Retry (one more round trip, so
    that spoofed Initial packets cannot make the server do handshakes); a real client goes through."""
    server = server_factory(TARGETS['rsgi'], working_dir=APPS_DIR, extra_args=pki.args('--http3'))

    async def get_info() -> tuple[int, int]:
        async with h3_connection(server.port, pki.ca_file) as client:
            response = await client.request('GET', '/info')
            return response.status, client._quic._retry_count

    assert run(get_info()) == (200, 0)
    # 80 handshakes started and never finished (each stays in progress for the handshake timeout).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
        for _ in range(80):
            quic = QuicConnection(configuration=configuration(pki.ca_file))
            quic.connect((HOST, server.port), now=time.monotonic())
            for datagram, address in quic.datagrams_to_send(now=time.monotonic()):
                flood.sendto(datagram, address)
        time.sleep(0.5)
        assert run(get_info()) == (200, 1)
        # Handshakes that never finish do not hold a stop up (they would for their 10 s timeout).
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(15) == 0, server.output
        assert time.monotonic() - started < 5


def _refused(args: list[str]) -> str:
    """Runs the server with `args`; asserts the usage error's exit code (2) and one line of output."""
    command = ['--interface', 'rsgi', '--host', HOST, '--port', str(free_port()), *args, TARGETS['rsgi']]
    result = run_granian(command, cwd=APPS_DIR)
    output = result.stdout + result.stderr
    assert result.returncode == 2, f'exit code {result.returncode}; output:\n{output}'
    assert len(output.strip().splitlines()) == 1, output
    return output


def test_http3_without_tls_is_refused_with_one_line():
    output = _refused(['--http3'])
    assert 'HTTP/3 runs over TLS' in output, output


def test_http3_on_a_unix_socket_is_refused_with_one_line(pki, tmp_path):
    output = _refused([*pki.args('--http3'), '--uds', str(tmp_path / 'granian.sock')])
    assert 'http3' in output and 'TCP address' in output, output


def test_http3_settings_are_checked(pki):
    output = _refused([*pki.args('--http3'), '--http3-idle-timeout', '0'])
    assert '--http3-idle-timeout' in output, output


def test_a_taken_udp_port_stops_the_server_with_one_line(pki):
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((HOST, port))
        command = ['--interface', 'rsgi', '--host', HOST, '--port', str(port), *pki.args('--http3'), TARGETS['rsgi']]
        result = run_granian(command, cwd=APPS_DIR)
    output = result.stdout + result.stderr
    assert result.returncode == 1, f'exit code {result.returncode}; output:\n{output}'
    assert 'Traceback' not in output, output
    lines = [line for line in output.splitlines() if f'cannot serve HTTP/3 on udp://{HOST}:{port}' in line]
    assert len(lines) == 1 and 'Address already in use' in lines[0], output


def test_a_204_carries_no_content_length(h3_server, pki):
    empty = h3_request(h3_server.port, pki.ca_file, 'GET', '/no-content')
    assert empty.status == 204 and empty.body == b''
    assert empty.header('content-length') is None, empty.headers


def test_a_head_answer_has_the_head_and_no_body(h3_server, pki):
    get = h3_request(h3_server.port, pki.ca_file, 'GET', '/info')
    head = h3_request(h3_server.port, pki.ca_file, 'HEAD', '/info')
    assert (head.status, head.body) == (200, b'')
    assert head.header('content-type') == get.header('content-type') == 'application/json'
    assert head.header('content-length') == get.header('content-length') == str(len(get.body))
    assert head.header('date') is not None
