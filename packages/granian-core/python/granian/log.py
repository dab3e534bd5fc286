"""Logging setup shared by the supervisor and the worker processes."""

from __future__ import annotations

import copy
import logging
import logging.config
from typing import Any

from .constants import LogLevels
from .errors import ConfigurationError

__all__ = ['DEFAULT_ACCESSLOG_FMT', 'LOGGING_CONFIG', 'LogLevels', 'configure_logging', 'logger']

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
