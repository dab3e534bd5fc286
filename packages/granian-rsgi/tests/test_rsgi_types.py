"""The typing protocols of granian.rsgi.

A fully annotated app (examples/rsgi_typed) passes `mypy --strict` and pyright (strict), and so does
granian.rsgi itself; an app that misuses the RSGI objects is rejected by both (so the protocols are not
`Any` in disguise); the stubs of the native objects satisfy the protocols; and at run time the objects
the server passes are instances of the (runtime-checkable) protocols, and the example serves HTTP and
a WebSocket echo.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import granian

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_DIR = REPO / 'examples' / 'rsgi_typed'
EXAMPLE = EXAMPLE_DIR / 'main.py'
RSGI_PACKAGE = REPO / 'packages' / 'granian-rsgi' / 'granian' / 'rsgi'
APPS_DIR = Path(__file__).parent / 'apps'
CHECK_TIMEOUT = 300

# The native classes' stubs must be usable wherever the protocols are expected.
NATIVE_CONFORMANCE = """\
from granian import _core
from granian.rsgi import (
    Headers,
    HTTPProtocol,
    HTTPStreamTransport,
    Scope,
    WebsocketMessage,
    WebsocketProtocol,
    WebsocketTransport,
)


def accepts(
    headers: _core.RSGIHeaders,
    scope: _core.RSGIHTTPScope,
    http: _core.RSGIHTTPProtocol,
    stream: _core.RSGIHTTPStreamTransport,
    websocket: _core.RSGIWebsocketProtocol,
    transport: _core.RSGIWebsocketTransport,
    message: _core.RSGIWebsocketMessage,
) -> tuple[object, ...]:
    as_headers: Headers = headers
    as_scope: Scope = scope
    as_http: HTTPProtocol = http
    as_stream: HTTPStreamTransport = stream
    as_websocket: WebsocketProtocol = websocket
    as_transport: WebsocketTransport = transport
    as_message: WebsocketMessage = message
    return (as_headers, as_scope, as_http, as_stream, as_websocket, as_transport, as_message)
"""

# Every line marked `# wrong` must be reported by both checkers.
WRONG_APP = """\
import asyncio

from granian.rsgi import App, HTTPProtocol, LifecycleAppObject, Scope, WebsocketProtocol


async def http(scope: Scope, protocol: HTTPProtocol) -> None:
    print(scope.nonexistent)  # wrong: no such scope attribute
    print(scope.headers.get('host').lower())  # wrong: the header may be missing
    body: str = await protocol()  # wrong: the body is bytes
    print(body)
    protocol.close()  # wrong: HTTP protocols have no close()
    protocol.response_bytes(200, [('content-length', 3)], b'abc')  # wrong: header values are str
    protocol.response_str(200, [], b'bytes where a str goes')  # wrong: response_str takes a str body
    transport = protocol.response_stream(200)
    await transport.send_str(b'chunk')  # wrong: send_str takes a str


async def websocket(protocol: WebsocketProtocol) -> None:
    transport = await protocol.accept()
    message = await transport.receive()
    await transport.send_str(message.data)  # wrong: data may be bytes or None
    protocol.close('going away')  # wrong: the close status is an int
    asyncio.create_task(transport.receive())  # wrong: an awaitable, not a coroutine (create_task raises)


async def http_only(scope: Scope, protocol: HTTPProtocol) -> None:
    protocol.response_empty(204)


class NoHooks:
    async def __rsgi__(self, scope: Scope, protocol: HTTPProtocol | WebsocketProtocol) -> None:
        return None


app: App = http_only  # wrong: an app is called with WebSocket protocols too
lifecycle: LifecycleAppObject = NoHooks()  # wrong: no __rsgi_init__ / __rsgi_del__
"""


def wrong_lines(source: str) -> set[int]:
    """1-based numbers of the lines marked `# wrong`."""
    return {number for number, line in enumerate(source.splitlines(), 1) if '# wrong' in line}


@pytest.fixture(scope='module')
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp('mypy-cache')


def run_mypy(cache: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, '-m', 'mypy', '--strict', '--cache-dir', str(cache), '--no-color-output', *targets],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope='module')
def pyright_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A strict pyright configuration that sees `granian` as one installed package.

    In the editable workspace `granian` is a regular package (granian-core's, with `__init__.py`)
    that other distributions extend through `pkgutil.extend_path`; pyright does not merge those parts
    as Python does, so it would not find `granian.rsgi`. A directory of symlinks to every part of
    `granian.__path__`, put first on pyright's search path, is the layout a wheel install has.
    """
    root = tmp_path_factory.mktemp('pyright')
    merged = root / 'site' / 'granian'
    merged.mkdir(parents=True)
    for part in granian.__path__:
        for entry in Path(part).iterdir():
            if entry.name != '__pycache__' and not (merged / entry.name).exists():
                (merged / entry.name).symlink_to(entry)
    config = root / 'pyrightconfig.json'
    config.write_text(json.dumps({'typeCheckingMode': 'strict', 'extraPaths': [str(root / 'site')]}))
    return config


