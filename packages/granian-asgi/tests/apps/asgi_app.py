"""ASGI 3 (spec 2.4) test application: one route per protocol feature, so tests can observe it from outside.

Served with `--working-dir` pointing at this directory:

- `asgi_app:app` handles lifespan (state `x`, optional startup delay, shutdown marker) and every route below;
- `asgi_app:startup_failed_app` answers `lifespan.startup.failed` with the message 'database down';
- `asgi_app:lifespan_unsupported_app` raises on any scope that is not 'http', like apps without lifespan support;
- `asgi_app:lifespan_marker_app` writes $ASGI_LIFESPAN_MARKER if it is ever called with a lifespan scope.

Routes take their parameters from the query string. Whatever happens where a response cannot carry it (after a
disconnect, after a failed `send`) is written as JSON to a marker file named in the query string.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import os
from pathlib import Path
from urllib.parse import parse_qs

JSON_HEADERS = [(b'content-type', b'application/json')]
TEXT_HEADERS = [(b'content-type', b'text/plain; charset=utf-8')]
BINARY_HEADERS = [(b'content-type', b'application/octet-stream')]
WAIT_LIMIT = 20.0
SEND_WAIT_LIMIT = 10.0

# What the lifespan and the requests did in this worker, for the shutdown marker and /scope.
counters = {'startup_complete': False, 'in_flight': 0, 'completed': 0}


class ClientGone(Exception):
    """receive() said http.disconnect while the app was reading the request body."""


def query(scope) -> dict[str, str]:
    """Return the query string as a dict (last value wins)."""
    pairs = parse_qs(scope['query_string'].decode('latin-1'), keep_blank_values=True)
    return {key: values[-1] for key, values in pairs.items()}


def write_marker(path: str | Path, data: object) -> None:
    """Write `data` as JSON to `path` atomically, so a test polling for the file never reads half of it."""
    path = Path(path)
    partial = path.with_name(path.name + '.partial')
    partial.write_text(json.dumps(data), encoding='utf-8')
    os.replace(partial, path)


def jsonable(value):
    """Convert a scope or message to JSON-compatible data: bytes as latin-1 text, tuples as lists."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode('latin-1')
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def type_name(fn) -> str:
    """Name the type of `fn()`; report an exception as a string so one missing key does not hide the others."""
    try:
        return type(fn()).__name__
    except Exception as exc:  # noqa: BLE001 - the test wants to see any failure by name
        return f'!{type(exc).__name__}: {exc}'


def describe_exception(exc: BaseException) -> dict:
    """What a test needs to know about an exception raised by send() or receive()."""
    return {
        'class': type(exc).__name__,
        'message': str(exc),
        'is_oserror': isinstance(exc, OSError),
        'is_runtime_error': isinstance(exc, RuntimeError),
    }


def describe_scope(scope) -> dict:
    """The scope as JSON-compatible data, plus the Python type of every value whose type matters."""
    return {
        'scope': jsonable(scope),
        'keys': sorted(scope),
        'startup_complete': counters['startup_complete'],
        'types': {
            'asgi': type_name(lambda: scope['asgi']),
            'http_version': type_name(lambda: scope['http_version']),
            'method': type_name(lambda: scope['method']),
            'scheme': type_name(lambda: scope['scheme']),
            'path': type_name(lambda: scope['path']),
            'raw_path': type_name(lambda: scope['raw_path']),
            'query_string': type_name(lambda: scope['query_string']),
            'root_path': type_name(lambda: scope['root_path']),
            'headers': type_name(lambda: scope['headers']),
            'header_name': type_name(lambda: scope['headers'][0][0]),
            'header_value': type_name(lambda: scope['headers'][0][1]),
            'client_host': type_name(lambda: scope['client'][0]),
            'client_port': type_name(lambda: scope['client'][1]),
            'server_host': type_name(lambda: scope['server'][0]),
            'server_port': type_name(lambda: scope['server'][1]),
            'state': type_name(lambda: scope['state']),
            'extensions': type_name(lambda: scope['extensions']),
        },
    }


async def read_body(receive) -> bytes:
    """Receive `http.request` messages until `more_body` is false; return the whole body."""
    chunks = []
    while True:
        message = await receive()
        if message['type'] == 'http.disconnect':
            raise ClientGone
        chunks.append(message.get('body', b''))
        if not message.get('more_body', False):
            return b''.join(chunks)


async def respond(send, status: int, headers, body: bytes) -> None:
    """Send a complete response in two messages."""
    await send({'type': 'http.response.start', 'status': status, 'headers': headers})
    await send({'type': 'http.response.body', 'body': body})


async def respond_json(send, data, status: int = 200) -> None:
    await respond(send, status, JSON_HEADERS, json.dumps(data).encode())


