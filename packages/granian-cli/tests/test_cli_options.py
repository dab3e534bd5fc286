"""The `granian` command and `python -m granian.wsgi`, derived from the option registry.

The server class is replaced by a recorder that still runs `Granian(...)`'s validation on what it receives,
so every value the command lines accept is proven acceptable to the API too.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import types
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from granian import cli as cli_module
from granian.errors import ConfigurationError, FatalError
from granian.options import GROUPS, OPTIONS, Option, OptionError, check_kwargs, options_for
from granian.options.runner import build_parser, parse_command_line
from tests_support.options import invalid_texts, sample_text, valid_texts

VALUE_OPTIONS = [option for option in OPTIONS if not option.kind.is_flag]
FLAG_OPTIONS = [option for option in OPTIONS if option.kind.is_flag]
WSGI_OPTIONS = options_for('wsgi', exclude=('interface',))


def _ids(option: Option) -> str:
    return option.name


class RecordingServer:
    """Stands in for granian.server.Server: validates like it, records the options, and whether serve() ran."""

    calls: ClassVar[list[dict[str, Any]]] = []
    serve_error: ClassVar[Exception | None] = None

    def __init__(self, target: str, **kwargs: Any) -> None:
        values = check_kwargs(kwargs)
        RecordingServer.calls.append({'target': target, **values})

    def serve(self) -> None:
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


def _recorded(fake_server) -> dict[str, Any]:
    (values,) = fake_server.calls
    return values


# --help


def test_help_lists_every_option_with_its_default_and_variable(run):
    result = run('--help')
    assert result.exit_code == 0, result.output
    assert 'Usage: granian [OPTIONS] APP' in result.output
    text = ' '.join(result.output.split())
    for option in OPTIONS:
        for switch in option.switches:
            assert switch in text, switch
        assert option.env in text.replace(' ', ''), option.env
    for option in VALUE_OPTIONS:
        assert f'default: {option.default_display()}' in text or f'default: ({option.default_display()})' in text


def test_help_groups_options_by_concern(run):
    output = run('--help').output
    positions = [output.index(f'\n{title}:\n') for title in GROUPS.values()]
    assert positions == sorted(positions)
    for option in OPTIONS:
        section_start = output.index(f'\n{GROUPS[option.group]}:\n')
        section_end = output.index('\n\n', section_start + 1)
        assert option.switches[0] in output[section_start:section_end], option.name


def test_every_option_has_help_text():
    for param in cli_module.cli.params:
        if param.param_type_name == 'option':
            assert param.help, param.name


def test_help_imports_no_server_machinery():
    code = (
        'import sys\n'
        'from granian.cli import cli\n'
        'try:\n'
        "    cli(['--help'])\n"
        'except SystemExit:\n'
        '    pass\n'
        "heavy = sorted(name for name in sys.modules if name.startswith(('granian.server', 'granian._core', "
        "'granian.asgi', 'granian.rsgi', 'granian.wsgi', 'granian._loops', 'multiprocessing', 'asyncio')))\n"
        'print(heavy, file=sys.stderr)\n'
    )
    result = subprocess.run([sys.executable, '-c', code], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == '[]'
    assert '--http2-max-frame-size' in result.stdout


def test_version_names_every_distribution(run):
    import platform

    import granian

    result = run('--version')
    assert result.exit_code == 0
    first, *rest = result.output.strip().splitlines()
    assert first == f'granian {granian.__version__}'  # Granian 2.8's one line comes first
    assert [line.split() for line in rest] == [
        ['granian-core', granian.__version__],
        ['granian-asgi', granian.__version__],
        ['granian-rsgi', granian.__version__],
        ['granian-wsgi', granian.__version__],
        ['granian-cli', granian.__version__],
        [platform.python_implementation(), platform.python_version()],
    ]


def test_version_is_not_read_from_the_environment(run, fake_server):
    result = run('app:app', env={'GRANIAN_VERSION': '2.8.1'})
    assert result.exit_code == 0, result.output
    assert len(fake_server.calls) == 1


def test_app_is_required(run, fake_server):
    result = run()
    assert result.exit_code == 2
    assert 'APP' in result.output
    assert fake_server.calls == []


# Values


def test_defaults_are_the_registry_defaults(run, fake_server):
    result = run('app:app')
    assert result.exit_code == 0, result.output
    values = _recorded(fake_server)
    assert values == {'target': 'app:app', **{option.name: option.default for option in OPTIONS}}


def _given(option: Option, text: str) -> object:
    """The value one flag or variable of `text` gives: a one-item list for a repeatable option."""
    value = option.parse(text)
    return [value] if option.multiple else value


@pytest.mark.parametrize('option', OPTIONS, ids=_ids)
def test_environment_variable_sets_option(run, fake_server, option):
    text = sample_text(option)
    result = run('app:app', env={option.env: text})
    assert result.exit_code == 0, result.output
    assert _recorded(fake_server)[option.name] == _given(option, text)


@pytest.mark.parametrize('option', VALUE_OPTIONS, ids=_ids)
def test_flag_sets_option(run, fake_server, option):
    for text in valid_texts(option):
        fake_server.calls.clear()
        result = run(option.flags[0], text, 'app:app')
        assert result.exit_code == 0, result.output
        assert _recorded(fake_server)[option.name] == _given(option, text)


@pytest.mark.parametrize('option', FLAG_OPTIONS, ids=_ids)
def test_on_off_flags(run, fake_server, option):
    positive, negative = option.switches
    for switch, expected in ((positive, True), (negative, False)):
        fake_server.calls.clear()
        result = run(switch, 'app:app', env={option.env: str(not expected)})
        assert result.exit_code == 0, result.output
        assert _recorded(fake_server)[option.name] is expected


def test_command_line_beats_environment(run, fake_server):
    result = run('--workers', '2', 'app:app', env={'GRANIAN_WORKERS': '5'})
    assert result.exit_code == 0, result.output
    assert _recorded(fake_server)['workers'] == 2


@pytest.mark.parametrize('option', VALUE_OPTIONS, ids=_ids)
def test_invalid_values_are_refused_with_the_registry_message(run, fake_server, option):
    for text in invalid_texts(option):
        with pytest.raises(OptionError) as excinfo:
            option.parse(text)
        expected = f'Error: {excinfo.value}\n'
        results = [run(option.flags[0], text, 'app:app')]
        if text:  # an empty variable counts as unset
            results.append(run('app:app', env={option.env: text}))
        for result in results:
            assert result.exit_code == 2, (text, result.output)
            assert result.output == expected, text
    assert fake_server.calls == []


@pytest.mark.parametrize('option', FLAG_OPTIONS, ids=_ids)
def test_invalid_environment_flag_is_refused(run, fake_server, option):
    for text in filter(None, invalid_texts(option)):
        result = run('app:app', env={option.env: text})
        assert result.exit_code == 2, (text, result.output)
        assert result.output.startswith(f'Error: Invalid {option.name}: ')
        assert len(result.output.splitlines()) == 1
    assert fake_server.calls == []


@pytest.mark.parametrize(
    ('option_name', 'value'),
    [
        ('port', 70000),
        ('backlog', 100),
        ('workers', 0),
        ('http2_max_frame_size', 1024),
        ('http2_keep_alive_timeout', 0),
    ],
)
def test_cli_and_api_refuse_with_the_same_message(run, option_name, value):
    (option,) = (option for option in OPTIONS if option.name == option_name)
    with pytest.raises(OptionError) as excinfo:
        option.check(value)
    result = run(option.flags[0], str(value), 'app:app')
    assert result.output == f'Error: {excinfo.value}\n'


def test_log_config_is_passed_as_dict(run, fake_server, tmp_path):
    config = {'version': 1, 'loggers': {'_granian': {'level': 'DEBUG'}}}
    path = tmp_path / 'log.json'
    path.write_text(json.dumps(config))
    result = run('--log-config', str(path), 'app:app')
    assert result.exit_code == 0, result.output
    assert _recorded(fake_server)['log_dictconfig'] == config


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


def test_cross_option_error_exits_2_with_one_line(run, fake_server, monkeypatch):
    from granian.server import supervisor

    monkeypatch.setattr(sys.modules['granian.server'], 'Server', supervisor.Server)
    result = run('--interface', 'rsgi', '--blocking-threads', '4', 'app:app')
    assert result.exit_code == 2
    assert result.output.startswith('Error: Invalid blocking_threads:')
    assert len(result.output.splitlines()) == 1


def test_python_dash_m_without_cli_package(monkeypatch, capsys):
    main_module = importlib.import_module('granian.__main__')
    monkeypatch.setitem(sys.modules, 'granian.cli', None)
    with pytest.raises(SystemExit) as excinfo:
        main_module.main()
    assert excinfo.value.code == 2
    assert capsys.readouterr().err.strip() == (
        'The granian command needs the granian-cli package: pip install granian-cli'
    )


# The click-free runner (`python -m granian.wsgi`) against the `granian` command


def _runner_values(argv: list[str], environ: dict[str, str] | None = None) -> dict[str, Any]:
    parser = build_parser('python -m granian.wsgi', 'test', WSGI_OPTIONS)
    _target, values = parse_command_line(parser, WSGI_OPTIONS, [*argv, 'app:app'], environ or {})
    return values


def test_runner_has_the_wsgi_options():
    names = {option.name for option in WSGI_OPTIONS}
    websocket_options = {'websockets', 'ws_max_size', 'ws_ping_interval', 'ws_ping_timeout', 'ws_per_message_deflate'}
    async_only = {'task_impl', *websocket_options}
    assert names == {option.name for option in OPTIONS} - {'interface'} - async_only


@pytest.mark.parametrize('option', WSGI_OPTIONS, ids=_ids)
def test_runner_reads_values_like_the_cli(run, fake_server, option):
    text = sample_text(option)
    assert _runner_values([], {option.env: text})[option.name] == _given(option, text)
    if option.kind.is_flag:
        positive, negative = option.switches
        assert _runner_values([positive], {option.env: 'false'})[option.name] is True
        assert _runner_values([negative], {option.env: 'true'})[option.name] is False
    else:
        assert _runner_values([option.flags[0], text], {option.env: 'garbage'})[option.name] == _given(option, text)


@pytest.mark.parametrize('option', WSGI_OPTIONS, ids=_ids)
def test_runner_refuses_like_the_cli(run, option):
    for text in invalid_texts(option):
        if text:  # an empty variable counts as unset
            cli_output = run('app:app', env={option.env: text}).output
            with pytest.raises(OptionError) as excinfo:
                _runner_values([], {option.env: text})
            assert cli_output == f'Error: {excinfo.value}\n'
        if not option.kind.is_flag:
            cli_output = run(option.flags[0], text, 'app:app').output
            with pytest.raises(OptionError) as excinfo:
                _runner_values([option.flags[0], text])
            assert cli_output == f'Error: {excinfo.value}\n'


def test_empty_variables_count_as_unset(run, fake_server):
    environ = {option.env: '' for option in OPTIONS}
    result = run('app:app', env=environ)
    assert result.exit_code == 0, result.output
    assert _recorded(fake_server) == {'target': 'app:app', **{option.name: option.default for option in OPTIONS}}
    assert _runner_values([], environ) == {}


def test_repeatable_options_collect_every_value():
    """An option declared `multiple=True` is repeatable on both command lines and split on spaces in its variable."""
    import click

    from granian.cli import click_option
    from granian.options import Text

    option = Option('paths', Text(), None, 'Paths to use.', 'app', multiple=True)
    command = click.Command('probe', params=[click_option(option)], callback=lambda paths: print(repr(paths)))
    runner = CliRunner()
    assert runner.invoke(command, ['--paths', 'a', '--paths', 'b']).output.strip() == "('a', 'b')"
    assert runner.invoke(command, [], env={'GRANIAN_PATHS': 'a b'}).output.strip() == "('a', 'b')"
    refused = runner.invoke(command, ['--paths', ''])
    assert refused.exit_code == 2 and refused.output.startswith('Error: Invalid paths: ')

    parser = build_parser('probe', 'test', [option])
    assert parse_command_line(parser, [option], ['--paths', 'a', '--paths=b', 'app:app'], {})[1] == {
        'paths': ['a', 'b']
    }
    assert parse_command_line(parser, [option], ['app:app'], {'GRANIAN_PATHS': 'a b'})[1] == {'paths': ['a', 'b']}
    assert option.check(['a', 'b']) == ['a', 'b']
    with pytest.raises(OptionError):
        option.check('a')
