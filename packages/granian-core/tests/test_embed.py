"""The embedded server (`granian.server.embed.Server`): serving from inside a running asyncio program,
`reload()` and `stop()`, and what it refuses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from granian.errors import ConfigurationError, FatalError
from granian.server.embed import Server
from tests_support.certs import server_pki
from tests_support.http3 import Response, h3_connection
from tests_support.server import HOST, free_port, server_env
from tests_support.waiting import wait_until

HOST_PROGRAM = Path(__file__).parent / 'apps' / 'embedded_host.py'


class HostProgram:
    """`embedded_host.py` running in a subprocess, with its output in a temporary file."""

    def __init__(self, interface: str) -> None:
        self.port = free_port()
        fd, name = tempfile.mkstemp(prefix='granian-embed-', suffix='.log')
        self.log = Path(name)
        with os.fdopen(fd, 'wb') as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(HOST_PROGRAM), interface, str(self.port)],
                env=server_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f'http://{HOST}:{self.port}'

    @property
    def output(self) -> str:
        return self.log.read_text(encoding='utf-8', errors='replace')

    def wait_listening(self) -> None:
        assert wait_until(lambda: 'listening at' in self.output or self.proc.poll() is not None, 20), self.output
        assert self.proc.poll() is None, self.output

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.log.unlink(missing_ok=True)


@pytest.fixture(params=['asgi', 'rsgi'])
def host(request: pytest.FixtureRequest) -> Iterator[HostProgram]:
    program = HostProgram(request.param)
    try:
        program.wait_listening()
        yield program
    finally:
        program.close()


def test_the_app_runs_on_the_programs_own_loop(host):
    with httpx.Client(base_url=host.url, timeout=10) as client:
        first = client.get('/').json()
        assert wait_until(lambda: client.get('/').json()['ticks'] > first['ticks'] + 5, 5)
        report = client.get('/').json()
    assert report['same_loop'] is True
    assert report['pid'] == host.proc.pid
    assert report['server'] in ([HOST, host.port], f'{HOST}:{host.port}')


@pytest.mark.timeout(60)
def test_reload_restarts_the_app_without_failing_requests(host):
    results: list[int | Exception] = []
    done = threading.Event()

    def steady() -> None:
        # A new connection per request, as the supervisor's reload tests do: a keep-alive client may
        # send on a connection the draining worker closes at that moment (HTTP/1.1 leaves the retry
        # to the client); what must not fail is a request that arrives during the reload.
        with httpx.Client(base_url=host.url, timeout=20, headers={'connection': 'close'}) as client:
            while not done.is_set():
                try:
                    results.append(client.get('/').status_code)
                except httpx.HTTPError as exc:
                    results.append(exc)  # shown by the assertion below

    client_thread = threading.Thread(target=steady)
    client_thread.start()
    try:
        assert wait_until(lambda: len(results) > 20, 10)
        for _ in range(3):
            assert httpx.get(f'{host.url}/reload', timeout=10).status_code == 200
            served = len(results)
            assert wait_until(lambda served=served: len(results) > served + 20, 10)
    finally:
        done.set()
        client_thread.join(30)
    assert results and all(result == 200 for result in results), [r for r in results if r != 200][:3]
    assert host.output.count('Reloading the embedded server') == 3
    if 'lifespan startup 1' in host.output:  # ASGI: the lifespan ran again for each reload
        assert 'lifespan startup 4' in host.output
        assert host.output.count('lifespan shutdown') == 3


def test_stop_drains_and_returns_from_serve(host):
    assert httpx.get(f'{host.url}/stop', timeout=10).status_code == 200
    assert host.proc.wait(20) == 0
    assert host.output.rstrip().endswith('serve returned'), host.output
    with pytest.raises(OSError), socket.create_connection((HOST, host.port), timeout=2):
        pass


async def _rsgi_hello(scope, proto):
    proto.response_str(200, [], 'hello')


def test_process_options_are_not_taken():
    with pytest.raises(TypeError, match='workers'):
        Server(_rsgi_hello, workers=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match='reload'):
        Server(_rsgi_hello, reload=True)  # type: ignore[call-arg]


def test_wsgi_and_non_apps_are_refused():
    with pytest.raises(ConfigurationError, match="'wsgi' apps need Granian"):
        Server(lambda environ, start_response: [], interface='wsgi')
    with pytest.raises(ConfigurationError, match='app object'):
        Server('main:app')
    with pytest.raises(ConfigurationError, match='Invalid port'):
        Server(_rsgi_hello, port=70000)


def test_an_address_in_use_is_a_fatal_error():
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        server = Server(_rsgi_hello, port=taken.getsockname()[1], log_enabled=False)
        with pytest.raises(FatalError, match='cannot listen on'):
            asyncio.run(server.serve())


def test_a_failed_lifespan_startup_is_a_fatal_error():
    async def refusing(scope, receive, send):
        assert scope['type'] == 'lifespan'
        await receive()
        await send({'type': 'lifespan.startup.failed', 'message': 'no database'})

    port = free_port()
    server = Server(refusing, port=port, interface='asgi', log_enabled=False)
    with pytest.raises(FatalError, match='no database'):
        asyncio.run(server.serve())
    # The socket was released.
    with socket.socket() as again:
        again.bind((HOST, port))


def test_stop_before_serving_starts_serves_and_returns():
    async def run() -> None:
        server = Server(_rsgi_hello, port=free_port(), log_enabled=False)
        task = asyncio.create_task(server.serve())
        await asyncio.sleep(0)
        server.stop()
        await asyncio.wait_for(task, 20)

    asyncio.run(run())


def test_an_embedded_server_serves_http3(tmp_path):
    pki = server_pki(tmp_path)

    async def run() -> Response:
        port = free_port()
        server = Server(_rsgi_hello, port=port, log_enabled=False, ssl_cert=pki.cert, ssl_key=pki.key, http3=True)
        task = asyncio.create_task(server.serve())
        try:
            async with h3_connection(port, pki.ca_file) as client:
                return await client.request('GET', '/')
        finally:
            server.stop()
            await asyncio.wait_for(task, 20)

    response = asyncio.run(asyncio.wait_for(run(), 30))
    assert (response.status, response.body) == (200, b'hello')