async def route_scope(scope, receive, send):
    await read_body(receive)
    await respond_json(send, describe_scope(scope))
    # The request's state is a copy of the lifespan state: this must not show up in the next request's scope.
    state = scope.get('state')
    if isinstance(state, dict):
        state['leaked_from_request'] = scope['path']
    # Nor may any other change to the scope or to the values in it.
    scope['leaked_from_request'] = scope['path']
    scope['server'] = ('leaked', 1)
    del scope['client']
    scope['asgi']['leaked'] = True
    scope['extensions']['leaked'] = {}
    scope['headers'].append((b'x-leaked', b'1'))


async def route_echo(scope, receive, send):
    body = await read_body(receive)
    await respond(send, 200, BINARY_HEADERS, body)


async def route_stream_echo(scope, receive, send):
    await send({'type': 'http.response.start', 'status': 200, 'headers': BINARY_HEADERS})
    while True:
        message = await receive()
        if message['type'] != 'http.request':
            return
        body = message.get('body', b'')
        more_body = message.get('more_body', False)
        if body:
            await send({'type': 'http.response.body', 'body': body, 'more_body': True})
        if not more_body:
            break
    await send({'type': 'http.response.body', 'body': b'', 'more_body': False})


async def route_receive_log(scope, receive, send):
    """Report every message receive() returned until the body ended."""
    log = []
    while True:
        message = await receive()
        body = message.get('body', b'')
        log.append(
            {
                'type': message['type'],
                'body_type': type(body).__name__,
                'body_length': len(body),
                'more_body': message.get('more_body', False),
            }
        )
        if message['type'] != 'http.request' or not message.get('more_body', False):
            break
    await respond_json(send, log)


async def route_receive_after_response(scope, receive, send):
    """Complete the response, then record what one more receive() returns."""
    marker = query(scope)['marker']
    await read_body(receive)
    await respond(send, 200, TEXT_HEADERS, b'done')
    try:
        message = await asyncio.wait_for(receive(), WAIT_LIMIT)
    except asyncio.TimeoutError:
        write_marker(marker, {'outcome': 'timeout'})
        return
    except Exception as exc:  # noqa: BLE001 - the test wants to see any failure by name
        write_marker(marker, {'outcome': 'raised', 'error': describe_exception(exc)})
        return
    write_marker(marker, {'outcome': 'message', 'message': jsonable(message)})


async def route_disconnect(scope, receive, send):
    """Wait for the client to go away (body consumed, no response yet), then try to respond anyway.

    The marker is written after each step: `send` is 'pending' while the app is still trying to send, then
    None (send did not raise), 'timeout' (send blocked for SEND_WAIT_LIMIT s), 'cancelled', or the exception.
    """
    marker = Path(query(scope)['marker'])
    await read_body(receive)
    write_marker(marker.with_name(marker.name + '.started'), 'started')
    record: dict = {'receive': 'pending', 'send': 'pending'}
    try:
        message = await asyncio.wait_for(receive(), WAIT_LIMIT)
    except asyncio.TimeoutError:
        record['receive'] = 'timeout'
    except asyncio.CancelledError:
        # A server that cancels the app instead of telling it about the disconnect is what the test looks for.
        write_marker(marker, {'receive': 'cancelled', 'send': 'cancelled'})
        raise
    except Exception as exc:  # noqa: BLE001
        record['receive'] = {'raised': describe_exception(exc)}
    else:
        record['receive'] = jsonable(message)
    write_marker(marker, record)
    # Give the server a moment to notice the closed connection everywhere before sending into it.
    await asyncio.sleep(0.2)

    async def respond_anyway() -> None:
        await send({'type': 'http.response.start', 'status': 200, 'headers': TEXT_HEADERS})
        await send({'type': 'http.response.body', 'body': b'nobody reads this'})

    try:
        await asyncio.wait_for(respond_anyway(), SEND_WAIT_LIMIT)
    except asyncio.TimeoutError:
        record['send'] = 'timeout'
    except asyncio.CancelledError:
        record['send'] = 'cancelled'
        write_marker(marker, record)
        raise
    except Exception as exc:  # noqa: BLE001
        record['send'] = describe_exception(exc)
    else:
        record['send'] = None
    write_marker(marker, record)


