"""Server settings observed from outside: runtime modes, HTTP modes, backpressure, logging options."""

from __future__ import annotations

import glob
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests_support.server import RunningServer, collect_worker_pids


def _get_many(base_url: str, path: str, count: int, http2: bool = False) -> list[httpx.Response]:
    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, http1=not http2, http2=http2, timeout=20) as client:
            return client.get(path)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize(
    'runtime_args',
    [
        ['--runtime-mode', 'st', '--runtime-threads', '2'],
        ['--runtime-mode', 'mt', '--runtime-threads', '2'],
        ['--runtime-mode', 'mt', '--runtime-threads', '1'],
    ],
    ids=['st-2', 'mt-2', 'mt-1'],
)
def test_runtime_modes_serve_concurrent_requests_and_bodies(server_factory, rsgi_apps_dir, runtime_args):
    server = server_factory('rsgi_app:app', working_dir=rsgi_apps_dir, extra_args=runtime_args)
    responses = _get_many(server.base_url, '/concurrency?seconds=0.2', 40)
    assert [r.status_code for r in responses] == [200] * 40
    payload = bytes(range(256)) * 4096
    for http2 in (False, True):
        with httpx.Client(base_url=server.base_url, http1=not http2, http2=http2, timeout=20) as client:
            echoed = client.post('/echo', content=payload)
            assert echoed.status_code == 200
            assert echoed.content == payload


def test_http1_only_refuses_http2_prior_knowledge(server_factory, rsgi_apps_dir):
    server = server_factory('rsgi_app:app', working_dir=rsgi_apps_dir, extra_args=['--http', '1'])
    with httpx.Client(base_url=server.base_url) as client:
        response = client.get('/scope')
        assert response.json()['http_version'] == '1.1'
    with (
        httpx.Client(base_url=server.base_url, http1=False, http2=True, timeout=5) as client,
        pytest.raises(httpx.HTTPError),
    ):
        client.get('/scope')


def test_http2_only_serves_h2c_and_refuses_http1(server_factory, rsgi_apps_dir):
    # Set through the environment, as a deployment would: GRANIAN_HTTP=2.
    server = server_factory('rsgi_app:app', working_dir=rsgi_apps_dir, env={'GRANIAN_HTTP': '2'})
    with httpx.Client(base_url=server.base_url, http1=False, http2=True) as client:
        response = client.get('/scope')
        assert response.json()['http_version'] == '2'
    with httpx.Client(base_url=server.base_url, timeout=5) as client, pytest.raises(httpx.HTTPError):
        client.get('/scope')


@pytest.mark.parametrize(('backpressure', 'expected_peak'), [(2, 2), (None, 8)])
def test_backpressure_bounds_requests_inside_the_app(server_factory, rsgi_apps_dir, backpressure, expected_peak):
    args = ['--backpressure', str(backpressure)] if backpressure else []
    server = server_factory('rsgi_app:app', working_dir=rsgi_apps_dir, extra_args=args)
    responses = _get_many(server.base_url, '/concurrency?seconds=0.5', 8)
    assert [r.status_code for r in responses] == [200] * 8
    peak = httpx.get(server.url('/concurrency/peak')).text
    assert int(peak) == expected_peak


def test_backpressure_counts_requests_not_connections(server_factory, rsgi_apps_dir):
    # Idle keep-alive connections must not use up the app's capacity.
    server = server_factory('rsgi_app:app', working_dir=rsgi_apps_dir, extra_args=['--backpressure', '1'])
    clients = [httpx.Client(base_url=server.base_url, timeout=10) for _ in range(5)]
    try:
        for client in clients:
            assert client.get('/pid').status_code == 200
        for client in clients:
            assert client.get('/pid').status_code == 200
    finally:
        for client in clients:
            client.close()


def test_log_config_file_is_applied(tmp_path: Path, rsgi_apps_dir):
    config = {
        'version': 1,
        'disable_existing_loggers': False,
        'formatters': {'custom': {'format': 'CUSTOMFMT %(levelname)s %(message)s'}},
        'handlers': {'out': {'class': 'logging.StreamHandler', 'formatter': 'custom', 'stream': 'ext://sys.stdout'}},
        'loggers': {'_granian': {'handlers': ['out'], 'level': 'INFO', 'propagate': False}},
    }
    path = tmp_path / 'log.json'
    path.write_text(json.dumps(config))
    with RunningServer('rsgi_app:app', working_dir=rsgi_apps_dir, extra_args=['--log-config', str(path)]) as server:
        assert server.wait_for_output('CUSTOMFMT INFO Started worker-1')


