"""ASGI 2.4 lifespan: startup before serving, state for requests, shutdown after the drain, failures, `asginl`."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests_support.server import free_port, run_granian
from tests_support.waiting import wait_until


@pytest.fixture(scope='module')
def slow_startup_server(server_factory, asgi_apps_dir: Path):
    """`asgi_app:app` whose startup takes a second: requests sent meanwhile must wait for it."""
    return server_factory('asgi_app:app', working_dir=asgi_apps_dir, interface='asgi', env={'ASGI_STARTUP_DELAY': '1'})


def test_requests_are_served_after_startup_complete_with_its_state(slow_startup_server):
    # The port accepts as soon as the supervisor binds it, so this first request races the one-second startup.
    response = httpx.get(slow_startup_server.url('/scope'), timeout=30)
    assert response.status_code == 200, response.text
    described = response.json()
    assert described['startup_complete'] is True, 'a request reached the app before lifespan.startup.complete'
    assert described['scope']['state'].get('x') == 'from-startup', described['scope']['state']


def test_shutdown_runs_on_sigterm_after_in_flight_requests(
    server_factory, asgi_apps_dir: Path, tmp_path: Path, read_marker
):
    shutdown_marker = tmp_path / 'shutdown.json'
    started = tmp_path / 'sleep-started.json'
    server = server_factory(
        'asgi_app:app',
        working_dir=asgi_apps_dir,
        interface='asgi',
        env={'ASGI_SHUTDOWN_MARKER': str(shutdown_marker)},
    )
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(httpx.get, server.url(f'/sleep?seconds=2&marker={quote(str(started))}'), timeout=30)
        assert wait_until(started.exists, 20), f'the slow request never reached the app:\n{server.output}'
        assert not shutdown_marker.exists(), 'lifespan.shutdown ran while the server was serving'
        server.send_signal(signal.SIGTERM)
        response = in_flight.result(timeout=30)
    assert (response.status_code, response.text) == (200, 'slept'), 'the in-flight request was not finished'
    assert server.wait(20) == 0, server.output
    assert shutdown_marker.exists(), f'lifespan.shutdown did not run:\n{server.output}'
    record = read_marker(shutdown_marker)
    assert record['in_flight'] == 0, f'lifespan.shutdown ran with a request still in the app: {record}'
    assert record['completed'] == 1, record


def test_startup_failed_exits_1_with_the_message(asgi_apps_dir: Path):
    result = run_granian(
        [
            '--interface',
            'asgi',
            '--host',
            '127.0.0.1',
            '--port',
            str(free_port()),
            '--working-dir',
            str(asgi_apps_dir),
            'asgi_app:startup_failed_app',
        ],
        cwd=asgi_apps_dir,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert 'database down' in output, output


def test_app_without_lifespan_support_is_warned_about_and_served(server_factory, asgi_apps_dir: Path):
    server = server_factory('asgi_app:lifespan_unsupported_app', working_dir=asgi_apps_dir, interface='asgi')
    response = httpx.get(server.url('/scope'), timeout=30)
    assert response.status_code == 200, server.output
    assert response.json()['scope']['type'] == 'http'
    assert wait_until(lambda: 'warning' in server.output.lower(), 10), f'no warning logged:\n{server.output}'


@pytest.mark.parametrize(('interface', 'called'), [('asgi', True), ('asginl', False)])
def test_lifespan_scope_only_with_interface_asgi(
    server_factory, asgi_apps_dir: Path, tmp_path: Path, interface: str, called: bool
):
    marker = tmp_path / 'lifespan-called.json'
    server = server_factory(
        'asgi_app:lifespan_marker_app',
        working_dir=asgi_apps_dir,
        interface=interface,
        env={'ASGI_LIFESPAN_MARKER': str(marker)},
    )
    response = httpx.get(server.url('/scope'), timeout=30)
    assert response.status_code == 200, server.output
    assert server.stop() == 0, server.output
    assert marker.exists() is called, f'--interface {interface}: lifespan scope received = {marker.exists()}'
