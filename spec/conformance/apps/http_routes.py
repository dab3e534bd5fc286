"""HTTP routes (spec section 5).

Routes that record state take a `key` query parameter, so every test reads its own record. A route
that waits for the test (`/http/stream-gated`) polls for a file the test creates in the state dir.
Every wait inside a route is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path

from routing import TEXT, outcome_of, query, route, send_json
from state import STATE_DIR, describe_exception, record

# Files served by response_file and response_file_range, written at import time into the state dir so the
# tests read the same bytes from disk (outside the suite, into a temporary directory): every byte value,
# in an order that is not periodic.
FILE_DIR = STATE_DIR if os.environ.get('RSGI_CONFORMANCE_STATE') else Path(tempfile.mkdtemp(prefix='rsgi-http-'))
FILE_BODY = bytes((i * 7 + (i >> 8) * 13) % 256 for i in range(300_000))
FILE_PATH = FILE_DIR / 'http-file.bin'
EMPTY_FILE_PATH = FILE_DIR / 'http-file-empty.bin'
FILE_PATH.write_bytes(FILE_BODY)
EMPTY_FILE_PATH.write_bytes(b'')

# What the string and stream routes send; the tests compare with the same literals.
NON_ASCII = 'héllo wörld — ✓ 日本 😀'
ENDLESS_CAP = 15.0  # seconds an endless stream runs at most when its sends never fail
GATE_WAIT = 10.0  # seconds a gated route waits for the test's go file


def describe_body(body: object) -> dict:
    if not isinstance(body, bytes):
        return {'type': type(body).__name__}
    return {'type': 'bytes', 'length': len(body), 'sha256': hashlib.sha256(body).hexdigest()}


# -- 5.1 reading the request body ------------------------------------------------------------------


@route('/http/body')
async def body_whole(scope, protocol) -> None:
    """`await protocol()`: the type, length and hash of what it returned."""
    send_json(protocol, describe_body(await protocol()))


@route('/http/body-once')
async def body_once(scope, protocol) -> None:
    """Read the body whole, then again (bounded): what the second read did."""
    first = await protocol()
    outcome = await outcome_of(protocol, 5, describe_body)
    send_json(protocol, {'first': describe_body(first), 'second': outcome})


@route('/http/body-disconnect')
async def body_disconnect(scope, protocol) -> None:
    """`await protocol()` while the test drops the connection mid-body; records what it did."""
    key = query(scope).get('key', 'default')
    record(f'body-disconnect-started-{key}', True)
    try:
        outcome = await outcome_of(protocol, 10, describe_body)
    except asyncio.CancelledError:
        record(f'body-disconnect-{key}', {'outcome': 'cancelled'})
        raise
    record(f'body-disconnect-{key}', outcome)
    send_json(protocol, outcome)


@route('/http/body-iter')
async def body_iter(scope, protocol) -> None:
    """`async for chunk in protocol`: the chunk types and lengths, and the hash of their concatenation.

    With `key`, records `body-iter-first-<key>` as soon as the first non-empty chunk arrived.
    """
    key = query(scope).get('key')
    types: set[str] = set()
    lengths: list[int] = []
    body = b''
    async for chunk in protocol:
        types.add(type(chunk).__name__)
        if isinstance(chunk, bytes):
            if chunk and not body and key:
                record(f'body-iter-first-{key}', {'length': len(chunk)})
            body += chunk
            lengths.append(len(chunk))
    send_json(protocol, {'types': sorted(types), 'lengths': lengths, **describe_body(body)})


@route('/http/client-disconnect')
async def client_disconnect(scope, protocol) -> None:
    """Race `client_disconnect()` against a 1 s timer while the test is connected, then wait for it.

    Records `client-disconnect-connected-<key>` after the race (the test closes its socket only then)
    and `client-disconnect-<key>` with what the second wait did.
    """
    key = query(scope).get('key', 'default')
    disconnect = asyncio.ensure_future(protocol.client_disconnect())
    try:
        done, _ = await asyncio.wait({disconnect}, timeout=1.0)
        record(f'client-disconnect-connected-{key}', {'completed_while_connected': bool(done)})
        if done:
            outcome = {'outcome': 'completed early', 'error': _exception_of(disconnect)}
        else:
            started = time.monotonic()
            done, _ = await asyncio.wait({disconnect}, timeout=10.0)
            if done:
                outcome = {
                    'outcome': 'completed',
                    'error': _exception_of(disconnect),
                    'seconds': round(time.monotonic() - started, 3),
                }
            else:
                outcome = {'outcome': 'hung'}
    except asyncio.CancelledError:
        record(f'client-disconnect-{key}', {'outcome': 'cancelled'})
        raise
    finally:
        disconnect.cancel()
    record(f'client-disconnect-{key}', outcome)
    protocol.response_empty(200, [])


def _exception_of(task: asyncio.Future) -> dict | None:
    exc = task.exception()
    return None if exc is None else describe_exception(exc)


# -- 5.2 answering ----------------------------------------------------------------------------------


@route('/http/status')
async def status(scope, protocol) -> None:
    """Answer with the status in `code` (response_empty, or response_str when `body` is given)."""
    params = query(scope)
    code = int(params.get('code', '200'))
    if 'body' in params:
        protocol.response_str(code, TEXT, params['body'])
    else:
        protocol.response_empty(code, [])


RESPONSE_HEADERS = [
    ('content-type', 'text/plain; charset=utf-8'),
    ('x-multi', 'first'),
    ('x-single', 'one'),
    ('x-multi', 'second'),
    ('set-cookie', 'a=1; Path=/'),
    ('x-multi', 'third'),
    ('set-cookie', 'b=2; Path=/'),
]


@route('/http/headers')
async def response_headers(scope, protocol) -> None:
    """RESPONSE_HEADERS through the method named in `method`."""
    method = query(scope).get('method', 'str')
    if method == 'empty':
        protocol.response_empty(200, RESPONSE_HEADERS)
    elif method == 'bytes':
        protocol.response_bytes(200, RESPONSE_HEADERS, b'headers')
    elif method == 'file':
        protocol.response_file(200, RESPONSE_HEADERS, str(FILE_PATH))
    elif method == 'stream':
        transport = protocol.response_stream(200, RESPONSE_HEADERS)
        await transport.send_bytes(b'headers')
    else:
        protocol.response_str(200, RESPONSE_HEADERS, 'headers')


@route('/http/headers-own-server')
async def response_headers_own_server(scope, protocol) -> None:
    """Sets the `server` field itself: the server does not add its own beside it."""
    protocol.response_str(200, [*TEXT, ('server', 'rsgi-conformance-app')], 'own server')


@route('/http/empty')
async def response_empty(scope, protocol) -> None:
    code = int(query(scope).get('code', '200'))
    protocol.response_empty(code, [('x-empty', 'yes')])


def bytes_body(size: int) -> bytes:
    return bytes((i * 31 + (i >> 8)) % 256 for i in range(size))


@route('/http/bytes')
async def response_bytes(scope, protocol) -> None:
    size = int(query(scope).get('size', '256'))
    protocol.response_bytes(200, [('content-type', 'application/octet-stream')], bytes_body(size))


@route('/http/str')
async def response_str(scope, protocol) -> None:
    """NON_ASCII; with `ctype=0` without a content-type field."""
    headers = [] if query(scope).get('ctype') == '0' else TEXT
    protocol.response_str(200, headers, NON_ASCII)


@route('/http/file')
async def response_file(scope, protocol) -> None:
    """FILE_PATH (or, with `which=empty`, an empty file) through response_file."""
    path = EMPTY_FILE_PATH if query(scope).get('which') == 'empty' else FILE_PATH
    protocol.response_file(200, [('content-type', 'application/octet-stream')], str(path))


@route('/http/file-range')
async def response_file_range(scope, protocol) -> None:
    """Bytes `start`..`end` of FILE_PATH through response_file_range, with status `code` (206)."""
    params = query(scope)
    code = int(params.get('code', '206'))
    start, end = int(params['start']), int(params['end'])
    protocol.response_file_range(code, [('content-type', 'application/octet-stream')], str(FILE_PATH), start, end)


@route('/http/file-range-invalid')
async def response_file_range_invalid(scope, protocol) -> None:
    """response_file_range with `start >= end`; answers with what it did (if it still can)."""
    params = query(scope)
    start, end = int(params['start']), int(params['end'])
    try:
        protocol.response_file_range(206, [('x-range-call', 'sent')], str(FILE_PATH), start, end)
    except Exception as exc:  # noqa: BLE001 - the test wants to see what was raised
        send_json(protocol, {'outcome': 'raised', **describe_exception(exc)})
    else:
        # The call did not raise; this second response is ignored when the first one went out.
        send_json(protocol, {'outcome': 'returned'})


@route('/http/stream')
async def response_stream(scope, protocol) -> None:
    """Bytes and str sends, in order: the body is b'one,' + 'twö,'.encode() + b'three'."""
    transport = protocol.response_stream(200, [*TEXT, ('x-stream', 'yes')])
    await transport.send_bytes(b'one,')
    await transport.send_str('twö,')
    await transport.send_bytes(b'three')


@route('/http/stream-gated')
async def response_stream_gated(scope, protocol) -> None:
    """Send `first;` (not with `first=0`), wait for the test's go file `stream-go-<key>`, send `last`, return."""
    params = query(scope)
    key = params.get('key', 'default')
    transport = protocol.response_stream(200, [*TEXT, ('x-gated', 'yes')])
    if params.get('first') != '0':
        await transport.send_bytes(b'first;')
    go = STATE_DIR / f'stream-go-{key}'
    deadline = time.monotonic() + GATE_WAIT
    while not go.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await transport.send_str('last' if go.exists() else 'gave up waiting')


