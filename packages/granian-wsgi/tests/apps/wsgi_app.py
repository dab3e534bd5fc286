"""PEP 3333 test application: one route per protocol feature, so tests can observe it from outside.

Served with `--working-dir` pointing at this directory as `wsgi_app:app`. Routes dispatch on PATH_INFO and take
their parameters from the query string. What a response cannot carry (whether `close()` ran, what a second
`start_response` did once the body had started) is written as JSON to a marker file named in the query string.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

from input_ops import apply_ops

TEXT_HEADERS = [('Content-Type', 'text/plain; charset=utf-8')]
JSON_HEADERS = [('Content-Type', 'application/json')]
BINARY_HEADERS = [('Content-Type', 'application/octet-stream')]
# Upper bound of every wait inside the app, so a misbehaving server cannot keep a thread busy forever.
WAIT_LIMIT = 10.0
ENDLESS_LIMIT = 30.0

# In-app concurrency per group of requests (/sleep), for the --blocking-threads and --backpressure tests.
_concurrency_lock = threading.Lock()
_in_app: dict[str, int] = {}
_peak: dict[str, int] = {}


def query(environ) -> dict[str, str]:
    """Return the query string as a dict (last value wins)."""
    pairs = parse_qs(environ.get('QUERY_STRING', ''), keep_blank_values=True)
    return {key: values[-1] for key, values in pairs.items()}


def write_marker(path: str | Path, data: object) -> None:
    """Write `data` as JSON to `path` atomically, so a test polling for the file never reads half of it."""
    path = Path(path)
    partial = path.with_name(path.name + '.partial')
    partial.write_text(json.dumps(data), encoding='utf-8')
    os.replace(partial, path)


def wait_for_file(path: str | Path, limit: float = WAIT_LIMIT) -> bool:
    """Wait (bounded) until `path` exists."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def random_bytes(size: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes: the test computes the same ones to check a response."""
    return random.Random(seed).randbytes(size)


def json_response(start_response, data, status: str = '200 OK'):
    body = json.dumps(data).encode()
    start_response(status, [*JSON_HEADERS, ('Content-Length', str(len(body)))])
    return [body]


def text_response(start_response, text: str, status: str = '200 OK'):
    body = text.encode()
    start_response(status, [*TEXT_HEADERS, ('Content-Length', str(len(body)))])
    return [body]


def read_all(environ) -> bytes:
    """Read the whole request body in 64 KiB reads."""
    stream = environ['wsgi.input']
    chunks = []
    while True:
        chunk = stream.read(65536)
        if not chunk:
            return b''.join(chunks)
        chunks.append(chunk)


