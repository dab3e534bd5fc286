"""What the server does to its own processes: the pid file, environment files and process titles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, FatalError, PidFileError
from .listen import socket_address

if TYPE_CHECKING:
    import socket


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PidFile:
    """The `pid_file` option: written when the server starts, removed when it stops."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def claim(self) -> None:
        """Write our pid; a file naming another running process is refused, a stale one replaced."""
        try:
            recorded = int(self.path.read_text(encoding='ascii').strip() or 0)
        except FileNotFoundError:
            recorded = 0
        except (OSError, ValueError, UnicodeDecodeError):
            recorded = 0  # not a pid file we can read: replaced below, or writing it fails
        if recorded and recorded != os.getpid() and process_alive(recorded):
            raise PidFileError(
                f'pid file {self.path} names process {recorded}, which is running: is another server using it?'
            )
        temporary = self.path.with_name(f'.{self.path.name}.{os.getpid()}')
        try:
            temporary.write_text(f'{os.getpid()}\n', encoding='ascii')
            os.replace(temporary, self.path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise PidFileError(f'cannot write pid file {self.path}: {exc.strerror or exc}') from None

    def release(self) -> None:
        """Remove the file if it still holds our pid."""
        try:
            if self.path.read_text(encoding='ascii').strip() == str(os.getpid()):
                self.path.unlink()
        except (OSError, UnicodeDecodeError):
            pass


class EnvFiles:
    """The `env_files` option: dotenv files loaded into the supervisor's environment, which spawned
    workers inherit. Variables the environment already had win; values from the files are refreshed
    when `load()` runs again (on reload)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        #: Variables set from the files, with the value set.
        self.loaded: dict[str, str] = {}

    def load(self) -> None:
        """Read every file and set its variables. Raises ConfigurationError without python-dotenv, and
        FatalError (one line naming the file) for a file that cannot be read."""
        try:
            from dotenv import dotenv_values
        except ImportError:
            raise ConfigurationError(
                '--env-files needs python-dotenv: pip install granian-core[dotenv]', key='env_files'
            ) from None
        values: dict[str, str] = {}
        for path in self.paths:
            try:
                with open(path, encoding='utf-8') as stream:
                    found = dotenv_values(stream=stream)
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise FatalError(f'cannot read env file {path}: {reason}') from None
            values.update({key: value for key, value in found.items() if value is not None})
        for key, value in values.items():
            if key in os.environ and self.loaded.get(key) != os.environ[key]:
                continue  # set by the environment, not by us
            os.environ[key] = value
            self.loaded[key] = value


def process_title(settings: Any, listener: socket.socket) -> str:
    """The supervisor's title: `process_name`, or `granian INTERFACE ADDRESS TARGET`, where ADDRESS is
    where `listener` listens (`HOST:PORT`, `unix:PATH`): the port actually bound, also for port 0, an
    inherited socket or socket activation."""
    if settings.process_name:
        return settings.process_name
    return f'granian {settings.interface} {socket_address(listener)} {settings.target}'


def require_process_titles(settings: Any) -> None:
    """`process_name` needs setproctitle; say which package to install."""
    if not settings.process_name:
        return
    try:
        import setproctitle  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            '--process-name needs setproctitle: pip install granian-core[pname]', key='process_name'
        ) from None


def set_process_title(title: str) -> None:
    """Set the process title when setproctitle is installed (without it, titles stay as they are)."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(title)
