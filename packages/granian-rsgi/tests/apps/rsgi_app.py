"""RSGI 1.6 test application: one route per protocol feature, so tests can observe it from outside.

Served with `--working-dir` pointing at this directory, as `rsgi_app:app` (a plain coroutine function)
or `rsgi_app:lifecycle_app` (an object with `__rsgi__`, `__rsgi_init__` and `__rsgi_del__`).
Routes take their parameters from the query string; file markers let tests see what happened inside.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import os
from pathlib import Path
from urllib.parse import parse_qs

from granian.rsgi import ProtocolError

JSON_HEADERS = [('content-type', 'application/json')]
TEXT_HEADERS = [('content-type', 'text/plain; charset=utf-8')]
BINARY_HEADERS = [('content-type', 'application/octet-stream')]
DISCONNECT_WAIT_LIMIT = 20.0


def query(scope) -> dict[str, str]:
    """Return the query string as a dict (last value wins)."""
    return {key: values[-1] for key, values in parse_qs(scope.query_string, keep_blank_values=True).items()}


def probe(fn):
    """Evaluate `fn()`; report an exception as a string so one broken attribute does not hide the others."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the test wants to see any failure by name
        return f'!{type(exc).__name__}: {exc}'


def getitem_missing(headers) -> str:
    """Report what `headers['x-missing']` raises."""
    try:
        headers['x-missing']
    except KeyError:
        return 'KeyError'
    except Exception as exc:  # noqa: BLE001
        return f'!{type(exc).__name__}: {exc}'
    return 'no error'


def describe_scope(scope) -> dict:
    """Return every scope attribute and the result of every headers-mapping operation."""
    headers = scope.headers
    return {
        'proto': probe(lambda: scope.proto),
        'rsgi_version': probe(lambda: scope.rsgi_version),
        'http_version': probe(lambda: scope.http_version),
        'server': probe(lambda: scope.server),
        'client': probe(lambda: scope.client),
        'scheme': probe(lambda: scope.scheme),
        'method': probe(lambda: scope.method),
        'path': probe(lambda: scope.path),
        'query_string': probe(lambda: scope.query_string),
        'authority': probe(lambda: scope.authority),
        'headers': {
            'keys': probe(lambda: list(headers.keys())),
            'values': probe(lambda: list(headers.values())),
            'items': probe(lambda: [list(item) for item in headers.items()]),
            'iter': probe(lambda: list(iter(headers))),
            'len': probe(lambda: len(headers)),
            'get_x_test': probe(lambda: headers.get('x-test')),
            'get_x_multi': probe(lambda: headers.get('x-multi')),
            'get_missing': probe(lambda: headers.get('x-missing')),
            'get_missing_default': probe(lambda: headers.get('x-missing', 'fallback')),
            'get_all_x_multi': probe(lambda: list(headers.get_all('x-multi'))),
            'get_all_missing': probe(lambda: list(headers.get_all('x-missing'))),
            'contains_x_test': probe(lambda: 'x-test' in headers),
            'contains_missing': probe(lambda: 'x-missing' in headers),
            'getitem_x_test': probe(lambda: headers['x-test']),
            'getitem_missing': getitem_missing(headers),
        },
    }


def respond_json(proto, data, status: int = 200) -> None:
    """Send `data` as a JSON response."""
    proto.response_str(status, JSON_HEADERS, json.dumps(data, default=repr))


async def route_scope(scope, proto):
    respond_json(proto, describe_scope(scope))


async def route_echo(scope, proto):
    body = await proto()
    proto.response_bytes(200, BINARY_HEADERS, body)


async def route_stream_echo(scope, proto):
    transport = proto.response_stream(200, BINARY_HEADERS)
    async for chunk in proto:
        await transport.send_bytes(chunk)


async def route_double_read(scope, proto):
    first = await proto()
    try:
        await proto()
    except ProtocolError:
        second = 'ProtocolError'
    except Exception as exc:  # noqa: BLE001
        second = f'!{type(exc).__name__}: {exc}'
    else:
        second = 'no error'
    respond_json(proto, {'first': first.decode('latin-1'), 'second': second})


