"""The access log: every atom for every interface over HTTP/1.1 and HTTP/2, static files, WebSocket
upgrades, responses the server makes itself, clients that leave, formats, `--log-config`, and the
Rust renderer against Python's own `%` formatting."""

from __future__ import annotations

import datetime
import json
import re
import socket
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granian import _core
from granian.log import DEFAULT_ACCESSLOG_FMT
from tests_support.certs import server_certificate
from tests_support.server import RunningServer, run_granian
from tests_support.waiting import wait_until

APPS_DIR = Path(__file__).parent / 'apps'
STREAM_SIZE = 3003
ATOMS = {
    'addr': '%(addr)s',
    'time': '%(time)s',
    'dt': '%(dt_ms).3f',
    'status': '%(status)d',
    'path': '%(path)s',
    'qs': '%(query_string)s',
    'method': '%(method)s',
    'scheme': '%(scheme)s',
    'proto': '%(protocol)s',
    'ua': '%(header{User-Agent})s',
    'missing': '%(header{x-missing})s',
    'size': '%(response_size)d',
    'trace': '%(response_header{x-trace})s',
}
# Numbers bare, text quoted: each line is a JSON document (values are escaped for it).
JSON_FORMAT = (
    'ACCESS {'
    + ', '.join(f'"{key}": {fmt}' if fmt[-1] in 'df' else f'"{key}": "{fmt}"' for key, fmt in ATOMS.items())
    + '}'
)
INTERFACES = ('rsgi', 'asgi', 'wsgi')


def access_records(server: RunningServer) -> list[dict]:
    return [json.loads(line[len('ACCESS ') :]) for line in server.output.splitlines() if line.startswith('ACCESS ')]


def wait_for_record(server: RunningServer, **match: object) -> dict:
    """The first record with every `match` item (bounded wait: lines reach the log in batches)."""
    found: list[dict] = []

    def look() -> bool:
        found[:] = [r for r in access_records(server) if all(r.get(k) == v for k, v in match.items())]
        return bool(found)

    assert wait_until(look, 10), f'no access record with {match}:\n{server.output}'
    return found[0]


@pytest.fixture(scope='module')
def static_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    public = tmp_path_factory.mktemp('access-static')
    (public / 'site.css').write_text('body { color: blue }\n')
    return public


@pytest.fixture(scope='module', params=INTERFACES)
def server(request: pytest.FixtureRequest, server_factory, static_dir: Path) -> RunningServer:
    interface = request.param
    args = ['--access-log', '--access-log-fmt', JSON_FORMAT, '--static-path-mount', str(static_dir)]
    return server_factory(
        f'access_app:{interface}',
        working_dir=APPS_DIR,
        interface=interface,
        extra_args=args,
        env={'TZ': 'Asia/Kolkata'},
    )


@pytest.mark.parametrize('http2', [False, True], ids=['http1.1', 'h2c'])
def test_every_atom_is_logged(server: RunningServer, http2: bool):
    user_agent = f'atoms-{http2} "quoted" \\ back'
    client_args = {'http1': not http2, 'http2': http2}
    before = datetime.datetime.now(datetime.timezone.utc)
    with httpx.Client(base_url=server.base_url, timeout=10, **client_args) as client:
        response = client.get('/hello', params={'a': '1', 'b': 'x y'}, headers={'user-agent': user_agent})
    assert response.status_code == 200
    record = wait_for_record(server, ua=user_agent)
    assert record['addr'] == '127.0.0.1'
    assert record['status'] == 200
    assert record['method'] == 'GET'
    assert record['path'] == '/hello'
    assert record['qs'] == 'a=1&b=x+y'
    assert record['scheme'] == 'http'
    assert record['proto'] == ('HTTP/2' if http2 else 'HTTP/1.1')
    assert record['missing'] == '-'
    assert record['size'] == 5
    assert record['trace'] == 'abc'
    assert 0 <= record['dt'] < 5000
    # Local time of the server's zone (TZ=Asia/Kolkata, +05:30), to the second.
    logged = datetime.datetime.strptime(record['time'], '%Y-%m-%d %H:%M:%S %z')
    assert logged.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    assert before - datetime.timedelta(seconds=2) <= logged <= datetime.datetime.now(datetime.timezone.utc)


def test_streamed_head_slow_and_failed_responses(server: RunningServer):
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert len(client.get('/stream', headers={'user-agent': 'stream'}).content) == STREAM_SIZE
        assert client.head('/hello', headers={'user-agent': 'head'}).status_code == 200
        assert client.get('/slow', headers={'user-agent': 'slow'}).status_code == 200
        assert client.get('/boom', headers={'user-agent': 'boom'}).status_code == 500
    assert wait_for_record(server, ua='stream')['size'] == STREAM_SIZE
    head = wait_for_record(server, ua='head')
    assert (head['method'], head['status'], head['size']) == ('HEAD', 200, 0)
    # the app waits 0.3 s; asyncio may fire a timer up to its clock resolution early, and the access
    # log measures with the server's clock, so a few milliseconds under 300 are the same wait
    assert wait_for_record(server, ua='slow')['dt'] >= 295
    boom = wait_for_record(server, ua='boom')
    assert (boom['status'], boom['trace']) == (500, '-')