def test_log_level_and_no_log(rsgi_apps_dir):
    with RunningServer('rsgi_app:app', working_dir=rsgi_apps_dir, extra_args=['--log-level', 'warning']) as server:
        assert httpx.get(server.url('/pid')).status_code == 200
        server.stop()
        assert 'Started worker' not in server.output
    with RunningServer('rsgi_app:app', working_dir=rsgi_apps_dir, extra_args=['--no-log']) as server:
        assert httpx.get(server.url('/raise')).status_code == 500
        server.stop()
        assert server.output.strip() == ''


def _thread_names(pid: int) -> list[str]:
    names = []
    for comm in glob.glob(f'/proc/{pid}/task/*/comm'):
        try:
            names.append(Path(comm).read_text().strip())
        except OSError:
            pass
    return names


def _peak_blocking_threads(rsgi_apps_dir: Path, tmp_path: Path, limit: int) -> int:
    """The most file-I/O threads the worker ran while 32 clients fetched a 64 KiB file for 2 seconds.

    Files up to 64 KiB are opened and read on the blocking threads (larger ones are only opened
    there): reading takes longer than dispatching the next request, so the reads overlap.
    """
    big = tmp_path / 'big.bin'
    big.write_bytes(b'x' * 65536)
    args = ['--runtime-blocking-threads', str(limit)]
    with RunningServer('rsgi_app:app', working_dir=rsgi_apps_dir, extra_args=args) as server:
        (pid,) = collect_worker_pids(server, want=1)
        stop = time.monotonic() + 2
        failures: list[int] = []

        def load() -> None:
            with httpx.Client(timeout=30) as client:
                while time.monotonic() < stop:
                    status = client.get(server.url(f'/file?path={big}')).status_code
                    if status != 200:
                        failures.append(status)

        clients = [threading.Thread(target=load) for _ in range(32)]
        for client in clients:
            client.start()
        peak = 0
        while time.monotonic() < stop:
            peak = max(peak, sum(1 for name in _thread_names(pid) if name.startswith('granian-blocki')))
            time.sleep(0.01)
        for client in clients:
            client.join(30)
    assert not failures, failures[:5]
    return peak


def test_runtime_blocking_threads_bounds_the_file_io_threads(rsgi_apps_dir: Path, tmp_path: Path):
    assert _peak_blocking_threads(rsgi_apps_dir, tmp_path, 1) == 1
    # The same load with room for more does use more, so the bound above is the option's doing.
    assert _peak_blocking_threads(rsgi_apps_dir, tmp_path, 64) >= 2


@pytest.mark.parametrize('task_impl', ['asyncio', 'rust'])
def test_task_impl_is_accepted_and_rust_says_asyncio_is_used(rsgi_apps_dir: Path, task_impl: str):
    args = ['--task-impl', task_impl]
    with RunningServer('rsgi_app:app', working_dir=rsgi_apps_dir, extra_args=args) as server:
        assert httpx.get(server.url('/response/str'), timeout=10).status_code == 200
        output = server.output
    warned = "task_impl 'rust' is not available: requests run as asyncio tasks" in output
    assert warned == (task_impl == 'rust'), output


@pytest.mark.parametrize('tunables', [None, 'glibc.malloc.trim_threshold=1048576'])
def test_worker_trims_its_heap_unless_the_environment_tunes_malloc(rsgi_apps_dir: Path, tunables: str | None):
    """A worker runs the `granian-trim` thread (free heap memory back to the kernel every 5 s),
    except where the environment sets malloc's tunables, whose settings then win."""
    env = {'GLIBC_TUNABLES': tunables} if tunables else None
    with RunningServer('rsgi_app:app', working_dir=rsgi_apps_dir, env=env) as server:
        assert httpx.get(server.url('/response/str'), timeout=10).status_code == 200
        (pid,) = collect_worker_pids(server, want=1)
        names = _thread_names(pid)
    assert ('granian-trim' in names) == (tunables is None), names
