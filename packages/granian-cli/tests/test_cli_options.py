"""Option parsing of the granian command; the server class is replaced by a recorder of its arguments."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import os
import sys
import types
from typing import ClassVar

import pytest
from click.testing import CliRunner

from granian import cli as cli_module
from granian.errors import ConfigurationError, FatalError
from granian.http import HTTP1Settings, HTTP2Settings
from granian.server import Server

ALL_OPTIONS = [
    '--host',
    '--port',
    '--interface',
    '--http',
    '--workers',
    '--runtime-threads',
    '--runtime-mode',
    '--loop',
    '--backlog',
    '--backpressure',
    '--http1-buffer-size',
    '--http1-header-read-timeout',
    '--http1-keep-alive',
    '--no-http1-keep-alive',
    '--http1-pipeline-flush',
    '--no-http1-pipeline-flush',
    '--http2-adaptive-window',
    '--no-http2-adaptive-window',
    '--http2-initial-connection-window-size',
    '--http2-initial-stream-window-size',
    '--http2-keep-alive-interval',
    '--http2-keep-alive-timeout',
    '--http2-max-concurrent-streams',
    '--http2-max-frame-size',
    '--http2-max-headers-size',
    '--http2-max-send-buffer-size',
    '--log',
    '--no-log',
    '--log-level',
    '--log-config',
    '--factory',
    '--no-factory',
    '--working-dir',
    '--version',
]

# The CLI must pass every argument granian.server.Server takes.
SERVER_KWARGS = set(inspect.signature(Server.__init__).parameters) - {'self'}


class RecordingServer:
    """Stands in for granian.server.Server: records constructor arguments and whether serve() ran."""

    calls: ClassVar[list[dict]] = []
    serve_error: ClassVar[Exception | None] = None

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        RecordingServer.calls.append(kwargs)

    def serve(self):
        if RecordingServer.serve_error is not None:
            raise RecordingServer.serve_error


@pytest.fixture
def fake_server(monkeypatch):
    """Replace granian.server.Server with RecordingServer (creating a stub module if the real one is absent)."""
    RecordingServer.calls = []
    RecordingServer.serve_error = None
    try:
        server_module = importlib.import_module('granian.server')
    except ImportError:
        server_module = types.ModuleType('granian.server')
        monkeypatch.setitem(sys.modules, 'granian.server', server_module)
    monkeypatch.setattr(server_module, 'Server', RecordingServer, raising=False)
    return RecordingServer


@pytest.fixture
def missing_packages(monkeypatch):
    """Make every interface package importable except the module names added to the returned set."""
    missing: set[str] = set()
    real_find_spec = importlib.util.find_spec

    def find_spec(name, package=None):
        if name in missing:
            return None
        if name in {'granian.asgi', 'granian.rsgi', 'granian.wsgi'}:
            return importlib.machinery.ModuleSpec(name, None)
        return real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, 'find_spec', find_spec)
    return missing


@pytest.fixture
def run(fake_server, missing_packages, monkeypatch):
    """Invoke the command with a clean GRANIAN_* environment and return click's Result."""
    for name in [name for name in os.environ if name.startswith('GRANIAN_')]:
        monkeypatch.delenv(name)

    def invoke(*args, env=None):
        return CliRunner().invoke(cli_module.cli, list(args), env=env)

    return invoke


def test_help_lists_every_option(run):
    result = run('--help')
    assert result.exit_code == 0, result.output
    assert 'Usage: granian [OPTIONS] APP' in result.output
    for option in ALL_OPTIONS:
        assert option in result.output, option
    assert 'GRANIAN_LOG_ENABLED' in result.output


def test_every_option_has_help_text():
    for param in cli_module.cli.params:
        if param.param_type_name == 'option':
            assert param.help, param.name


def test_version(run):
    result = run('--version')
    assert result.exit_code == 0
    assert result.output.startswith('granian ')
    assert len(result.output.strip().splitlines()) == 1


def test_version_is_not_read_from_the_environment(run, fake_server):
    result = run('app:app', env={'GRANIAN_VERSION': '2.8.1'})
    assert result.exit_code == 0, result.output
    assert len(fake_server.calls) == 1


