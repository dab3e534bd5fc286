"""Logging setup shared by the supervisor and the worker processes."""

from __future__ import annotations

import copy
import json
import logging
import logging.config
from typing import Any

from .constants import LogLevels
from .errors import ConfigurationError

__all__ = [
    'DEFAULT_ACCESSLOG_FMT',
    'LOGGING_CONFIG',
    'JsonLinesFormatter',
    'LogLevels',
    'access_logger',
    'configure_logging',
    'logger',
]

_LEVEL_NUMBERS = {
    LogLevels.critical: logging.CRITICAL,
    LogLevels.error: logging.ERROR,
    LogLevels.warning: logging.WARNING,
    LogLevels.warn: logging.WARNING,
    LogLevels.info: logging.INFO,
    LogLevels.debug: logging.DEBUG,
    LogLevels.notset: logging.NOTSET,
}

#: Runtime messages of the server (Rust records are bridged into children such as ``_granian.workers``).
logger = logging.getLogger('_granian')

#: The access log: one INFO record per request, its message the finished line (`--access-log`).
access_logger = logging.getLogger('granian.access')

#: Line format of the access log, using the atoms documented for ``--access-log-fmt``.
DEFAULT_ACCESSLOG_FMT = '[%(time)s] %(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f'

#: Base ``logging.config.dictConfig`` document; a user configuration replaces its top-level keys.
LOGGING_CONFIG: dict[str, Any] = {
    'version': 1,
    'disable_existing_loggers': False,
    'formatters': {
        'generic': {'format': '[%(levelname)s] %(message)s'},
        # Access lines are already formatted by the access log writer.
        'access': {'format': '%(message)s'},
    },
    'handlers': {
        'console': {'class': 'logging.StreamHandler', 'formatter': 'generic', 'stream': 'ext://sys.stdout'},
        'access': {'class': 'logging.StreamHandler', 'formatter': 'access', 'stream': 'ext://sys.stdout'},
    },
    'loggers': {
        '_granian': {'handlers': ['console'], 'level': 'INFO', 'propagate': False},
        'granian.access': {'handlers': ['access'], 'level': 'INFO', 'propagate': False},
    },
}


def level_number(level: str | int) -> int:
    """Return the ``logging`` level number for a granian level name (case-insensitive) or number."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    try:
        return _LEVEL_NUMBERS[LogLevels(str(level).lower())]
    except ValueError:
        choices = ', '.join(member.value for member in LogLevels)
        raise ConfigurationError(f'Unknown log level {level!r}; use one of: {choices}.', key='log_level') from None


def configure_logging(
    level: str | int = LogLevels.info, dictconfig: dict[str, Any] | None = None, enabled: bool = True
) -> None:
    """Apply granian's logging configuration, shallow-merging ``dictconfig`` over the defaults; safe to repeat."""
    level_no = level_number(level)
    config = copy.deepcopy(LOGGING_CONFIG)
    config['loggers']['_granian']['level'] = level_no
    if dictconfig is not None:
        if not isinstance(dictconfig, dict):
            raise ConfigurationError(
                f'The logging configuration must be a dictConfig mapping, got {type(dictconfig).__name__}.',
                key='log_dictconfig',
            )
        config.update(copy.deepcopy(dictconfig))
    try:
        logging.config.dictConfig(config)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        reason = str(exc).splitlines()[0].rstrip('.') if str(exc) else type(exc).__name__
        raise ConfigurationError(f'Invalid logging configuration: {reason}.', key='log_dictconfig') from exc
    if not enabled:
        logger.setLevel(logging.CRITICAL + 1)
    elif '_granian' not in config.get('loggers', {}):
        # A user configuration without a `_granian` entry must not leave a level from an earlier call behind.
        logger.setLevel(level_no)


def access_log_enabled() -> bool:
    """Whether the access logger would write INFO records (checked when a worker starts serving)."""
    return access_logger.isEnabledFor(logging.INFO)


def write_access_lines(lines: list[str]) -> None:
    """Log finished access lines, one record each; the core calls this with a batch of lines.

    Records are made directly (no caller lookup: the caller is the server, not a line of Python).
    When every handler would only write the message to a stream (the default configuration), the
    batch is written to each stream at once instead: the same output, one write per batch.
    """
    if not access_logger.isEnabledFor(logging.INFO):
        return
    streams = _message_only_streams(access_logger)
    if streams is not None:
        for handler in streams:
            _write_batch(handler, lines)
        return
    make, handle, name, info = access_logger.makeRecord, access_logger.handle, access_logger.name, logging.INFO
    for line in lines:
        handle(make(name, info, '', 0, line, (), None))


def _message_only_streams(target: logging.Logger) -> list[logging.StreamHandler] | None:
    """The handlers of `target` if each is a plain stream handler writing `%(message)s` with no
    filter, and nothing else would see a record (no logger filter, no propagation); else None."""
    if target.filters or target.propagate or not target.handlers:
        return None
    for handler in target.handlers:
        if type(handler) not in (logging.StreamHandler, logging.FileHandler) or handler.filters:
            return None
        if handler.level > logging.INFO or getattr(handler, 'stream', None) is None:
            return None
        formatter = handler.formatter
        if type(formatter) is not logging.Formatter or formatter._fmt != '%(message)s':
            return None
        if not isinstance(formatter._style, logging.PercentStyle):
            return None
    return target.handlers  # type: ignore[return-value]


def _write_batch(handler: logging.StreamHandler, lines: list[str]) -> None:
    terminator = handler.terminator
    text = terminator.join(lines) + terminator
    handler.acquire()
    try:
        handler.stream.write(text)
        handler.flush()
    except Exception:  # noqa: BLE001 - logging never raises into the server; it reports, as emit() does
        handler.handleError(logging.makeLogRecord({'msg': lines[0], 'name': access_logger.name}))
    finally:
        handler.release()


class JsonLinesFormatter(logging.Formatter):
    """Formats each record as one JSON object per line: time, level, logger and message (plus the
    traceback as `exc_info` when there is one). Use it in a `--log-config` file:
    `{"formatters": {"json": {"()": "granian.log.JsonLinesFormatter"}}, ...}`.
    """

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            'time': self.formatTime(record, self.datefmt),
            'level': record.levelname,
            'logger': record.name,
            'message': record.getMessage(),
        }
        if record.exc_info:
            document['exc_info'] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)