async def route_response(scope, receive, send):
    """A response of `status` with repeated headers; `chunks` > 0 streams that many body messages."""
    params = query(scope)
    status = int(params.get('status', '200'))
    chunks = int(params.get('chunks', '0'))
    await read_body(receive)
    headers = [*TEXT_HEADERS, (b'x-kind', b'asgi'), (b'x-multi', b'1'), (b'x-multi', b'2')]
    # The shapes apps send headers in: the server reads a list or tuple of pairs by index, anything else iterated.
    shaped = {
        'list': lambda pairs: pairs,
        'tuple': tuple,
        'pair-lists': lambda pairs: [list(pair) for pair in pairs],
        'iterator': iter,
        'bytearray-values': lambda pairs: [(name, bytearray(value)) for name, value in pairs],
    }
    headers = shaped[params.get('shape', 'list')](headers)
    await send({'type': 'http.response.start', 'status': status, 'headers': headers})
    if chunks == 0:
        await send({'type': 'http.response.body', 'body': b'single body'})
        return
    for index in range(chunks):
        await send({'type': 'http.response.body', 'body': f'chunk-{index};'.encode(), 'more_body': True})
        await asyncio.sleep(0.01)
    await send({'type': 'http.response.body', 'body': b'', 'more_body': False})


#: One bytearray every `/fresh-header?mutable=1` response sends, changed in place per request.
SHARED_VALUE = bytearray()


async def route_fresh_header(scope, receive, send):
    """`?v=VALUE`: VALUE in header `x-value`, a bytes object made for this request alone; with
    `mutable=1` the same bytearray object every time, its contents changed to VALUE."""
    params = query(scope)
    value = params['v'].encode()
    await read_body(receive)
    if params.get('mutable'):
        SHARED_VALUE[:] = value
        value = SHARED_VALUE
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'x-value', value)]})
    await send({'type': 'http.response.body', 'body': bytes(value)})


async def route_awaited_every_way(scope, receive, send):
    """The server's awaitables (`receive()`, `send()`) awaited directly, as futures, gathered and stepped by hand."""
    seen = []
    message = await asyncio.ensure_future(receive())
    seen.append(message['type'])
    start = {'type': 'http.response.start', 'status': 200, 'headers': TEXT_HEADERS}
    seen.append(repr(await asyncio.gather(send(start))))
    awaitable = send({'type': 'http.response.body', 'body': b'', 'more_body': True}).__await__()
    try:
        next(awaitable)
    except StopIteration as stop:
        seen.append(f'StopIteration({stop.value!r})')
    seen.append(repr(await asyncio.wait_for(send({'type': 'http.response.body', 'body': ' '.join(seen).encode()}), 5)))


async def route_pathsend(scope, receive, send):
    path = query(scope)['path']
    await read_body(receive)
    await send({'type': 'http.response.start', 'status': 200, 'headers': BINARY_HEADERS})
    await send({'type': 'http.response.pathsend', 'path': path})


async def route_raise_before_start(scope, receive, send):
    raise RuntimeError(f'failure before start {query(scope).get("token", "")}')


async def route_raise_after_start(scope, receive, send):
    await read_body(receive)
    await send({'type': 'http.response.start', 'status': 200, 'headers': TEXT_HEADERS})
    await send({'type': 'http.response.body', 'body': b'partial ', 'more_body': True})
    await asyncio.sleep(0.05)
    raise RuntimeError(f'failure after start {query(scope).get("token", "")}')


async def route_no_response(scope, receive, send):
    await read_body(receive)


async def _record_send_failure(scope, receive, send, messages) -> None:
    """Send `messages` in order; record in the marker which one raised and how (or that none did)."""
    marker = query(scope)['marker']
    await read_body(receive)
    for index, message in enumerate(messages):
        try:
            await send(message)
        except Exception as exc:  # noqa: BLE001
            write_marker(marker, {'failed_message': index, 'error': describe_exception(exc)})
            return index
    write_marker(marker, {'failed_message': None, 'error': None})
    return None


async def route_body_before_start(scope, receive, send):
    await _record_send_failure(scope, receive, send, [{'type': 'http.response.body', 'body': b'too early'}])


async def route_unknown_message(scope, receive, send):
    await _record_send_failure(scope, receive, send, [{'type': 'http.nonsense', 'body': b'?'}])


async def route_double_start(scope, receive, send):
    start = {'type': 'http.response.start', 'status': 200, 'headers': TEXT_HEADERS}
    second_start = {'type': 'http.response.start', 'status': 201, 'headers': TEXT_HEADERS}
    failed = await _record_send_failure(scope, receive, send, [start, second_start])
    if failed == 1:
        # The rejected second start must leave the response that did start intact.
        await send({'type': 'http.response.body', 'body': b'first start wins'})


async def route_sleep(scope, receive, send):
    params = query(scope)
    await read_body(receive)
    if 'marker' in params:
        write_marker(params['marker'], 'started')
    await asyncio.sleep(float(params.get('seconds', '2')))
    await respond(send, 200, TEXT_HEADERS, b'slept')


async def route_pid(scope, receive, send):
    await read_body(receive)
    await respond(send, 200, TEXT_HEADERS, str(os.getpid()).encode())


