"""Reload for development: watch the source files and replace the workers when one changes.

watchfiles (the `reload` extra) watches `reload_paths` in a thread of the supervisor, with its
default filter (version-control, cache and editor files ignored) extended by the `reload_ignore_*`
options; each batch of changes calls `on_change` with the paths, and the supervisor replaces its
workers one at a time, so the server keeps answering during a reload.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from ..log import logger


def require_watchfiles() -> Any:
    """The watchfiles module; one line naming the extra when it is missing."""
    try:
        import watchfiles
    except ImportError:
        raise ConfigurationError('--reload needs watchfiles: pip install granian-core[reload]', key='reload') from None
    return watchfiles


def check_pattern(value: str) -> str:
    """A `reload_ignore_patterns` entry must be a regular expression whose meaning Python does not
    warn may change (`[[`, for one, is a "possible nested set")."""
    with warnings.catch_warnings():
        warnings.simplefilter('error', FutureWarning)
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f'{value!r} is not a regular expression ({exc})') from None
        except FutureWarning as warning:
            raise ValueError(f'{value!r} may change meaning in a future Python ({warning}); escape it') from None
    return value


#: How long watchfiles waits for a change before returning empty-handed; the first such return
#: shows that the watch is in place.
READY_PROBE_MS = 200


class Reloader:
    """Watches the files of `settings` and calls `on_change(paths)` for each batch of changes."""

    def __init__(self, settings: Any, on_change: Callable[[list[str]], None]) -> None:
        self.watchfiles = require_watchfiles()
        self.paths = list(settings.reload_paths or [settings.working_dir or os.getcwd()])
        default = self.watchfiles.DefaultFilter
        self.filter = default(
            ignore_dirs=(*default.ignore_dirs, *(settings.reload_ignore_dirs or ())),
            ignore_entity_patterns=(*default.ignore_entity_patterns, *(settings.reload_ignore_patterns or ())),
            ignore_paths=tuple(settings.reload_ignore_paths or ()),
        )
        self.tick_ms = settings.reload_tick
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name='granian-reload', daemon=True)

    def start(self) -> None:
        """Start watching; 'Watching ...' is logged once the watch is in place."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (at the next tick)."""
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        changes = self.watchfiles.watch(
            *self.paths,
            watch_filter=self.filter,
            step=self.tick_ms,
            stop_event=self._stop,
            raise_interrupt=False,
            rust_timeout=READY_PROBE_MS,
            yield_on_timeout=True,
        )
        announced = False
        for batch in changes:
            # The first empty batch (a timeout) tells that the watch is set up: a change made after
            # the 'Watching' line is seen, one made before it may not be.
            if not announced:
                announced = True
                logger.info('Watching %s for changes', ', '.join(self.paths))
            if batch:
                self.on_change(sorted({path for _, path in batch}))