@pytest.mark.parametrize(
    ('args', 'option'),
    [
        (['--workers', '0'], '--workers'),
        (['--port', 'abc'], '--port'),
        (['--port', '70000'], '--port'),
        (['--http', '3'], '--http'),
        (['--backlog', '10'], '--backlog'),
        (['--backpressure', '0'], '--backpressure'),
        (['--interface', 'cgi'], '--interface'),
        (['--runtime-threads', '0'], '--runtime-threads'),
        (['--runtime-mode', 'fast'], '--runtime-mode'),
        (['--loop', 'nope'], '--loop'),
        (['--http1-buffer-size', '1024'], '--http1-buffer-size'),
        (['--http1-header-read-timeout', '0'], '--http1-header-read-timeout'),
        (['--http1-header-read-timeout', '60001'], '--http1-header-read-timeout'),
        (['--http2-initial-connection-window-size', '100'], '--http2-initial-connection-window-size'),
        (['--http2-initial-stream-window-size', '100'], '--http2-initial-stream-window-size'),
        (['--http2-keep-alive-interval', '0'], '--http2-keep-alive-interval'),
        (['--http2-keep-alive-timeout', '0'], '--http2-keep-alive-timeout'),
        (['--http2-keep-alive-timeout', '5 minutes'], '--http2-keep-alive-timeout'),
        (['--http2-max-concurrent-streams', '9'], '--http2-max-concurrent-streams'),
        (['--http2-max-frame-size', '100'], '--http2-max-frame-size'),
        (['--http2-max-headers-size', '0'], '--http2-max-headers-size'),
        (['--http2-max-send-buffer-size', '100'], '--http2-max-send-buffer-size'),
        (['--log-level', 'loud'], '--log-level'),
        (['--working-dir', '/nonexistent/granian-test-dir'], '--working-dir'),
    ],
)
def test_bad_value_exits_2_naming_the_option(run, fake_server, args, option):
    result = run(*args, 'app:app')
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert fake_server.calls == []


def test_app_is_required(run, fake_server):
    result = run()
    assert result.exit_code == 2
    assert 'APP' in result.output
    assert fake_server.calls == []


def _field_defaults(settings):
    return {field.name: field.default for field in dataclasses.fields(settings)}


def test_defaults_passed_to_server(run, fake_server):
    result = run('app:app')
    assert result.exit_code == 0, result.output
    (kwargs,) = fake_server.calls
    assert set(kwargs) == SERVER_KWARGS
    assert kwargs == {
        'target': 'app:app',
        'address': '127.0.0.1',
        'port': 8000,
        'interface': 'rsgi',
        'workers': 1,
        'runtime_threads': 1,
        'runtime_mode': 'auto',
        'loop': 'auto',
        'http': 'auto',
        'backlog': 1024,
        'backpressure': None,
        'http1_settings': HTTP1Settings(),
        'http2_settings': HTTP2Settings(),
        'log_enabled': True,
        'log_level': 'info',
        'log_dictconfig': None,
        'factory': False,
        'working_dir': None,
        'url_path_prefix': None,
        'blocking_threads': None,
        'blocking_threads_idle_timeout': 30,
    }
    assert dataclasses.asdict(kwargs['http1_settings']) == _field_defaults(HTTP1Settings)
    assert dataclasses.asdict(kwargs['http2_settings']) == _field_defaults(HTTP2Settings)


def test_option_defaults_come_from_the_settings_dataclasses():
    params = {param.name: param for param in cli_module.cli.params}
    http1 = _field_defaults(HTTP1Settings)
    http2 = _field_defaults(HTTP2Settings)
    assert params['http1_buffer_size'].default == http1['max_buffer_size']
    assert params['http1_header_read_timeout'].default == http1['header_read_timeout']
    assert params['http1_keep_alive'].default == http1['keep_alive']
    assert params['http1_pipeline_flush'].default == http1['pipeline_flush']
    for name, default in http2.items():
        assert params[f'http2_{name}'].default == default, name