# Set by every /task request: a request must never see the value an earlier one set.
_request_mark: contextvars.ContextVar[str | None] = contextvars.ContextVar('request_mark', default=None)
_factory_calls = {'count': 0}


async def route_task(scope, receive, send):
    """Report the task the app runs in: at once, or after one suspension with `?wait=1`."""
    params = query(scope)
    first = asyncio.current_task()
    if params.get('wait'):
        await asyncio.sleep(float(params['wait']))
    task = asyncio.current_task()
    leaked = _request_mark.get()
    _request_mark.set(params.get('mark', 'set'))
    await respond_json(
        send,
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


async def route_task_factory(scope, receive, send):
    """`?install=1` installs a counting task factory on the loop; otherwise removes it. Reports the count."""
    loop = asyncio.get_running_loop()
    if query(scope).get('install') == '1':
        _factory_calls['count'] = 0
        loop.set_task_factory(_counting_factory)
    else:
        loop.set_task_factory(None)
    await respond_json(send, {'factory_calls': _factory_calls['count']})


ROUTES = {
    '/task': route_task,
    '/task-factory': route_task_factory,
    '/echo': route_echo,
    '/stream-echo': route_stream_echo,
    '/receive-log': route_receive_log,
    '/receive-after-response': route_receive_after_response,
    '/disconnect': route_disconnect,
    '/response': route_response,
    '/fresh-header': route_fresh_header,
    '/awaited-every-way': route_awaited_every_way,
    '/pathsend': route_pathsend,
    '/raise-before-start': route_raise_before_start,
    '/raise-after-start': route_raise_after_start,
    '/no-response': route_no_response,
    '/body-before-start': route_body_before_start,
    '/unknown-message': route_unknown_message,
    '/double-start': route_double_start,
    '/sleep': route_sleep,
    '/pid': route_pid,
}


async def http(scope, receive, send):
    """Dispatch by path; every path under /scope echoes the scope as JSON."""
    path = scope['path']
    route = route_scope if path.startswith('/scope') else ROUTES.get(path)
    if route is None:
        await read_body(receive)
        await respond(send, 404, TEXT_HEADERS, f'no route {path}'.encode())
        return
    counters['in_flight'] += 1
    try:
        await route(scope, receive, send)
    finally:
        counters['in_flight'] -= 1
        counters['completed'] += 1


async def websocket(scope, receive, send):
    """Refuse every WebSocket (a server without WebSocket support should never get here)."""
    message = await receive()
    if message['type'] == 'websocket.connect':
        await send({'type': 'websocket.close', 'code': 1008})


async def lifespan(scope, receive, send):
    """Put `x` into the lifespan state at startup (after $ASGI_STARTUP_DELAY s); write $ASGI_SHUTDOWN_MARKER."""
    while True:
        message = await receive()
        if message['type'] == 'lifespan.startup':
            delay = float(os.environ.get('ASGI_STARTUP_DELAY', '0'))
            if delay:
                await asyncio.sleep(delay)
            state = scope.get('state')
            if isinstance(state, dict):
                state['x'] = 'from-startup'
            counters['startup_complete'] = True
            await send({'type': 'lifespan.startup.complete'})
        elif message['type'] == 'lifespan.shutdown':
            marker = os.environ.get('ASGI_SHUTDOWN_MARKER')
            if marker:
                write_marker(
                    marker,
                    {'pid': os.getpid(), 'in_flight': counters['in_flight'], 'completed': counters['completed']},
                )
            await send({'type': 'lifespan.shutdown.complete'})
            return


async def app(scope, receive, send):
    """The ASGI test app: lifespan, HTTP routes, and a refusal for WebSockets."""
    if scope['type'] == 'lifespan':
        await lifespan(scope, receive, send)
    elif scope['type'] == 'websocket':
        await websocket(scope, receive, send)
    else:
        await http(scope, receive, send)


async def startup_failed_app(scope, receive, send):
    """An app whose startup fails: the server must exit with code 1 and show the message."""
    if scope['type'] == 'lifespan':
        message = await receive()
        if message['type'] == 'lifespan.startup':
            await send({'type': 'lifespan.startup.failed', 'message': 'database down'})
        return
    await app(scope, receive, send)


async def lifespan_unsupported_app(scope, receive, send):
    """An app that knows only HTTP, as many do: it raises on the lifespan scope."""
    if scope['type'] != 'http':
        raise ValueError(f'this app does not support {scope["type"]!r} scopes')
    await app(scope, receive, send)


async def lifespan_marker_app(scope, receive, send):
    """Serves like `app`, but records in $ASGI_LIFESPAN_MARKER that it was called with a lifespan scope."""
    if scope['type'] == 'lifespan':
        marker = os.environ.get('ASGI_LIFESPAN_MARKER')
        if marker:
            write_marker(marker, 'lifespan scope received')
    await app(scope, receive, send)
