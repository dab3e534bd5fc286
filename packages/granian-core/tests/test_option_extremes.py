"""The smallest and largest value of every numeric option that reaches the Rust engine start a server that serves.

A value the registry accepts must never panic inside a worker (hyper and h2 assert on some settings) or hang it:
each bound is given on the command line, and the server must answer over HTTP/1.1 or h2c and log no panic.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from granian.options import OPTIONS, Duration, Integer, Option
from tests_support.server import RunningServer

WSGI_APPS_DIR = Path(__file__).resolve().parents[2] / 'granian-wsgi' / 'tests' / 'apps'
# Options a worker hands to Rust (engine, HTTP/1, HTTP/2, blocking pool); `workers` only multiplies processes.
ENGINE_OPTIONS = [
    option
    for option in OPTIONS
    if isinstance(option.kind, (Integer, Duration))
    and (option.group in {'http1', 'http2'} or option.name in {'backlog', 'backpressure', 'runtime_threads'})
]
WSGI_OPTIONS = [option for option in OPTIONS if option.name in {'blocking_threads', 'blocking_threads_idle_timeout'}]
CASES = [
    pytest.param(option, bound, interface, id=f'{option.name}-{bound}')
    for options, interface in ((ENGINE_OPTIONS, 'rsgi'), (WSGI_OPTIONS, 'wsgi'))
    for option in options
    for bound in ('min', 'max')
]


def _bound_text(option: Option, bound: str) -> str:
    value = option.kind.minimum if bound == 'min' else option.kind.maximum  # type: ignore[attr-defined]
    return str(int(value)) if float(value).is_integer() else str(value)


def _get(url: str, http2: bool) -> int | None:
    try:
        with httpx.Client(http1=not http2, http2=http2, timeout=10) as client:
            return client.get(url).status_code
    except httpx.TransportError:
        return None


@pytest.mark.parametrize(('option', 'bound', 'interface'), CASES)
def test_bound_values_serve(option: Option, bound: str, interface: str, rsgi_apps_dir: Path):
    if interface == 'rsgi':
        target, apps_dir, path = 'rsgi_app:app', rsgi_apps_dir, '/response/str'
    else:
        target, apps_dir, path = 'wsgi_app:app', WSGI_APPS_DIR, '/hello'
    args = [option.flags[0], _bound_text(option, bound)]
    with RunningServer(target, working_dir=apps_dir, interface=interface, extra_args=args) as server:
        statuses = [_get(server.url(path), http2) for http2 in (False, True)]
        assert server.proc is not None and server.proc.poll() is None, server.output
        output = server.output
    assert 200 in statuses, (statuses, output)
    assert 'panic' not in output.lower() and 'Traceback' not in output, output
