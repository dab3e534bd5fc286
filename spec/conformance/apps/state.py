"""Where the reference apps record what happened inside the server, for the tests to read.

The suite sets RSGI_CONFORMANCE_STATE to a fresh directory per server; `record(name, value)` writes
`<dir>/<name>.json` atomically and the tests wait for it (ServerUnderTest.state). Files rather than
memory, so the records survive the worker and work with any number of worker processes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

STATE_DIR = Path(os.environ.get('RSGI_CONFORMANCE_STATE', '.'))


def record(name: str, value: object) -> None:
    """Store `value` (JSON-serialisable) under `name`."""
    target = STATE_DIR / f'{name}.json'
    partial = target.with_suffix(f'.{os.getpid()}.partial')
    partial.write_text(json.dumps(value))
    partial.replace(target)


def describe_exception(exc: BaseException) -> dict:
    """What a test needs to know about an exception the app caught: its name and base classes."""
    return {
        'type': type(exc).__name__,
        'runtime_error': isinstance(exc, RuntimeError),
        'message': str(exc)[:200],
    }
