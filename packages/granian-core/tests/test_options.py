"""The option registry and `Granian(...)`: one description per option, the signature agrees with it, and every
option refuses extreme or malformed values with one line instead of a traceback."""

from __future__ import annotations

import inspect
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from granian import Granian
from granian.errors import ConfigurationError
from granian.http import HTTP1Settings, HTTP2Settings
from granian.options import GROUPS, OPTIONS, OPTIONS_BY_NAME, SECTIONS, Option, OptionError, check_kwargs
from granian.server.config import WorkerSettings
from granian.server.listen import somaxconn_notice
from tests_support.options import invalid_texts, invalid_values, valid_texts

REPO_ROOT = Path(__file__).resolve().parents[3]
TOP_LEVEL = [option for option in OPTIONS if option.kwarg is not None]


def _ids(option: Option) -> str:
    return option.name


def _one_line(message: str) -> None:
    assert message and '\n' not in message, message
    # Not the text a traceback starts with (a refused value is quoted, and may be any word).
    assert 'Traceback (most recent call last)' not in message


@pytest.mark.parametrize('option', OPTIONS, ids=_ids)
def test_option_description_is_complete(option: Option):
    assert re.fullmatch(r'[a-z][a-z0-9_]*', option.name)
    assert option.help and option.help[0].isupper() and option.help.endswith('.'), option.help
    assert option.group in GROUPS
    assert option.env and re.fullmatch(r'GRANIAN_[A-Z0-9_]+', option.env)
    assert all(switch.startswith('--') for switch in option.switches)
    assert re.fullmatch(r'\d+\.\d+\.\d+', option.since)
    assert option.check(option.default) == option.default or option.default is None
    for text in valid_texts(option):
        option.parse(text)


def test_names_flags_and_variables_are_unique():
    for attribute in ('name', 'env'):
        values = [getattr(option, attribute) for option in OPTIONS]
        assert len(values) == len(set(values)), attribute
    switches = [switch for option in OPTIONS for switch in option.switches]
    assert len(switches) == len(set(switches))


def test_granian_signature_agrees_with_the_registry():
    parameters = list(inspect.signature(Granian.__init__).parameters.values())
    assert [p.name for p in parameters[:2]] == ['self', 'target']
    by_name = {p.name: p for p in parameters[2:]}
    expected = {option.name for option in TOP_LEVEL} | {section.kwarg for section in SECTIONS.values()}
    assert set(by_name) == expected
    for option in TOP_LEVEL:
        parameter = by_name[option.name]
        assert parameter.default == option.default, option.name
        assert parameter.annotation == option.annotation, option.name
    for section in SECTIONS.values():
        assert by_name[section.kwarg].default is None
        assert by_name[section.kwarg].annotation == f'{section.class_name} | None'


def test_generated_code_and_reference_are_current():
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'options.py'), '--check'],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_reference_documents_every_option():
    reference = (REPO_ROOT / 'docs' / 'options.md').read_text(encoding='utf-8')
    for option in OPTIONS:
        assert f'`{option.env}`' in reference
        for switch in option.switches:
            assert f'`{switch}`' in reference


def test_defaults_are_the_registry_defaults():
    settings = Granian('app:app').config.worker
    # Computed when unset (None): from other options, or the default access log format.
    derived = {'runtime_mode', 'backpressure', 'blocking_threads', 'log_access_format'}
    for option in OPTIONS:
        if option.name not in derived:
            assert getattr(settings, option.name) == option.default, option.name


@pytest.mark.parametrize('option', TOP_LEVEL, ids=_ids)
def test_api_refuses_invalid_values_with_one_line(option: Option):
    for value in invalid_values(option):
        with pytest.raises(ConfigurationError) as excinfo:
            Granian('app:app', **{option.name: value})
        message = str(excinfo.value)
        _one_line(message)
        assert excinfo.value.key == option.name
        if option.name != 'interface':
            assert option.flags[0] in message and option.env in message, message


@pytest.mark.parametrize('option', [o for o in OPTIONS if o.section], ids=_ids)
def test_settings_dataclasses_refuse_invalid_values_with_one_line(option: Option):
    settings_class = HTTP1Settings if option.section == 'http1' else HTTP2Settings
    for value in invalid_values(option):
        with pytest.raises(ConfigurationError) as excinfo:
            settings_class(**{option.field: value})
        _one_line(str(excinfo.value))
        assert excinfo.value.key == option.name