@route('/http/stream-empty')
async def response_stream_empty(scope, protocol) -> None:
    """Empty sends between non-empty ones: the body is b'abcd'."""
    transport = protocol.response_stream(200, TEXT)
    await transport.send_bytes(b'a')
    await transport.send_bytes(b'')
    await transport.send_str('b')
    await transport.send_str('')
    await transport.send_bytes(b'')
    await transport.send_bytes(b'c')
    await transport.send_str('')
    await transport.send_str('d')


@route('/http/stream-endless')
async def response_stream_endless(scope, protocol) -> None:
    """Stream until a send raises (bounded by ENDLESS_CAP); records `stream-endless-<key>`."""
    key = query(scope).get('key', 'default')
    transport = protocol.response_stream(200, [('content-type', 'application/octet-stream')])
    chunk = b'x' * 4096
    sends = 0
    started = time.monotonic()
    outcome: dict = {'outcome': 'never raised'}
    try:
        while time.monotonic() - started < ENDLESS_CAP:
            await transport.send_bytes(chunk)
            sends += 1
            if sends == 4:
                record(f'stream-endless-started-{key}', True)
            await asyncio.sleep(0.005)
    except asyncio.CancelledError:
        record(f'stream-endless-{key}', {'outcome': 'cancelled', 'sends': sends})
        raise
    except Exception as exc:  # noqa: BLE001 - the test wants to see what was raised
        outcome = {'outcome': 'raised', **describe_exception(exc)}
    outcome.update(sends=sends, seconds=round(time.monotonic() - started, 3))
    record(f'stream-endless-{key}', outcome)


# -- 5.3 errors and edge cases ---------------------------------------------------------------------

SECRET = 'conformance-secret-7f3a9c'


@route('/http/no-response')
async def no_response(scope, protocol) -> None:
    """Returns without answering (after reading the body, when `read=1`)."""
    if query(scope).get('read') == '1':
        await protocol()


@route('/http/app-error')
async def app_error(scope, protocol) -> None:
    """Raises before answering; the exception text must not reach the client."""
    if query(scope).get('read') == '1':
        await protocol()
    kind = query(scope).get('kind', 'runtime')
    if kind == 'value':
        raise ValueError(f'value error {SECRET}')
    raise RuntimeError(f'runtime error {SECRET}')


@route('/http/stream-error')
async def stream_error(scope, protocol) -> None:
    """Starts a stream, sends `sends` chunks (default 1), then raises."""
    sends = int(query(scope).get('sends', '1'))
    transport = protocol.response_stream(200, TEXT)
    for _ in range(sends):
        await transport.send_bytes(b'partial;')
    await asyncio.sleep(0.05)
    raise RuntimeError(f'error after start {SECRET}')