def test_static_files_and_server_made_responses(server: RunningServer, static_dir: Path):
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        ok = client.get('/static/site.css', headers={'user-agent': 'static', 'accept-encoding': 'identity'})
        etag = ok.headers['etag']
        client.get('/static/site.css', headers={'user-agent': 'static-304', 'if-none-match': etag})
        client.get('/static/nothing.css', headers={'user-agent': 'static-404'})
    static = wait_for_record(server, ua='static')
    assert (static['status'], static['size']) == (200, len((static_dir / 'site.css').read_bytes()))
    assert wait_for_record(server, ua='static-304')['status'] == 304
    assert wait_for_record(server, ua='static-404')['status'] == 404


def test_requests_hyper_refuses_are_logged(server: RunningServer):
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(b'GET /bad\x01path HTTP/1.1\r\nhost: x\r\n\r\n')
        assert sock.recv(100).startswith(b'HTTP/1.1 400')
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(b'GET / HTTP/1.1\r\nhost: x\r\nx-big: ' + b'a' * 600_000 + b'\r\n\r\n')
        assert sock.recv(100).startswith(b'HTTP/1.1 431')
    bad = wait_for_record(server, status=400)
    assert (bad['method'], bad['path'], bad['proto'], bad['addr']) == ('-', '-', '-', '127.0.0.1')
    assert wait_for_record(server, status=431)['ua'] == '-'


def test_a_client_that_leaves_before_the_answer_is_logged_with_499(server: RunningServer):
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(b'GET /wait HTTP/1.1\r\nhost: x\r\nuser-agent: leaver\r\n\r\n')
        time.sleep(0.5)
    record = wait_for_record(server, ua='leaver')
    assert record['status'] == 499
    assert record['size'] == 0


def test_websocket_upgrades_are_logged_with_101(server: RunningServer):
    if server.interface == 'wsgi':
        pytest.skip('WSGI has no WebSockets')
    from websockets.sync.client import connect

    with connect(f'ws://127.0.0.1:{server.port}/ws', user_agent_header='ws-client') as ws:
        assert ws.recv(timeout=10) == 'hi'
    record = wait_for_record(server, ua='ws-client')
    assert (record['status'], record['scheme'], record['path']) == (101, 'ws', '/ws')


@pytest.mark.parametrize('interface', INTERFACES)
def test_the_default_format(interface: str):
    with RunningServer(
        f'access_app:{interface}', working_dir=APPS_DIR, interface=interface, extra_args=['--access-log']
    ) as server:
        httpx.get(server.url('/hello?q=1'), timeout=10)
        line = re.compile(
            r'^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] 127\.0\.0\.1 - "GET /hello HTTP/1\.1" 200 \d+\.\d{3}$',
            re.MULTILINE,
        )
        assert wait_until(lambda: line.search(server.output), 10), server.output


def test_lines_of_the_last_requests_survive_the_stop():
    """Lines handed over while the worker drains are still written before it exits."""
    args = ['--access-log', '--access-log-fmt', 'LAST %(path)s %(status)d']
    with RunningServer('access_app:rsgi', working_dir=APPS_DIR, extra_args=args) as server:
        assert server.wait_for_output('Started worker-1')
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for n in range(20):
                client.get(f'/hello?n={n}')
        assert server.stop() == 0
        assert server.output.count('LAST /hello 200') == 20, server.output


def test_off_by_default_and_silent_when_the_logger_is_off(tmp_path: Path):
    config = tmp_path / 'log.json'
    loggers = {
        '_granian': {'handlers': ['console'], 'level': 'INFO', 'propagate': False},
        'granian.access': {'handlers': ['access'], 'level': 'WARNING', 'propagate': False},
    }
    config.write_text(json.dumps({'loggers': loggers}))
    for extra in ([], ['--access-log', '--log-config', str(config)]):
        with RunningServer('access_app:rsgi', working_dir=APPS_DIR, extra_args=extra) as server:
            assert server.wait_for_output('Started worker-1')
            assert httpx.get(server.url('/hello'), timeout=10).status_code == 200
            time.sleep(0.3)
            assert '"GET /hello' not in server.output