@pytest.mark.parametrize(
    ('env', 'check'),
    [
        ({'GRANIAN_HOST': '0.0.0.0'}, lambda kw: kw['address'] == '0.0.0.0'),
        ({'GRANIAN_PORT': '9001'}, lambda kw: kw['port'] == 9001),
        ({'GRANIAN_INTERFACE': 'asgi'}, lambda kw: kw['interface'] == 'asgi'),
        ({'GRANIAN_HTTP': '2'}, lambda kw: kw['http'] == '2'),
        ({'GRANIAN_WORKERS': '3'}, lambda kw: kw['workers'] == 3),
        ({'GRANIAN_RUNTIME_THREADS': '4'}, lambda kw: kw['runtime_threads'] == 4),
        ({'GRANIAN_RUNTIME_MODE': 'st'}, lambda kw: kw['runtime_mode'] == 'st'),
        ({'GRANIAN_LOOP': 'asyncio'}, lambda kw: kw['loop'] == 'asyncio'),
        ({'GRANIAN_BACKLOG': '2048'}, lambda kw: kw['backlog'] == 2048),
        ({'GRANIAN_BACKPRESSURE': '16'}, lambda kw: kw['backpressure'] == 16),
        ({'GRANIAN_HTTP1_BUFFER_SIZE': '65536'}, lambda kw: kw['http1_settings'].max_buffer_size == 65536),
        ({'GRANIAN_HTTP1_HEADER_READ_TIMEOUT': '500'}, lambda kw: kw['http1_settings'].header_read_timeout == 500),
        ({'GRANIAN_HTTP1_KEEP_ALIVE': 'false'}, lambda kw: kw['http1_settings'].keep_alive is False),
        ({'GRANIAN_HTTP1_PIPELINE_FLUSH': 'true'}, lambda kw: kw['http1_settings'].pipeline_flush is True),
        ({'GRANIAN_HTTP2_ADAPTIVE_WINDOW': '1'}, lambda kw: kw['http2_settings'].adaptive_window is True),
        (
            {'GRANIAN_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE': '2048'},
            lambda kw: kw['http2_settings'].initial_connection_window_size == 2048,
        ),
        (
            {'GRANIAN_HTTP2_INITIAL_STREAM_WINDOW_SIZE': '4096'},
            lambda kw: kw['http2_settings'].initial_stream_window_size == 4096,
        ),
        ({'GRANIAN_HTTP2_KEEP_ALIVE_INTERVAL': '1500'}, lambda kw: kw['http2_settings'].keep_alive_interval == 1500),
        ({'GRANIAN_HTTP2_KEEP_ALIVE_TIMEOUT': '1m30s'}, lambda kw: kw['http2_settings'].keep_alive_timeout == 90),
        (
            {'GRANIAN_HTTP2_MAX_CONCURRENT_STREAMS': '50'},
            lambda kw: kw['http2_settings'].max_concurrent_streams == 50,
        ),
        ({'GRANIAN_HTTP2_MAX_FRAME_SIZE': '32768'}, lambda kw: kw['http2_settings'].max_frame_size == 32768),
        ({'GRANIAN_HTTP2_MAX_HEADERS_SIZE': '8192'}, lambda kw: kw['http2_settings'].max_headers_size == 8192),
        (
            {'GRANIAN_HTTP2_MAX_SEND_BUFFER_SIZE': '2048'},
            lambda kw: kw['http2_settings'].max_send_buffer_size == 2048,
        ),
        ({'GRANIAN_LOG_ENABLED': 'false'}, lambda kw: kw['log_enabled'] is False),
        ({'GRANIAN_LOG_LEVEL': 'debug'}, lambda kw: kw['log_level'] == 'debug'),
        ({'GRANIAN_FACTORY': 'true'}, lambda kw: kw['factory'] is True),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else '',
)
def test_environment_variable_sets_option(run, fake_server, env, check):
    result = run('app:app', env=env)
    assert result.exit_code == 0, result.output
    (kwargs,) = fake_server.calls
    assert check(kwargs), kwargs


def test_working_dir_from_environment(run, fake_server, tmp_path):
    result = run('app:app', env={'GRANIAN_WORKING_DIR': str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert fake_server.calls[0]['working_dir'] == tmp_path


def test_bad_environment_value_exits_2(run, fake_server):
    result = run('app:app', env={'GRANIAN_WORKERS': '0'})
    assert result.exit_code == 2
    assert '--workers' in result.output
    assert fake_server.calls == []


def test_command_line_beats_environment(run, fake_server):
    result = run('--workers', '2', 'app:app', env={'GRANIAN_WORKERS': '5'})
    assert result.exit_code == 0, result.output
    assert fake_server.calls[0]['workers'] == 2


def test_flags_and_values_on_the_command_line(run, fake_server, tmp_path):
    result = run(
        '--host=0.0.0.0',
        '--port=0',
        '--interface=wsgi',
        '--http=1',
        '--no-http1-keep-alive',
        '--http1-pipeline-flush',
        '--http2-adaptive-window',
        '--http2-keep-alive-timeout=2h',
        '--no-log',
        '--log-level=WARNING',
        '--factory',
        f'--working-dir={tmp_path}',
        'pkg.module:create_app',
    )
    assert result.exit_code == 0, result.output
    (kwargs,) = fake_server.calls
    assert kwargs['target'] == 'pkg.module:create_app'
    assert kwargs['address'] == '0.0.0.0'
    assert kwargs['port'] == 0
    assert kwargs['interface'] == 'wsgi'
    assert kwargs['http'] == '1'
    assert kwargs['http1_settings'] == HTTP1Settings(keep_alive=False, pipeline_flush=True)
    assert kwargs['http2_settings'] == HTTP2Settings(adaptive_window=True, keep_alive_timeout=7200)
    assert kwargs['log_enabled'] is False
    assert kwargs['log_level'] == 'warning'
    assert kwargs['factory'] is True
    assert kwargs['working_dir'] == tmp_path


def test_log_config_is_passed_as_dict(run, fake_server, tmp_path):
    config = {'version': 1, 'loggers': {'_granian': {'level': 'DEBUG'}}}
    path = tmp_path / 'log.json'
    path.write_text(json.dumps(config))
    result = run('--log-config', str(path), 'app:app')
    assert result.exit_code == 0, result.output
    assert fake_server.calls[0]['log_dictconfig'] == config


@pytest.mark.parametrize('content', ['{"version": 1,', '[1, 2]', '\udcff'])
def test_log_config_invalid_exits_1(run, fake_server, tmp_path, content):
    path = tmp_path / 'log.json'
    path.write_bytes(content.encode('utf-8', 'surrogateescape'))
    result = run('--log-config', str(path), 'app:app')
    assert result.exit_code == 1
    assert str(path) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert fake_server.calls == []


def test_log_config_missing_file_exits_1(run, fake_server, tmp_path):
    path = tmp_path / 'absent.json'
    result = run('--log-config', str(path), 'app:app')
    assert result.exit_code == 1
    assert str(path) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert fake_server.calls == []


@pytest.mark.parametrize(
    ('interface', 'module', 'distribution'),
    [
        ('wsgi', 'granian.wsgi', 'granian-wsgi'),
        ('asgi', 'granian.asgi', 'granian-asgi'),
        ('asginl', 'granian.asgi', 'granian-asgi'),
        ('rsgi', 'granian.rsgi', 'granian-rsgi'),
    ],
)
def test_missing_interface_package_exits_2(run, fake_server, missing_packages, interface, module, distribution):
    missing_packages.add(module)
    result = run('--interface', interface, 'app:app')
    assert result.exit_code == 2
    assert f'pip install {distribution}' in result.output
    assert f"'{interface}'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert fake_server.calls == []


def test_fatal_error_exits_1_with_one_line(run, fake_server):
    fake_server.serve_error = FatalError('cannot import app:app: No module named app')
    result = run('app:app')
    assert result.exit_code == 1
    assert result.output.strip() == 'Error: cannot import app:app: No module named app'


def test_fatal_error_already_logged_prints_nothing(run, fake_server):
    fake_server.serve_error = FatalError('worker-1 failed to start', logged=True)
    result = run('app:app')
    assert result.exit_code == 1
    assert result.output == ''


def test_configuration_error_from_server_exits_2(run, fake_server):
    fake_server.serve_error = ConfigurationError('blocking_threads must be 1 for the rsgi interface.')
    result = run('app:app')
    assert result.exit_code == 2
    assert 'blocking_threads' in result.output


def test_python_dash_m_without_cli_package(monkeypatch, capsys):
    main_module = importlib.import_module('granian.__main__')
    monkeypatch.setitem(sys.modules, 'granian.cli', None)
    with pytest.raises(SystemExit) as excinfo:
        main_module.main()
    assert excinfo.value.code == 2
    assert capsys.readouterr().err.strip() == (
        'The granian command needs the granian-cli package: pip install granian-cli'
    )
