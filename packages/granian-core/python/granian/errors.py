"""Exceptions raised by granian when a server cannot start or keep running."""

from __future__ import annotations

__all__ = ['ConfigurationError', 'FatalError', 'PidFileError', 'TLSError']


class FatalError(Exception):
    """The server cannot start or continue; the command line maps it to exit code 1."""

    def __init__(self, message: str = '', *, logged: bool = False) -> None:
        super().__init__(message)
        #: True when the reason was already written to the granian log, so callers need not repeat it.
        self.logged = logged


class ConfigurationError(FatalError):
    """A setting has a value the server cannot use."""

    def __init__(self, message: str = '', *, key: str | None = None, logged: bool = False) -> None:
        super().__init__(message, logged=logged)
        #: Name of the offending setting, when known.
        self.key = key


class PidFileError(FatalError):
    """The pid file cannot be written, or another live server already owns it."""


class TLSError(FatalError):
    """A TLS file (certificate, key, CA, CRL) cannot be read or used; the message names the file.

    Not a ConfigurationError: the options are well formed, the files behind them are not, so the
    command lines exit with 1 (as for an app that cannot be imported), not with the usage code 2.
    """
