"""`python -m granian.wsgi`: serve a WSGI app without granian-cli, with the CLI's option names and GRANIAN_* variables."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests_support.server import free_port, server_env


def environ_of(server) -> dict:
    with httpx.Client(timeout=30) as client:
        response = client.get(server.url('/environ'))
    assert response.status_code == 200, response.text
    return response.json()['environ']


@pytest.fixture(scope='module')
def standalone_server(standalone_factory, wsgi_apps_dir: Path):
    return standalone_factory('wsgi_app:app', working_dir=wsgi_apps_dir)


def test_serves_the_app(standalone_server, http_client: httpx.Client):
    response = http_client.get(standalone_server.url('/hello'))
    assert (response.status_code, response.text) == (200, 'hello')


def test_environ(standalone_server, http_client: httpx.Client):
    response = http_client.get(standalone_server.url('/environ?q=1'))
    assert response.status_code == 200, response.text
    environ = response.json()['environ']
    assert environ['SERVER_PORT'] == str(standalone_server.port)
    assert environ['QUERY_STRING'] == 'q=1'
    assert environ['SCRIPT_NAME'] == ''
    assert environ['wsgi.multiprocess'] is False


def test_port_from_environment_variable(standalone_factory, wsgi_apps_dir: Path):
    port = free_port()
    server = standalone_factory(
        'wsgi_app:app', working_dir=wsgi_apps_dir, port=port, pass_port=False, env={'GRANIAN_PORT': str(port)}
    )
    assert '--port' not in server.command
    assert environ_of(server)['SERVER_PORT'] == str(port)


def test_options(standalone_factory, wsgi_apps_dir: Path):
    server = standalone_factory(
        'wsgi_app:app',
        working_dir=wsgi_apps_dir,
        extra_args=[
            '--workers',
            '2',
            '--blocking-threads',
            '1',
            '--backpressure',
            '4',
            '--url-path-prefix',
            '/prefix',
            '--log-level',
            'debug',
        ],
    )
    with httpx.Client(timeout=30) as client:
        response = client.get(server.url('/prefix/environ'))
    assert response.status_code == 200, response.text
    environ = response.json()['environ']
    assert environ['SCRIPT_NAME'] == '/prefix'
    assert environ['PATH_INFO'] == '/environ'
    assert environ['wsgi.multiprocess'] is True
    assert environ['wsgi.multithread'] is False


def test_options_from_environment_variables(standalone_factory, wsgi_apps_dir: Path):
    server = standalone_factory(
        'wsgi_app:app',
        working_dir=wsgi_apps_dir,
        env={'GRANIAN_WORKERS': '2', 'GRANIAN_BLOCKING_THREADS': '1', 'GRANIAN_URL_PATH_PREFIX': '/env'},
    )
    with httpx.Client(timeout=30) as client:
        response = client.get(server.url('/env/environ'))
    assert response.status_code == 200, response.text
    environ = response.json()['environ']
    assert environ['SCRIPT_NAME'] == '/env'
    assert environ['wsgi.multiprocess'] is True
    assert environ['wsgi.multithread'] is False


def test_sigterm_stops_it_cleanly(standalone_factory, wsgi_apps_dir: Path):
    server = standalone_factory('wsgi_app:app', working_dir=wsgi_apps_dir)
    assert environ_of(server)['REQUEST_METHOD'] == 'GET'
    server.send_signal(signal.SIGTERM)
    assert server.wait(15) == 0, server.output
    assert not server.leftover_processes, 'worker processes outlived the supervisor'


def test_help_lists_the_wsgi_options():
    result = subprocess.run(
        [sys.executable, '-m', 'granian.wsgi', '--help'],
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for option in ('--host', '--port', '--workers', '--blocking-threads', '--backpressure', '--url-path-prefix'):
        assert option in result.stdout, f'{option} missing from --help:\n{result.stdout}'