def run_pyright(config: Path, *targets: str) -> tuple[list[dict], str]:
    """Pyright's diagnostics of `targets` (run with this interpreter, so it sees our environment).

    CI installs pyright with the test dependency group; without it these tests fail instead of skipping.
    """
    if importlib.util.find_spec('pyright') is None:
        pytest.fail(
            f'pyright is not installed in the environment of {sys.executable}: install the "test" dependency '
            'group of pyproject.toml (it lists pyright[nodejs]>=1.1.400), e.g. '
            'pip install "pyright[nodejs]>=1.1.400"',
            pytrace=False,
        )
    env = {**os.environ, 'PYRIGHT_PYTHON_IGNORE_WARNINGS': '1'}
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'pyright',
            '--outputjson',
            '--project',
            str(config),
            '--pythonpath',
            sys.executable,
            *targets,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        check=False,
        env=env,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f'pyright did not run (exit {result.returncode}):\n{result.stdout}\n{result.stderr}')
    unresolved = [d for d in report['generalDiagnostics'] if d.get('rule') == 'reportMissingImports']
    assert not unresolved, f'pyright did not find modules:\n{result.stdout}'
    return report['generalDiagnostics'], result.stdout


def test_example_and_package_pass_mypy_strict(mypy_cache: Path):
    result = run_mypy(mypy_cache, str(EXAMPLE), str(APPS_DIR / 'rsgi_types_app.py'))
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_mypy(mypy_cache, '-p', 'granian.rsgi')
    assert result.returncode == 0, result.stdout + result.stderr


def test_native_stubs_satisfy_the_protocols_for_mypy(mypy_cache: Path, tmp_path: Path):
    conformance = tmp_path / 'native_conformance.py'
    conformance.write_text(NATIVE_CONFORMANCE)
    result = run_mypy(mypy_cache, str(conformance))
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_rejects_a_wrong_app(mypy_cache: Path, tmp_path: Path):
    wrong = tmp_path / 'wrong_app.py'
    wrong.write_text(WRONG_APP)
    result = run_mypy(mypy_cache, str(wrong))
    assert result.returncode == 1, result.stdout + result.stderr
    assert '[import' not in result.stdout, result.stdout
    flagged = {int(line) for line in re.findall(r'^[^\n]*wrong_app\.py:(\d+): error:', result.stdout, re.MULTILINE)}
    missed = wrong_lines(WRONG_APP) - flagged
    assert not missed, f'mypy accepted lines {sorted(missed)}:\n{result.stdout}'


def test_example_package_and_native_stubs_pass_pyright(pyright_config: Path, tmp_path: Path):
    conformance = tmp_path / 'native_conformance.py'
    conformance.write_text(NATIVE_CONFORMANCE)
    targets = [str(EXAMPLE), str(APPS_DIR / 'rsgi_types_app.py'), str(conformance), str(RSGI_PACKAGE)]
    diagnostics, output = run_pyright(pyright_config, *targets)
    errors = [diagnostic for diagnostic in diagnostics if diagnostic['severity'] in ('error', 'warning')]
    assert not errors, output


def test_pyright_rejects_a_wrong_app(pyright_config: Path, tmp_path: Path):
    wrong = tmp_path / 'wrong_app.py'
    wrong.write_text(WRONG_APP)
    diagnostics, output = run_pyright(pyright_config, str(wrong))
    flagged = {d['range']['start']['line'] + 1 for d in diagnostics if d['severity'] == 'error'}
    missed = wrong_lines(WRONG_APP) - flagged
    assert not missed, f'pyright accepted lines {sorted(missed)}:\n{output}'


def test_the_example_is_annotated_with_the_protocols():
    # A sanity check of what the type checks above are about: the example is typed with granian.rsgi.
    source = EXAMPLE.read_text()
    for name in ('Scope', 'HTTPProtocol', 'WebsocketProtocol', 'WebsocketTransport', 'LifecycleAppObject', 'App'):
        assert re.search(rf'\b{name}\b', source), name
    assert 'Any' not in re.findall(r'\w+', source)