@pytest.mark.parametrize('option', OPTIONS, ids=_ids)
def test_text_and_python_values_are_checked_alike(option: Option):
    """A value read from text passes the Python check, and out-of-range text is refused."""
    for text in valid_texts(option):
        _assert_checks_alike(option, option.parse(text))
    for text in invalid_texts(option):
        with pytest.raises(OptionError) as excinfo:
            option.parse(text)
        _one_line(str(excinfo.value))


@pytest.mark.parametrize('option', OPTIONS, ids=_ids)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_any_text_is_parsed_or_refused_with_one_line(option: Option, text: str):
    try:
        value = option.parse(text)
    except OptionError as exc:
        _one_line(str(exc))
    else:
        _assert_checks_alike(option, value)


def _assert_checks_alike(option: Option, parsed: object) -> None:
    # Text gives one item of a list option (the command lines repeat the flag).
    value = [parsed] if option.multiple else parsed
    assert option.check(value) == value


@pytest.mark.parametrize('pattern', ['[[', '[a--b]', '(', '*'])
def test_reload_ignore_pattern_python_would_warn_about_or_refuse_gets_one_line(pattern: str):
    option = next(option for option in OPTIONS if option.name == 'reload_ignore_patterns')
    with pytest.raises(OptionError) as refused:
        option.parse(pattern)
    _one_line(str(refused.value))
    assert repr(pattern) in str(refused.value)


def test_settings_object_is_not_accepted_in_place_of_a_dataclass():
    with pytest.raises(ConfigurationError, match=r'http1_settings.*HTTP1Settings'):
        Granian('app:app', http1_settings={'keep_alive': False})


def test_values_are_normalised():
    settings = Granian(
        'app:app',
        interface='wsgi',
        log_level='DEBUG',
        url_path_prefix='/api/',
        http2_settings=HTTP2Settings(keep_alive_timeout=2.5),
        working_dir='.',
    ).config.worker
    assert settings.interface == 'wsgi' and type(settings.interface) is str
    assert settings.log_level == 'debug'
    assert settings.url_path_prefix == '/api'
    assert settings.http2_keep_alive_timeout == 2.5
    assert Path(settings.working_dir).is_absolute()


def test_derived_values():
    settings = Granian('app:app', backlog=2048, workers=4).config.worker
    assert (settings.backpressure, settings.blocking_threads, settings.runtime_mode) == (512, 1, 'st')
    settings = Granian('app:app', interface='wsgi', backpressure=10, runtime_threads=2).config.worker
    assert (settings.blocking_threads, settings.runtime_mode) == (5, 'mt')
    settings = Granian('app:app', interface='wsgi', backlog=2**31 - 1).config.worker
    assert settings.blocking_threads == OPTIONS_BY_NAME['blocking_threads'].kind.maximum


def test_blocking_threads_above_one_need_wsgi():
    with pytest.raises(ConfigurationError, match='wsgi') as excinfo:
        Granian('app:app', interface='rsgi', blocking_threads=2)
    assert excinfo.value.key == 'blocking_threads'
    assert Granian('app:app', interface='rsgi', blocking_threads=1).config.worker.blocking_threads == 1


def test_backlog_below_the_minimum_is_refused_not_raised():
    with pytest.raises(ConfigurationError, match=r'Invalid backlog: 100 is not an integer from 128'):
        Granian('app:app', backlog=100)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError):
        Granian('app:app', no_such_option=1)  # type: ignore[call-arg]


def test_check_kwargs_flattens_the_settings_dataclasses():
    values = check_kwargs({'http1_settings': HTTP1Settings(keep_alive=False)})
    assert values['http1_keep_alive'] is False
    assert values['http2_max_frame_size'] == 16384
    assert set(values) == set(OPTIONS_BY_NAME)


def test_worker_settings_are_read_only_and_picklable():
    settings = Granian('app:app', port=9000).config.worker
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert settings.port == 9000 and settings.target == 'app:app'
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.no_such_option  # noqa: B018
    assert settings.replace(port=1).port == 1 and settings.port == 9000
    assert isinstance(settings, WorkerSettings)


def test_somaxconn_notice():
    assert somaxconn_notice(1024, 4096) is None
    assert somaxconn_notice(1024, None) is None
    notice = somaxconn_notice(8192, 4096)
    assert notice is not None and '8192' in notice and '4096' in notice and 'somaxconn' in notice