def test_log_config_sends_json_lines_to_a_file(tmp_path: Path):
    log_file = tmp_path / 'access.jsonl'
    config = {
        'formatters': {'json': {'()': 'granian.log.JsonLinesFormatter'}},
        'handlers': {
            'file': {'class': 'logging.FileHandler', 'filename': str(log_file), 'formatter': 'json'},
            'console': {'class': 'logging.StreamHandler', 'formatter': 'json'},
        },
        'loggers': {
            'granian.access': {'handlers': ['file'], 'level': 'INFO', 'propagate': False},
            '_granian': {'handlers': ['console'], 'level': 'INFO', 'propagate': False},
        },
    }
    path = tmp_path / 'log.json'
    path.write_text(json.dumps(config))
    args = ['--access-log', '--log-config', str(path)]
    with RunningServer('access_app:asgi', working_dir=APPS_DIR, interface='asgi', extra_args=args) as server:
        httpx.get(server.url('/hello'), headers={'user-agent': 'json "lines"'}, timeout=10)
        assert wait_until(lambda: log_file.exists() and log_file.read_text().strip(), 10)
        startup = [json.loads(line) for line in server.output.splitlines() if line.startswith('{')]
        assert any(doc['logger'] == '_granian' and doc['message'].startswith('Started worker-1') for doc in startup)
    documents = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert len(documents) == 1
    assert documents[0]['logger'] == 'granian.access'
    assert documents[0]['level'] == 'INFO'
    assert '"GET /hello HTTP/1.1" 200' in documents[0]['message']


@pytest.mark.parametrize(
    ('fmt', 'reason'),
    [
        ('%(nope)s', 'unknown atom "nope"'),
        ('%(status)d %(addr)d', '%(addr) is text'),
        ('%s', 'needs an atom name'),
        ('%(status)', 'no conversion character'),
    ],
)
def test_bad_formats_stop_the_start_with_one_line(fmt: str, reason: str):
    done = run_granian(['--access-log', '--access-log-fmt', fmt, 'nothing:app'], cwd=APPS_DIR)
    assert done.returncode == 2  # a usage error, like every invalid option
    message = (done.stderr + done.stdout).strip()
    assert reason in message
    assert 'log_access_format' in message
    assert len(message.splitlines()) == 1, message


# The Rust renderer against Python's own `format % values`, for every spec the format accepts.
_numbers = st.sampled_from(['d', 'i', 'f', 'F', 'e', 'E', 's', 'r'])
_flags = st.text(alphabet='-0+ #', max_size=3)
_widths = st.one_of(st.just(''), st.integers(0, 12).map(str))
_precisions = st.one_of(st.just(''), st.integers(0, 8).map(lambda p: f'.{p}'))


@settings(max_examples=400, deadline=None)
@given(
    flags=_flags,
    width=_widths,
    precision=_precisions,
    real_conversion=_numbers,
    int_conversion=st.sampled_from(['d', 'i', 'x', 'X', 'o', 'f', 'e', 's', 'r']),
    text_conversion=st.sampled_from(['s', 'r']),
    dt=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    status=st.integers(100, 999),
    size=st.integers(0, 2**53),
    text=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)
def test_the_renderer_matches_python(
    flags, width, precision, real_conversion, int_conversion, text_conversion, dt, status, size, text
):
    spec = flags + width + precision
    fmt = f'a=%(dt_ms){spec}{real_conversion} b=%(status){spec}{int_conversion} c=%(path){spec}{text_conversion}'
    fmt += f' d=%(response_size){spec}{int_conversion} %% e=%(header{{x-a}}){spec}{text_conversion}'
    values = {'dt_ms': dt, 'status': status, 'path': text, 'response_size': size, 'header{x-a}': text}
    assert _core.render_access_log_line(fmt, values) == fmt % values


def test_the_default_format_renders_as_python_does():
    values = {
        'time': '2026-11-30 08:00:00 +0000',
        'addr': '10.0.0.1',
        'method': 'GET',
        'path': '/',
        'protocol': 'HTTP/2',
    }
    values |= {'status': 204, 'dt_ms': 1.23456}
    assert _core.render_access_log_line(DEFAULT_ACCESSLOG_FMT, values) == DEFAULT_ACCESSLOG_FMT % values


def test_https_and_wss_schemes(tmp_path: Path):
    from websockets.sync.client import connect

    cert, key, context = server_certificate(tmp_path)
    args = ['--access-log', '--access-log-fmt', JSON_FORMAT, '--ssl-certificate', str(cert), '--ssl-keyfile', str(key)]
    with RunningServer('access_app:rsgi', working_dir=APPS_DIR, extra_args=args) as server:
        with httpx.Client(verify=context, timeout=10) as client:
            client.get(f'https://127.0.0.1:{server.port}/hello', headers={'user-agent': 'tls'})
        with connect(f'wss://127.0.0.1:{server.port}/ws', ssl=context, user_agent_header='tls-ws') as ws:
            assert ws.recv(timeout=10) == 'hi'
        assert wait_for_record(server, ua='tls')['scheme'] == 'https'
        assert wait_for_record(server, ua='tls-ws')['scheme'] == 'wss'