@pytest.fixture(scope='module')
def example_server(server_factory):
    return server_factory('main:app', working_dir=EXAMPLE_DIR)


@pytest.fixture(scope='module')
def types_server(server_factory):
    return server_factory('rsgi_types_app:app', working_dir=APPS_DIR)


def ws_url(server, path: str) -> str:
    return f'ws://{server.host}:{server.port}{path}'


def test_example_serves_http(example_server):
    with httpx.Client(base_url=example_server.base_url, timeout=30) as client:
        response = client.get('/', params={'name': 'typed'})
        assert (response.status_code, response.text) == (200, 'Hello, typed!\n')
        assert response.headers['content-type'] == 'text/plain; charset=utf-8'

        response = client.post('/echo', content=b'\x00payload' * 1000, headers={'content-type': 'application/x-test'})
        assert (response.status_code, response.content) == (200, b'\x00payload' * 1000)
        assert response.headers['content-type'] == 'application/x-test'

        response = client.post('/json', content=b'12345', headers={'accept': 'text/plain'})
        assert response.status_code == 200
        summary = response.json()
        assert (summary['method'], summary['path'], summary['body_bytes']) == ('POST', '/json', 5)
        assert summary['accept'] == ['text/plain']

        response = client.get('/stream', params={'lines': '3'})
        assert (response.status_code, response.text) == (200, 'line 1\nline 2\nline 3\n')

        response = client.get('/static/hello.txt')
        assert (response.status_code, response.text) == (200, (EXAMPLE_DIR / 'static' / 'hello.txt').read_text())
        assert client.get('/static/missing.txt').status_code == 404
        assert client.get('/nowhere').status_code == 404

        stats = client.get('/stats').json()
        assert stats['requests']['http'] >= 7
        assert re.fullmatch(r'\d\d:\d\d:\d\d', stats['clock'])


def test_example_echoes_websocket_messages(example_server):
    with connect(ws_url(example_server, '/ws'), open_timeout=30, close_timeout=10) as websocket:
        websocket.send('hello, typed')
        assert websocket.recv(timeout=30) == 'hello, typed'
        websocket.send(b'\x00\x01binary')
        assert websocket.recv(timeout=30) == b'\x00\x01binary'
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(example_server, '/elsewhere'), open_timeout=30).close()
    assert refused.value.response.status_code == 404


def test_native_objects_are_instances_of_the_protocols(types_server):
    response = httpx.get(types_server.url('/'), timeout=30)
    assert response.status_code == 200
    assert response.json() == {
        'Scope': True,
        'Headers': True,
        'HTTPProtocol': True,
        'WebsocketProtocol': False,
        'HTTPStreamTransport': True,
    }
    with connect(ws_url(types_server, '/'), open_timeout=30, close_timeout=10) as websocket:
        websocket.send('check')
        found = json.loads(websocket.recv(timeout=30))
    assert found == {
        'Scope': True,
        'Headers': True,
        'HTTPProtocol': False,
        'WebsocketProtocol': True,
        'WebsocketTransport': True,
        'WebsocketMessage': True,
    }


def test_app_forms_are_runtime_checkable():
    from granian.rsgi import App, AppObject, LifecycleAppObject

    spec = importlib.util.spec_from_file_location('rsgi_typed_example', EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.app, LifecycleAppObject)
    assert isinstance(module.app, AppObject)
    assert isinstance(module.hello, App)
    assert not isinstance(module.hello, AppObject)
    assert not isinstance(object(), LifecycleAppObject)


def test_every_protocol_names_its_spec_section():
    import granian.rsgi

    spec = (REPO / 'spec' / 'rsgi.md').read_text()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', spec))
    # GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens.
    for heading in re.findall(r'^#+ (.+)$', spec, re.MULTILINE):
        anchors.add(re.sub(r'[^\w\- ]', '', heading.lower()).replace(' ', '-'))
    protocols = [
        getattr(granian.rsgi, name)
        for name in granian.rsgi.__all__
        if getattr(getattr(granian.rsgi, name), '_is_protocol', False)
    ]
    assert len(protocols) == 10, protocols
    for protocol in protocols:
        links = re.findall(r'spec/rsgi\.md#([\w-]+)', protocol.__doc__ or '')
        assert links and 'Spec: spec/rsgi.md#' in protocol.__doc__, protocol
        assert set(links) <= anchors, (protocol, set(links) - anchors)
