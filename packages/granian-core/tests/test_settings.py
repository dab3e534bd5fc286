"""HTTP settings validation, the event loop registry, logging setup, errors and constants."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import logging

import pytest

from granian._loops import BuilderRegistry, loops
from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes, TaskImpl
from granian.errors import ConfigurationError, FatalError, PidFileError
from granian.http import HTTP1Settings, HTTP2Settings
from granian.log import LogLevels, configure_logging, logger
from granian.options import section_options

MISSING_PACKAGE = 'granian_test_package_that_does_not_exist'


def test_http1_defaults():
    assert HTTP1Settings() == HTTP1Settings(
        header_read_timeout=30000, keep_alive=True, max_buffer_size=417792, pipeline_flush=False
    )


def test_http2_defaults():
    assert HTTP2Settings() == HTTP2Settings(
        adaptive_window=False,
        initial_connection_window_size=1048576,
        initial_stream_window_size=1048576,
        keep_alive_interval=None,
        keep_alive_timeout=20,
        max_concurrent_streams=200,
        max_frame_size=16384,
        max_headers_size=16777216,
        max_send_buffer_size=409600,
    )


def test_settings_are_frozen():
    settings = HTTP1Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.keep_alive = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ('settings', 'field', 'value'),
    [
        (HTTP1Settings, 'max_buffer_size', 8191),
        (HTTP1Settings, 'header_read_timeout', 0),
        (HTTP1Settings, 'header_read_timeout', 60001),
        (HTTP1Settings, 'header_read_timeout', '30000'),
        (HTTP1Settings, 'header_read_timeout', 1.5),
        (HTTP1Settings, 'header_read_timeout', None),
        (HTTP1Settings, 'keep_alive', 'yes'),
        (HTTP1Settings, 'pipeline_flush', 1),
        (HTTP2Settings, 'adaptive_window', None),
        (HTTP2Settings, 'initial_connection_window_size', 1023),
        (HTTP2Settings, 'initial_connection_window_size', 2**31),
        (HTTP2Settings, 'initial_stream_window_size', 1023),
        (HTTP2Settings, 'keep_alive_interval', 0),
        (HTTP2Settings, 'keep_alive_interval', 60001),
        (HTTP2Settings, 'keep_alive_timeout', 0),
        (HTTP2Settings, 'max_concurrent_streams', 9),
        (HTTP2Settings, 'max_frame_size', 1023),
        # HTTP/2 frames are 16 KiB to 16 MiB (RFC 9113); smaller values are refused, not raised silently.
        (HTTP2Settings, 'max_frame_size', 16383),
        (HTTP2Settings, 'max_frame_size', 2**24),
        (HTTP2Settings, 'max_send_buffer_size', 2**32),
        (HTTP2Settings, 'max_headers_size', 2**32),
        (HTTP2Settings, 'keep_alive_timeout', float('nan')),
        (HTTP2Settings, 'keep_alive_timeout', float('inf')),
        (HTTP2Settings, 'keep_alive_timeout', -1),
        (HTTP2Settings, 'max_headers_size', 0),
        (HTTP2Settings, 'max_send_buffer_size', 1023),
        (HTTP2Settings, 'max_send_buffer_size', True),
    ],
)
def test_out_of_range_setting_raises(settings, field, value):
    with pytest.raises(ConfigurationError) as excinfo:
        settings(**{field: value})
    message = str(excinfo.value)
    assert f'{settings.__name__}({field}=...)' in message
    assert repr(value) in message
    assert '\n' not in message and message.endswith('.')
    section = 'http1' if settings is HTTP1Settings else 'http2'
    (option,) = (option for option in section_options(section) if option.field == field)
    assert excinfo.value.key == option.name
    assert option.flags[0].split('/')[0] in message and option.env in message


@pytest.mark.parametrize(
    ('settings', 'field', 'value'),
    [
        (HTTP1Settings, 'max_buffer_size', 8192),
        (HTTP1Settings, 'header_read_timeout', 1),
        (HTTP1Settings, 'header_read_timeout', 60000),
        (HTTP2Settings, 'initial_connection_window_size', 1024),
        (HTTP2Settings, 'initial_stream_window_size', 2**31 - 1),
        (HTTP2Settings, 'keep_alive_interval', 1),
        (HTTP2Settings, 'keep_alive_interval', 60000),
        (HTTP2Settings, 'keep_alive_interval', None),
        (HTTP2Settings, 'keep_alive_timeout', 1),
        (HTTP2Settings, 'max_concurrent_streams', 10),
        (HTTP2Settings, 'max_frame_size', 16384),
        (HTTP2Settings, 'max_frame_size', 2**24 - 1),
        (HTTP2Settings, 'keep_alive_timeout', 2.5),
        (HTTP2Settings, 'max_headers_size', 1),
        (HTTP2Settings, 'max_send_buffer_size', 2**32 - 1),
        (HTTP2Settings, 'max_send_buffer_size', 1024),
    ],
)
def test_boundary_setting_accepted(settings, field, value):
    assert getattr(settings(**{field: value}), field) == value


def test_settings_fields_are_the_registry_options():
    for settings, section in ((HTTP1Settings, 'http1'), (HTTP2Settings, 'http2')):
        fields = {field.name: field.default for field in dataclasses.fields(settings)}
        assert fields == {option.field: option.default for option in section_options(section)}


def test_error_hierarchy():
    assert issubclass(ConfigurationError, FatalError)
    assert issubclass(PidFileError, FatalError)
    assert issubclass(FatalError, Exception)
    error = FatalError('boom')
    assert str(error) == 'boom' and error.logged is False
    assert FatalError('boom', logged=True).logged is True


def test_constants_are_plain_strings():
    assert Interfaces('asginl') is Interfaces.ASGINL
    assert Interfaces.RSGI == 'rsgi' and str(Interfaces.RSGI) == 'rsgi' and f'{Interfaces.WSGI}' == 'wsgi'
    assert [mode.value for mode in HTTPModes] == ['auto', '1', '2']
    assert {loop.value for loop in Loops} == {'auto', 'asyncio', 'rloop', 'uvloop', 'winloop'}
    assert {mode.value for mode in RuntimeModes} == {'auto', 'mt', 'st'}
    assert {impl.value for impl in TaskImpl} == {'asyncio', 'rust'}
    assert [level.value for level in LogLevels] == ['critical', 'error', 'warning', 'warn', 'info', 'debug', 'notset']


# Event loop registry


def _close(loop: asyncio.AbstractEventLoop) -> type:
    loop.close()
    return type(loop)


def test_registry_registers_builder_without_packages():
    registry = BuilderRegistry()

    @registry.register('plain')
    def build():
        return asyncio.new_event_loop()

    assert registry.keys() == ['plain']
    assert list(registry) == ['plain']
    assert 'plain' in registry
    assert registry.get('plain') is build
    assert issubclass(_close(registry.get('plain')()), asyncio.AbstractEventLoop)


def test_registry_skips_builder_with_missing_package():
    registry = BuilderRegistry()

    @registry.register('ghost', packages=[MISSING_PACKAGE])
    def build(**_modules):
        raise AssertionError('never called')

    assert 'ghost' not in registry
    assert registry.keys() == []
    assert callable(build)  # the decorator still returns the function


def test_registry_passes_imported_packages_to_builder():
    registry = BuilderRegistry()
    received = {}

    @registry.register('with-deps', packages=['json', 'logging.handlers'])
    def build(json, handlers):
        received.update(json=json, handlers=handlers)
        return asyncio.new_event_loop()

    _close(registry.get('with-deps')())
    assert received['json'].__name__ == 'json'
    assert received['handlers'].__name__ == 'logging.handlers'


def test_registry_unknown_key_message():
    with pytest.raises(RuntimeError, match=r"^'nope' implementation not available\.$"):
        BuilderRegistry().get('nope')


def test_registry_later_registration_replaces_earlier():
    registry = BuilderRegistry()
    registry.register('auto')(lambda: 'first')
    registry.register('auto')(lambda: 'second')
    assert registry.keys() == ['auto']
    assert registry.get('auto')() == 'second'


def test_builtin_loops():
    assert 'asyncio' in loops
    assert 'auto' in loops
    assert issubclass(_close(loops.get('asyncio')()), asyncio.AbstractEventLoop)
    assert issubclass(_close(loops.get('auto')()), asyncio.AbstractEventLoop)
    assert ('uvloop' in loops) == (importlib.util.find_spec('uvloop') is not None)
    assert ('rloop' in loops) == (importlib.util.find_spec('rloop') is not None)


def test_asyncio_builder_ignores_installed_policy_loop():
    loop = loops.get('asyncio')()
    try:
        assert type(loop).__module__.startswith('asyncio')
    finally:
        loop.close()


def test_auto_prefers_uvloop_over_asyncio():
    uvloop = pytest.importorskip('uvloop')
    if 'rloop' in loops:
        pytest.skip('rloop is installed and takes precedence')
    assert _close(loops.get('auto')()) is uvloop.Loop


def test_auto_can_be_overridden_by_users(monkeypatch):
    monkeypatch.setattr(loops, '_builders', dict(loops._builders))
    marker = asyncio.new_event_loop()

    @loops.register('auto')
    def build_custom():
        return marker

    try:
        assert loops.get('auto')() is marker
    finally:
        marker.close()


# Logging


@pytest.fixture
def granian_loggers():
    """Restore the granian loggers after a test reconfigured them."""
    names = ('_granian', 'granian.access')
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in names}
    yield [logging.getLogger(name) for name in names]
    for name, (level, handlers) in saved.items():
        log = logging.getLogger(name)
        log.setLevel(level)
        log.handlers[:] = handlers


def test_configure_logging_defaults(granian_loggers, capsys):
    configure_logging()
    assert logger.name == '_granian'
    assert logger.level == logging.INFO
    assert logger.propagate is False
    logger.info('hello')
    logger.debug('hidden')
    logging.getLogger('granian.access').info('GET / 200')
    assert capsys.readouterr().out == '[INFO] hello\nGET / 200\n'


@pytest.mark.parametrize(
    ('level', 'expected'),
    [('debug', logging.DEBUG), ('WARN', logging.WARNING), (LogLevels.error, logging.ERROR), ('notset', 0)],
)
def test_configure_logging_level(granian_loggers, level, expected):
    configure_logging(level)
    assert logger.level == expected


def test_configure_logging_unknown_level(granian_loggers):
    with pytest.raises(ConfigurationError, match='loud'):
        configure_logging('loud')


def test_configure_logging_disabled_and_repeatable(granian_loggers, capsys):
    configure_logging('debug', enabled=False)
    assert logger.level > logging.CRITICAL
    logger.critical('silenced')
    configure_logging('info', enabled=True)
    assert logger.level == logging.INFO
    logger.info('back')
    assert capsys.readouterr().out == '[INFO] back\n'
    assert len(logger.handlers) == 1


def test_configure_logging_merges_user_config_shallowly(granian_loggers, capsys):
    user = {
        'formatters': {'plain': {'format': 'granian: %(message)s'}},
        'handlers': {'out': {'class': 'logging.StreamHandler', 'formatter': 'plain', 'stream': 'ext://sys.stdout'}},
        'loggers': {'_granian': {'handlers': ['out'], 'level': 'WARNING', 'propagate': False}},
    }
    configure_logging('debug', dictconfig=user)
    assert logger.level == logging.WARNING
    logger.info('hidden')
    logger.warning('shown')
    assert capsys.readouterr().out == 'granian: shown\n'
    assert user['loggers']['_granian']['level'] == 'WARNING'  # the caller's dict is left untouched


def test_configure_logging_user_config_without_granian_logger_keeps_level(granian_loggers):
    configure_logging('debug', enabled=False)
    configure_logging('error', dictconfig={'loggers': {}})
    assert logger.level == logging.ERROR


def test_configure_logging_invalid_config(granian_loggers):
    with pytest.raises(ConfigurationError, match='Invalid logging configuration'):
        configure_logging(dictconfig={'handlers': {'bad': {'class': 'no.such.Handler'}}})
    with pytest.raises(ConfigurationError, match='dictConfig'):
        configure_logging(dictconfig=['not', 'a', 'dict'])  # type: ignore[arg-type]