def jsonable(value):
    """Convert an environ value to JSON-compatible data; objects become their repr."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return repr(value)


def describe_environ(environ) -> dict:
    """Every environ key with its value and type, plus what the stream objects can do."""
    errors = environ.get('wsgi.errors')
    stream = environ.get('wsgi.input')
    try:
        errors.write('granian wsgi.errors write\n')
        errors.writelines(['granian wsgi.errors writelines\n'])
        errors.flush()
        errors_usable = True
    except Exception as exc:  # noqa: BLE001 - the test wants to see any failure by name
        errors_usable = f'{type(exc).__name__}: {exc}'
    return {
        'environ': {key: jsonable(value) for key, value in environ.items()},
        'types': {key: type(value).__name__ for key, value in environ.items()},
        'checks': {
            'errors_methods': [
                name for name in ('write', 'writelines', 'flush') if callable(getattr(errors, name, None))
            ],
            'errors_usable': errors_usable,
            'input_methods': [
                name for name in ('read', 'readline', 'readlines', '__iter__') if callable(getattr(stream, name, None))
            ],
            'file_wrapper_callable': callable(environ.get('wsgi.file_wrapper')),
            'environ_is_dict': type(environ) is dict,
        },
    }


class MarkedIterable:
    """A response iterable whose close() writes a marker file; `fail_after` raises once that many chunks went out."""

    def __init__(self, chunks, marker: str, fail_after: int | None = None, token: str = '') -> None:
        self.chunks = chunks
        self.marker = marker
        self.fail_after = fail_after
        self.token = token
        self.sent = 0

    def __iter__(self):
        for chunk in self.chunks:
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise RuntimeError(f'failure during iteration {self.token}')
            self.sent += 1
            yield chunk

    def close(self) -> None:
        write_marker(self.marker, {'closed': True, 'sent': self.sent})


class MarkedBytesIO(io.BytesIO):
    """In-memory file whose close() writes a marker file (no fileno(): the server cannot use sendfile)."""

    def __init__(self, data: bytes, marker: str | None) -> None:
        super().__init__(data)
        self.marker = marker

    def close(self) -> None:
        if self.marker and not self.closed:
            write_marker(self.marker, 'closed')
        super().close()


def endless_chunks(started: str):
    """1 KiB every 10 ms for up to ENDLESS_LIMIT s; marks that iteration started."""
    write_marker(started, 'started')
    deadline = time.monotonic() + ENDLESS_LIMIT
    while time.monotonic() < deadline:
        yield b'x' * 1024
        time.sleep(0.01)


def route_environ(environ, start_response):
    body = read_all(environ)
    described = describe_environ(environ)
    described['body_length'] = len(body)
    return json_response(start_response, described)


def route_hello(environ, start_response):
    return text_response(start_response, 'hello')


def route_input(environ, start_response):
    """Apply the operations in `ops` to wsgi.input; `summary=1` answers lengths and a digest instead of data.

    The rest of the body is read afterwards (its length is `rest`), so the client can always finish sending.
    """
    params = query(environ)
    results = apply_ops(environ['wsgi.input'], params['ops'])
    rest = len(read_all(environ))
    if params.get('summary') == '1':
        digest = hashlib.sha256()
        for pieces in results:
            for piece in pieces:
                digest.update(piece)
        return json_response(
            start_response,
            {
                'lengths': [[len(piece) for piece in pieces] for pieces in results],
                'types': sorted({type(piece).__name__ for pieces in results for piece in pieces}),
                'sha256': digest.hexdigest(),
                'rest': rest,
            },
        )
    return json_response(
        start_response,
        {
            'pieces': [[piece.decode('latin-1') for piece in pieces] for pieces in results],
            'types': sorted({type(piece).__name__ for pieces in results for piece in pieces}),
            'rest': rest,
        },
    )


def route_digest(environ, start_response):
    body = read_all(environ)
    return json_response(start_response, {'length': len(body), 'sha256': hashlib.sha256(body).hexdigest()})


def route_write(environ, start_response):
    write = start_response('200 OK', TEXT_HEADERS)
    write(b'a')
    write(b'b')
    return [b'c']


def route_write_in_generator(environ, start_response):
    write = start_response('200 OK', TEXT_HEADERS)

    def body():
        yield b'1'
        write(b'2')
        yield b'3'
        write(b'4')

    return body()


def route_lazy_start(environ, start_response):
    """start_response runs only when the server asks the generator for its first chunk (PEP 3333 allows it)."""

    def body():
        start_response('200 OK', TEXT_HEADERS)
        yield b'started lazily'

    return body()


def route_exc_info_replace(environ, start_response):
    start_response('200 OK', TEXT_HEADERS)
    try:
        raise ValueError('the app failed after start_response')
    except ValueError:
        start_response('500 Internal Server Error', TEXT_HEADERS, sys.exc_info())
        return [b'error body from the app']


def route_exc_info_after_empty_yield(environ, start_response):
    """An empty chunk sends nothing, so the status can still be replaced after it."""
    start_response('200 OK', TEXT_HEADERS)

    def body():
        yield b''
        try:
            raise ValueError('the app failed after an empty chunk')
        except ValueError:
            start_response('503 Service Unavailable', TEXT_HEADERS, sys.exc_info())
        yield b'replaced after an empty chunk'

    return body()


def route_exc_info_after_body(environ, start_response):
    """Once body bytes went out, start_response(..., exc_info) must raise; record what it did."""
    marker = query(environ)['marker']
    start_response('200 OK', TEXT_HEADERS)

    def body():
        yield b'partial body'
        try:
            raise ValueError('late failure')
        except ValueError:
            try:
                start_response('500 Internal Server Error', TEXT_HEADERS, sys.exc_info())
            except ValueError as exc:
                write_marker(marker, {'outcome': 're-raised', 'class': type(exc).__name__, 'message': str(exc)})
                raise
            except Exception as exc:
                write_marker(marker, {'outcome': 'raised', 'class': type(exc).__name__, 'message': str(exc)})
                raise
            write_marker(marker, {'outcome': 'returned'})
        yield b' and the rest'

    return body()


def route_double_start(environ, start_response):
    start_response('200 OK', TEXT_HEADERS)
    start_response('201 Created', TEXT_HEADERS)
    return [b'the second start_response was accepted']


def route_bad_status(environ, start_response):
    start_response(query(environ)['status'], TEXT_HEADERS)
    return [b'a bad status was accepted']


def route_raise(environ, start_response):
    raise RuntimeError(f'wsgi app failure {query(environ).get("token", "")}')


def route_raise_mid_body(environ, start_response):
    params = query(environ)
    start_response('200 OK', TEXT_HEADERS)
    chunks = [b'chunk-0;', b'chunk-1;', b'chunk-2;']
    return MarkedIterable(chunks, params['marker'], fail_after=1, token=params.get('token', ''))


def route_chunks(environ, start_response):
    count = int(query(environ).get('count', '5'))
    start_response('200 OK', TEXT_HEADERS)
    return [f'chunk-{index};'.encode() for index in range(count)]


def route_stream(environ, start_response):
    count = int(query(environ).get('count', '5'))
    start_response('200 OK', TEXT_HEADERS)

    def body():
        for index in range(count):
            yield f'chunk-{index};'.encode()
            time.sleep(0.005)

    return body()


def route_stream_handshake(environ, start_response):
    """Yield one chunk, then wait until the client says (with a file) that it received it."""
    proceed = query(environ)['proceed']
    start_response('200 OK', TEXT_HEADERS)

    def body():
        yield b'first;'
        yield b'second;' if wait_for_file(proceed) else b'the client never received the first chunk;'

    return body()


def route_stream_random(environ, start_response):
    params = query(environ)
    data = random_bytes(int(params['size']), int(params.get('seed', '0')))
    chunk = int(params.get('chunk', '65536'))
    start_response('200 OK', BINARY_HEADERS)

    def body():
        for start in range(0, len(data), chunk):
            yield data[start : start + chunk]

    return body()


def route_close_marker(environ, start_response):
    start_response('200 OK', TEXT_HEADERS)
    return MarkedIterable([b'closed ', b'after ', b'this'], query(environ)['marker'])


def route_endless(environ, start_response):
    """Stream until the client leaves; `kind=class` returns an iterable with close(), else a generator."""
    params = query(environ)
    marker = params['marker']
    started = marker + '.started'
    start_response('200 OK', BINARY_HEADERS)
    if params.get('kind') == 'class':
        return MarkedIterable(endless_chunks(started), marker)

    def body():
        try:
            yield from endless_chunks(started)
        finally:
            write_marker(marker, {'closed': True})

    return body()


def route_file_wrapper(environ, start_response):
    params = query(environ)
    file = open(params['path'], 'rb')  # noqa: SIM115 - the server closes it through the wrapper
    # A file the app already read into: the server sends the rest, from the file's position.
    file.seek(int(params.get('seek', 0)))
    start_response('200 OK', BINARY_HEADERS)
    if 'block_size' in params:
        return environ['wsgi.file_wrapper'](file, int(params['block_size']))
    return environ['wsgi.file_wrapper'](file)


def route_file_wrapper_bytesio(environ, start_response):
    params = query(environ)
    data = random_bytes(int(params['size']), int(params.get('seed', '0')))
    start_response('200 OK', BINARY_HEADERS)
    return environ['wsgi.file_wrapper'](MarkedBytesIO(data, params.get('marker')))


def route_slow_stream(environ, start_response):
    """`count` chunks of `size` bytes, one every `delay` s, ending with b'END'."""
    params = query(environ)
    count, size, delay = int(params['count']), int(params['size']), float(params['delay'])
    started = params.get('started')
    start_response('200 OK', BINARY_HEADERS)

    def body():
        if started:
            write_marker(started, 'started')
        for _ in range(count):
            yield b's' * size
            time.sleep(delay)
        yield b'END'

    return body()


def route_sleep(environ, start_response):
    """Sleep `seconds` in the app thread, counting how many requests of `group` are in the app at once."""
    params = query(environ)
    group = params.get('group', 'default')
    with _concurrency_lock:
        _in_app[group] = _in_app.get(group, 0) + 1
        _peak[group] = max(_peak.get(group, 0), _in_app[group])
    try:
        time.sleep(float(params.get('seconds', '0.5')))
    finally:
        with _concurrency_lock:
            _in_app[group] -= 1
    return text_response(start_response, 'slept')


def route_peak(environ, start_response):
    group = query(environ).get('group', 'default')
    with _concurrency_lock:
        return json_response(start_response, {'peak': _peak.get(group, 0), 'in_app': _in_app.get(group, 0)})


class IteratedHeaders(list):
    """A list whose iteration adds a header: the server must iterate it, not read its items."""

    def __iter__(self):
        yield from super().__iter__()
        yield ('X-From-Iter', 'yes')


def route_response_headers(environ, start_response):
    """`?as=tuple|generator|list-subclass` passes the same headers as a tuple, a generator or an
    `IteratedHeaders` (which adds `X-From-Iter`) instead of a list."""
    headers = [*TEXT_HEADERS, ('X-Multi', '1'), ('X-Multi', '2'), ('X-Kind', 'wsgi'), ('Content-Length', '5')]
    shape = query(environ).get('as')
    if shape == 'list-subclass':
        headers = IteratedHeaders(headers)
    start_response(
        '201 Created', tuple(headers) if shape == 'tuple' else iter(headers) if shape == 'generator' else headers
    )
    return [b'he', b'llo']


class MarkedList(list):
    """A list response whose close() writes a marker file: a list, but one with close()."""

    def __init__(self, chunks, marker: str) -> None:
        super().__init__(chunks)
        self.marker = marker

    def close(self) -> None:
        write_marker(self.marker, {'closed': True, 'sent': len(self)})


def route_close_marker_list(environ, start_response):
    start_response('200 OK', TEXT_HEADERS)
    return MarkedList([b'closed ', b'after ', b'this'], query(environ)['marker'])


class IteratedBodyList(list):
    """A list response whose iteration adds a chunk: the server must iterate it, not read its items."""

    def __iter__(self):
        yield from super().__iter__()
        yield b' (iterated)'


class IteratedBodyTuple(tuple):
    """The same for a tuple response."""

    def __iter__(self):
        yield from super().__iter__()
        yield b' (iterated)'


def route_iterated_body(environ, start_response):
    """`?as=list|tuple`: the body as a list or tuple subclass with its own `__iter__`."""
    start_response('200 OK', TEXT_HEADERS)
    chunks = [b'from', b' items']
    return IteratedBodyTuple(chunks) if query(environ).get('as') == 'tuple' else IteratedBodyList(chunks)


def route_fresh_header(environ, start_response):
    """`?v=VALUE`: VALUE in header `x-value`, a str made for this request alone (the name is a constant)."""
    value = query(environ)['v']
    start_response('200 OK', [('Content-Type', 'text/plain'), ('x-' + 'value', value)])
    return [value.encode()]


def route_pid(environ, start_response):
    return text_response(start_response, str(os.getpid()))


def route_tamper(environ, start_response):
    """Change this request's environ in every way an app can; a later request must not see it."""
    environ['granian.test.tampered'] = 'yes'
    environ['SERVER_NAME'] = 'tampered'
    del environ['REMOTE_ADDR']
    environ.pop('HTTP_X_CUSTOM', None)
    return text_response(start_response, 'tampered')