async def route_response_empty(scope, proto):
    status = int(query(scope).get('status', '200'))
    proto.response_empty(status, [('x-kind', 'empty')])


async def route_response_str(scope, proto):
    status = int(query(scope).get('status', '200'))
    proto.response_str(status, [*TEXT_HEADERS, ('x-kind', 'str')], 'héllo wörld ✓')


async def route_response_bytes(scope, proto):
    """`?as=tuple|generator` passes the same headers as a tuple or a generator instead of a list."""
    params = query(scope)
    headers = [*BINARY_HEADERS, ('x-kind', 'bytes'), ('x-multi', '1'), ('x-multi', '2')]
    shape = params.get('as')
    headers = tuple(headers) if shape == 'tuple' else iter(headers) if shape == 'generator' else headers
    proto.response_bytes(int(params.get('status', '200')), headers, bytes(range(256)))


async def route_fresh_header(scope, proto):
    """`?v=VALUE`: VALUE in header `x-value`, a str made for this request alone (the name is a constant)."""
    value = query(scope)['v']
    proto.response_str(200, [('content-type', 'text/plain'), ('x-' + 'value', value)], value)


async def route_response_invalid_header(scope, proto):
    proto.response_str(200, [('bad header name', 'x'), ('x-bad-value', 'line\r\nbreak'), ('x-ok', 'yes')], 'ok')


async def route_double_response(scope, proto):
    proto.response_str(200, TEXT_HEADERS, 'first')
    try:
        proto.response_str(201, TEXT_HEADERS, 'second')
    except Exception:  # noqa: BLE001, S110 - whether the second call raises is not what is tested
        pass


async def route_file(scope, proto):
    proto.response_file(200, BINARY_HEADERS, query(scope)['path'])


async def route_file_range(scope, proto):
    params = query(scope)
    try:
        proto.response_file_range(206, BINARY_HEADERS, params['path'], int(params['start']), int(params['end']))
    except ValueError as exc:
        proto.response_str(416, TEXT_HEADERS, f'ValueError: {exc}')


async def route_stream_str(scope, proto):
    transport = proto.response_stream(200, TEXT_HEADERS)
    for piece in ('alpha', 'βeta', 'gamma ✓'):
        await transport.send_str(piece)


async def route_raise(scope, proto):
    raise RuntimeError('this route always fails')


async def route_no_response(scope, proto):
    return None


async def route_sleep(scope, proto):
    params = query(scope)
    if 'marker' in params:
        Path(params['marker']).write_text('started')
    await asyncio.sleep(float(params.get('seconds', '2')))
    proto.response_str(200, TEXT_HEADERS, 'slept')


async def route_disconnect(scope, proto):
    marker = Path(query(scope)['marker'])
    marker.with_name(marker.name + '.started').write_text('started')
    try:
        await asyncio.wait_for(proto.client_disconnect(), DISCONNECT_WAIT_LIMIT)
    except TimeoutError:
        marker.write_text('timeout')
        return
    marker.write_text('disconnected')
    # The client is gone; a server must ignore (not crash on) a response nobody will read.
    proto.response_empty(200, [])


async def route_pid(scope, proto):
    proto.response_str(200, TEXT_HEADERS, str(os.getpid()))


_in_app = {'now': 0, 'peak': 0}


async def route_concurrency(scope, proto):
    """Stay in the app for a while and record how many requests were inside at once."""
    _in_app['now'] += 1
    _in_app['peak'] = max(_in_app['peak'], _in_app['now'])
    try:
        await asyncio.sleep(float(query(scope).get('seconds', '0.3')))
    finally:
        _in_app['now'] -= 1
    proto.response_str(200, TEXT_HEADERS, 'ok')


async def route_concurrency_peak(scope, proto):
    """Report (and reset) the most requests seen inside the app at once."""
    peak, _in_app['peak'] = _in_app['peak'], 0
    proto.response_str(200, TEXT_HEADERS, str(peak))


# Set by every /task request: a request must never see the value an earlier one set.
_request_mark: contextvars.ContextVar[str | None] = contextvars.ContextVar('request_mark', default=None)
_factory_calls = {'count': 0}


