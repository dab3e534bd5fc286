"""Prometheus metrics (`--metrics`): scraped and parsed with prometheus_client's text parser while
load runs; counters and histograms move by the requests made; respawns and reloads keep the totals;
gauges for connections, in-flight requests, WebSockets and the WSGI pool; a taken port stops the start."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests_support.certs import server_certificate
from tests_support.server import RunningServer, free_port, run_granian
from tests_support.waiting import wait_until

APPS_DIR = Path(__file__).parent / 'apps'


class Scrape:
    """One scrape: sample values by (name, labels), plus helpers summing over workers."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                # The parser names counter samples `<name>_total`; the exposition uses Granian's names
                # (no suffix), which tests below check in the raw text.
                name = family.name if sample.name == f'{family.name}_total' else sample.name
                self.samples[(name, tuple(sorted(sample.labels.items())))] = sample.value

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name` over every sample whose labels include `labels`."""
        return sum(
            value
            for (sample, sample_labels), value in self.samples.items()
            if sample == name and all((key, wanted) in sample_labels for key, wanted in labels.items())
        )

    def by_worker(self, name: str) -> dict[str, float]:
        values: dict[str, float] = defaultdict(float)
        for (sample, labels), value in self.samples.items():
            if sample == name:
                values[dict(labels)['worker']] += value
        return dict(values)


def scrape(port: int) -> Scrape:
    response = httpx.get(f'http://127.0.0.1:{port}/metrics', timeout=10)
    assert response.status_code == 200
    assert response.headers['content-type'].startswith('text/plain; version=0.0.4')
    return Scrape(response.text)


def metrics_server(target: str, metrics_port: int, *extra: str, interface: str = 'rsgi', workers: int = 1):
    args = ['--workers', str(workers), '--metrics', '--metrics-port', str(metrics_port), *extra]
    return RunningServer(target, working_dir=APPS_DIR, interface=interface, extra_args=args)


@pytest.fixture(scope='module')
def static_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    public = tmp_path_factory.mktemp('metrics-static')
    (public / 'a.txt').write_text('static file')
    return public


@pytest.fixture(scope='module')
def served(static_dir: Path):
    """Two RSGI workers with metrics on; yields (server, metrics port)."""
    port = free_port()
    with metrics_server('access_app:rsgi', port, '--static-path-mount', str(static_dir), workers=2) as server:
        assert server.wait_for_output('Started worker-2')
        assert server.wait_for_output(f'Metrics at: http://127.0.0.1:{port}/metrics')
        yield server, port


def test_counters_and_histograms_move_by_the_requests_made(served):
    server, port = served
    before = scrape(port)
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for _ in range(30):
            assert client.get('/hello').status_code == 200
        for _ in range(5):
            assert client.get('/boom').status_code == 500
        for _ in range(3):
            assert client.get('/static/a.txt').status_code == 200
        for _ in range(2):
            assert client.get('/static/missing.txt').status_code == 404
    after = scrape(port)

    def delta(name: str, **labels: str) -> float:
        return after.total(name, **labels) - before.total(name, **labels)

    assert delta('granian_requests_handled') == 40
    assert delta('granian_static_requests_handled') == 5
    assert delta('granian_static_requests_err') == 2
    assert delta('granian_responses_handled', status_class='2xx') == 33
    assert delta('granian_responses_handled', status_class='5xx') == 5
    assert delta('granian_responses_handled', status_class='4xx') == 2
    assert delta('granian_request_duration_seconds_count', status_class='2xx', interface='rsgi') == 33
    assert delta('granian_request_duration_seconds_bucket', status_class='2xx', le='+Inf') == 33
    assert delta('granian_request_duration_seconds_sum', status_class='2xx') > 0
    assert delta('granian_connections_handled') >= 1
    assert after.types['granian_request_duration_seconds'] == 'histogram'
    assert after.types['granian_requests_in_flight'] == 'gauge'
    assert set(after.by_worker('granian_requests_handled')) == {'1', '2'}
    assert 'granian_requests_handled{worker="1"} ' in after.text
    assert '# TYPE granian_workers_spawns counter\ngranian_workers_spawns 2\n' in after.text
    # Buckets are cumulative: never decreasing along `le`, ending at the count.
    for worker in ('1', '2'):
        labels = {'worker': worker, 'status_class': '2xx'}
        buckets = [
            (float(dict(sample_labels)['le']), value)
            for (name, sample_labels), value in after.samples.items()
            if name == 'granian_request_duration_seconds_bucket'
            and all(item in sample_labels for item in labels.items())
        ]
        values = [value for _, value in sorted(buckets)]
        assert values == sorted(values)
        assert values[-1] == after.total('granian_request_duration_seconds_count', **labels)
    assert after.total('granian_requests_in_flight') == 0
    assert wait_until(lambda: scrape(port).total('granian_connections_active') == 0, 10)


def test_scrapes_while_load_runs(served):
    server, port = served
    start = scrape(port).total('granian_requests_handled')
    made = [0]
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            while not stop.is_set():
                client.get('/hello')
                made[0] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    seen = []
    in_flight = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        current = scrape(port)
        seen.append(current.total('granian_requests_handled'))
        in_flight.append(current.total('granian_requests_in_flight'))
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert seen == sorted(seen), 'a counter went down'
    assert all(0 <= value <= 4 for value in in_flight)
    assert wait_until(lambda: scrape(port).total('granian_requests_handled') - start == made[0], 10)


def test_open_websockets_are_a_gauge(served):
    from websockets.sync.client import connect

    server, port = served
    before = scrape(port)
    with connect(f'ws://127.0.0.1:{server.port}/ws-hold') as ws:
        assert ws.recv(timeout=10) == 'hi'
        assert scrape(port).total('granian_websockets_open') == before.total('granian_websockets_open') + 1
        ws.send('bye')
    assert wait_until(lambda: scrape(port).total('granian_websockets_open') == 0, 10)
    assert scrape(port).total('granian_websockets_handled') == before.total('granian_websockets_handled') + 1


def test_the_endpoint_answers_head_and_refuses_other_methods(served):
    _, port = served
    assert httpx.head(f'http://127.0.0.1:{port}/metrics', timeout=10).status_code == 200
    refused = httpx.post(f'http://127.0.0.1:{port}/metrics', timeout=10)
    assert refused.status_code == 405
    assert refused.headers['allow'] == 'GET, HEAD'


def test_a_reload_keeps_the_totals():
    port = free_port()
    with metrics_server('access_app:rsgi', port) as server:
        assert server.wait_for_output('Started worker-1')
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for _ in range(10):
                client.get('/hello')
        server.send_signal(signal.SIGHUP)
        assert wait_until(lambda: server.output.count('Started worker-1') == 2, 20)
        assert wait_until(lambda: 'Stopping worker-1' in server.output, 20)
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for _ in range(5):
                client.get('/hello')
        after = scrape(port)
        assert after.total('granian_requests_handled', worker='1') == 15
        assert after.total('granian_responses_handled', worker='1', status_class='2xx') == 15
        assert after.total('granian_workers_spawns') == 2
        assert after.total('granian_workers_respawns_for_reload') == 1
        assert after.total('granian_worker_lifetime', worker='1') < 30


def test_a_respawned_worker_keeps_the_totals():
    port = free_port()
    with metrics_server('access_app:rsgi', port, '--respawn-failed-workers') as server:
        assert server.wait_for_output('Started worker-1')
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for _ in range(7):
                client.get('/hello')
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url('/exit'), timeout=10)
        assert wait_until(lambda: 'Respawned worker-1' in server.output, 20)
        httpx.get(server.url('/hello'), timeout=10)
        after = scrape(port)
        # 7 + the request that killed the worker (logged 499: it was never answered) + 1.
        assert after.total('granian_requests_handled', worker='1') == 9
        assert after.total('granian_workers_respawns_for_err') == 1
        assert after.total('granian_requests_in_flight') == 0


def test_wsgi_pool_gauges_and_times():
    port = free_port()
    with metrics_server('access_app:wsgi', port, interface='wsgi') as server:
        assert server.wait_for_output('Started worker-1')
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for _ in range(5):
                client.get('/slow')
        after = scrape(port)
        assert after.total('granian_blocking_threads') >= 1
        assert after.total('granian_blocking_queue') == 0
        assert after.total('granian_blocking_busy_cumulative') >= 5 * 300_000
        assert after.total('granian_blocking_idle_cumulative') > 0
        assert after.total('granian_request_duration_seconds_count', interface='wsgi') == 5
        # The 0.3 s requests land in the (0.25, 0.5] bucket.
        assert after.total('granian_request_duration_seconds_bucket', le='0.25') == 0
        assert after.total('granian_request_duration_seconds_bucket', le='0.5') == 5


def test_failed_tls_handshakes_are_counted(tmp_path: Path):
    cert, key, context = server_certificate(tmp_path)
    port = free_port()
    with metrics_server('access_app:rsgi', port, '--ssl-certificate', str(cert), '--ssl-keyfile', str(key)) as server:
        assert server.wait_for_output('Started worker-1')
        # The readiness probe's bare connections count too: measure from here.
        before = scrape(port)
        with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
            sock.sendall(b'GET / HTTP/1.1\r\nhost: x\r\n\r\n')
            sock.recv(100)
        httpx.get(f'https://127.0.0.1:{server.port}/hello', verify=context, timeout=10)
        failures = before.total('granian_tls_handshake_failures') + 1
        assert wait_until(lambda: scrape(port).total('granian_tls_handshake_failures') == failures, 10)
        after = scrape(port)
        assert after.total('granian_connections_handled') - before.total('granian_connections_handled') == 2
        assert after.total('granian_responses_handled', status_class='2xx') == 1


def test_a_taken_port_stops_the_start_with_one_line():
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_granian(
            ['--metrics', '--metrics-port', str(port), '--working-dir', str(APPS_DIR), 'access_app:rsgi']
        )
    assert done.returncode == 1
    errors = [line for line in (done.stdout + done.stderr).splitlines() if 'metrics endpoint' in line]
    assert errors == [f'[ERROR] cannot listen on the metrics endpoint http://127.0.0.1:{port}: Address already in use']