ROUTES = {
    '/hello': route_hello,
    '/input': route_input,
    '/digest': route_digest,
    '/write': route_write,
    '/write-in-generator': route_write_in_generator,
    '/lazy-start': route_lazy_start,
    '/exc-info-replace': route_exc_info_replace,
    '/exc-info-after-empty-yield': route_exc_info_after_empty_yield,
    '/exc-info-after-body': route_exc_info_after_body,
    '/double-start': route_double_start,
    '/bad-status': route_bad_status,
    '/raise': route_raise,
    '/raise-mid-body': route_raise_mid_body,
    '/chunks': route_chunks,
    '/stream': route_stream,
    '/stream-handshake': route_stream_handshake,
    '/stream-random': route_stream_random,
    '/close-marker': route_close_marker,
    '/close-marker-list': route_close_marker_list,
    '/iterated-body': route_iterated_body,
    '/fresh-header': route_fresh_header,
    '/endless': route_endless,
    '/file-wrapper': route_file_wrapper,
    '/file-wrapper-bytesio': route_file_wrapper_bytesio,
    '/slow-stream': route_slow_stream,
    '/sleep': route_sleep,
    '/peak': route_peak,
    '/response-headers': route_response_headers,
    '/pid': route_pid,
    '/tamper': route_tamper,
}


def app(environ, start_response):
    """The WSGI test app: every path under /environ describes the environ; other paths pick a route."""
    path = environ.get('PATH_INFO', '')
    if path.startswith('/environ'):
        return route_environ(environ, start_response)
    route = ROUTES.get(path)
    if route is None:
        read_all(environ)
        return text_response(start_response, f'no route {path}', '404 Not Found')
    return route(environ, start_response)