async def route_task(scope, proto):
    """Report the task the app runs in: at once, or after one suspension with `?wait=1`."""
    params = query(scope)
    first = asyncio.current_task()
    if params.get('wait'):
        await asyncio.sleep(float(params['wait']))
    task = asyncio.current_task()
    leaked = _request_mark.get()
    _request_mark.set(params.get('mark', 'set'))
    respond_json(
        proto,
        {
            'task': task is not None,
            'name': task.get_name() if task else None,
            'leaked': leaked,
            'same_task': task is first,
            'task_id': id(task),
            # What anyio asks of a task's coroutine to tell whether it started.
            'coroutine': inspect.getcoroutinestate(task.get_coro()) if task else None,
        },
    )


def _counting_factory(loop, coro, **options):
    _factory_calls['count'] += 1
    return asyncio.Task(coro, loop=loop, **options)


async def route_task_factory(scope, proto):
    """`?install=1` installs a counting task factory on the loop; otherwise removes it. Reports the count."""
    loop = asyncio.get_running_loop()
    if query(scope).get('install') == '1':
        _factory_calls['count'] = 0
        loop.set_task_factory(_counting_factory)
    else:
        loop.set_task_factory(None)
    respond_json(proto, {'factory_calls': _factory_calls['count']})


ROUTES = {
    '/task': route_task,
    '/task-factory': route_task_factory,
    '/concurrency': route_concurrency,
    '/concurrency/peak': route_concurrency_peak,
    '/echo': route_echo,
    '/stream-echo': route_stream_echo,
    '/double-read': route_double_read,
    '/response/empty': route_response_empty,
    '/response/str': route_response_str,
    '/response/bytes': route_response_bytes,
    '/response/invalid-header': route_response_invalid_header,
    '/response/fresh-header': route_fresh_header,
    '/response/double': route_double_response,
    '/file': route_file,
    '/file-range': route_file_range,
    '/stream-str': route_stream_str,
    '/raise': route_raise,
    '/no-response': route_no_response,
    '/sleep': route_sleep,
    '/disconnect': route_disconnect,
    '/pid': route_pid,
}


async def app(scope, proto):
    """Dispatch by path; every path under /scope echoes the scope as JSON."""
    if scope.proto != 'http':
        proto.close(404)
        return
    if scope.path.startswith('/scope'):
        await route_scope(scope, proto)
        return
    route = ROUTES.get(scope.path)
    if route is None:
        proto.response_str(404, TEXT_HEADERS, f'no route {scope.path}')
        return
    await route(scope, proto)


class LifecycleApp:
    """An RSGI app object: the server must call `__rsgi__` (it is not callable) and the init/del hooks.

    `__rsgi_del__` appends one JSON line per worker to the file named by $RSGI_DEL_MARKER.
    """

    def __init__(self) -> None:
        self.init_calls = 0
        self.init_loop = None
        self.init_loop_was_running = None

    def __rsgi_init__(self, loop) -> None:
        self.init_calls += 1
        self.init_loop = loop
        self.init_loop_was_running = loop.is_running()

    def __rsgi_del__(self, loop) -> None:
        marker = os.environ.get('RSGI_DEL_MARKER')
        if marker:
            running = loop.is_running()
            if not running:
                # The loop has stopped serving: an app may finish async clean-up on it.
                loop.run_until_complete(asyncio.sleep(0))
            record = {
                'pid': os.getpid(),
                'init_calls': self.init_calls,
                'same_loop_as_init': loop is self.init_loop,
                'loop_running': running,
            }
            with open(marker, 'a', encoding='utf-8') as file:
                file.write(json.dumps(record) + '\n')

    async def __rsgi__(self, scope, proto):
        if scope.proto == 'http' and scope.path == '/lifecycle':
            respond_json(
                proto,
                {
                    'init_calls': self.init_calls,
                    'init_loop_is_running_loop': asyncio.get_running_loop() is self.init_loop,
                    'init_loop_was_running': self.init_loop_was_running,
                },
            )
            return
        await app(scope, proto)


lifecycle_app = LifecycleApp()
