"""h3load: a timed HTTP/3 load generator on aioquic (asyncio), for `python benchmarks/run.py http3`.

    python benchmarks/harness/h3load.py --port 8443 [--connections 4] [--streams 16] [--seconds 5]
        [--method GET --path /b/1k --expect-size 1024 | --method POST --path /echo --body-size 1024]

`connections` QUIC connections are opened first (handshakes are not measured), then each keeps
`streams` requests in flight for `seconds`: every stream slot sends its request, waits for the whole
response, checks it (status 200, the expected length, an echo equal to what was sent) and sends the
next. Requests completed inside the window are counted; those still in flight when it closes are
dropped (reported as `unfinished`, not as errors). The last line printed is one JSON object:
completed, errors, req/s, latency p50/p99 (ms) and this process's own CPU time in the window, so a
saturated client (busy near 1.0: one core, pure-Python QUIC) is visible.

Every wait is bounded: the handshakes, each response (by the end of the window), and the whole run.
The certificate is not verified (the harness serves a throwaway self-signed one). The module keeps
aioquic imports inside the functions that run load, so the harness can import `summarise` without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
import time
from dataclasses import dataclass, field

#: Seconds the QUIC handshakes of every connection may take together.
CONNECT_TIMEOUT = 10.0
#: Seconds after the window allowed for closing the connections.
CLOSE_TIMEOUT = 5.0
#: The deterministic body of benchmarks/apps/payloads.py (copied: this script runs on its own).
PATTERN = b'granian-benchmark-payload-0123456789abcdefghijklmnopqrstuvwxyz\n'


def payload(size: int) -> bytes:
    """The same bytes as `payloads.payload(size)` of the benchmark apps."""
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


def percentile(ordered: list[float], share: float) -> float | None:
    """The value at `share` (0..1) of an ascending list, picked as the harness's h2load figures are."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def summarise(
    latencies_s: list[float],
    errors: int,
    window_s: float,
    cpu_s: float,
    unfinished: int = 0,
    first_error: str | None = None,
) -> dict:
    """The figures of one run from its raw measurements (latencies of the completed requests in seconds,
    the window's wall time and this process's CPU time in it)."""
    ordered = sorted(latencies_s)
    completed = len(ordered)
    p50, p99 = percentile(ordered, 0.5), percentile(ordered, 0.99)
    return {
        'completed': completed,
        'errors': errors,
        'unfinished': unfinished,
        'seconds': round(window_s, 3),
        'rps': round(completed / window_s, 1) if window_s > 0 else 0.0,
        'p50_ms': round(p50 * 1000, 3) if p50 is not None else None,
        'p99_ms': round(p99 * 1000, 3) if p99 is not None else None,
        'cpu_s': round(cpu_s, 3),
        'busy': round(cpu_s / window_s, 3) if window_s > 0 else None,
        'first_error': first_error,
    }


@dataclass
class Request:
    """What one request sends and what a correct answer looks like."""

    method: str
    path: str
    body: bytes = b''
    #: The response body's length (None: any).
    expect_size: int | None = None
    #: The response body must equal the request body.
    echo: bool = False
    authority: str = 'localhost'

    def head(self) -> list[tuple[bytes, bytes]]:
        """The request's HTTP/3 header list (pseudo-headers first)."""
        head = [
            (b':method', self.method.encode()),
            (b':scheme', b'https'),
            (b':authority', self.authority.encode()),
            (b':path', self.path.encode()),
            (b'user-agent', b'h3load'),
        ]
        if self.body:
            head += [(b'content-type', b'application/octet-stream'), (b'content-length', str(len(self.body)).encode())]
        return head

    def problem(self, status: int | None, body: bytes) -> str | None:
        """None when the answer is correct, else what was wrong with it."""
        if status != 200:
            return f'status {status}'
        if self.expect_size is not None and len(body) != self.expect_size:
            return f'{len(body)} body bytes instead of {self.expect_size}'
        if self.echo and body != self.body:
            return 'the echoed body differs from the request body'
        return None


@dataclass
class Tally:
    """The measurements of a run, shared by every stream slot."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    unfinished: int = 0
    first_error: str | None = None

    def error(self, reason: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = reason


class StreamFailed(Exception):
    """The server reset the stream, or the connection ended before the response did."""


class WindowClosed(Exception):
    """The measured window closed with the request still in flight."""


def _client_class():
    """The aioquic protocol class (built here so that importing this module needs no aioquic)."""
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.events import ConnectionTerminated, StreamReset

    class _Pending:
        __slots__ = ('body', 'done', 'status')

        def __init__(self, done: asyncio.Future) -> None:
            self.done = done
            self.status: int | None = None
            self.body = bytearray()

    class H3LoadClient(QuicConnectionProtocol):
        """One QUIC connection sending HTTP/3 requests and completing a future per response."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.http = H3Connection(self._quic)
            self.pending: dict[int, _Pending] = {}
            self.ended: str | None = None
            self._flush_due = False
            self.window_closed = False

        def quic_event_received(self, event) -> None:
            if isinstance(event, ConnectionTerminated):
                self.ended = f'connection ended: {event.reason_phrase or hex(event.error_code)}'
                for stream_id in list(self.pending):
                    self._fail(stream_id, self.ended)
            elif isinstance(event, StreamReset):
                self._fail(event.stream_id, f'stream reset with code {event.error_code:#x}')
            for h3_event in self.http.handle_event(event):
                pending = self.pending.get(getattr(h3_event, 'stream_id', -1))
                if pending is None:
                    continue
                if isinstance(h3_event, HeadersReceived):
                    for name, value in h3_event.headers:
                        if name == b':status':
                            pending.status = int(value)
                elif isinstance(h3_event, DataReceived):
                    pending.body += h3_event.data
                if h3_event.stream_ended:
                    del self.pending[h3_event.stream_id]
                    if not pending.done.done():
                        pending.done.set_result((pending.status, bytes(pending.body)))

        def _fail(self, stream_id: int, reason: str) -> None:
            pending = self.pending.pop(stream_id, None)
            if pending is not None and not pending.done.done():
                pending.done.set_exception(StreamFailed(reason))

        def close_window(self) -> None:
            """Ends every request still in flight with WindowClosed, and refuses new ones."""
            self.window_closed = True
            pending, self.pending = self.pending, {}
            for waiting in pending.values():
                if not waiting.done.done():
                    waiting.done.set_exception(WindowClosed())

        def _flush(self) -> None:
            self._flush_due = False
            self.window_closed = False
            self.transmit()

        def send_request(self, request: Request) -> asyncio.Future:
            """Sends `request` on a new stream; the future gets (status, body) or StreamFailed."""
            if self.window_closed:
                raise WindowClosed()
            if self.ended is not None:
                raise StreamFailed(self.ended)
            stream_id = self._quic.get_next_available_stream_id()
            done = self._loop.create_future()
            self.pending[stream_id] = _Pending(done)
            self.http.send_headers(stream_id, request.head(), end_stream=not request.body)
            if request.body:
                self.http.send_data(stream_id, request.body, end_stream=True)
            # One transmit per loop iteration: the requests that slots send in the same iteration
            # (after one datagram completed several responses) share packets.
            if not self._flush_due:
                self._flush_due = True
                self._loop.call_soon(self._flush)
            return done

    return H3LoadClient


def configuration():
    """A client configuration offering HTTP/3, without certificate verification."""
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, idle_timeout=30.0)
    config.server_name = 'localhost'
    config.verify_mode = ssl.CERT_NONE
    return config


async def _slot(client, request: Request, deadline: float, tally: Tally) -> None:
    """One stream slot: a request in flight at a time until the window closes (`close_window` ends
    the one in flight then, so no wait here outlives the window)."""
    clock = time.monotonic
    while True:
        began = clock()
        if began >= deadline:
            return
        try:
            answer = client.send_request(request)
        except WindowClosed:
            return
        except StreamFailed as error:
            tally.error(str(error))
            return
        except Exception as error:  # noqa: BLE001 - aioquic refused to send (a failed connection): counted
            tally.error(f'send failed: {error!r}')
            return
        try:
            status, body = await answer
        except WindowClosed:
            tally.unfinished += 1
            return
        except StreamFailed as error:
            tally.error(str(error))
            if client.ended is not None:
                return
            continue
        finished = clock()
        if finished > deadline:
            tally.unfinished += 1
            return
        problem = request.problem(status, body)
        if problem is None:
            tally.latencies.append(finished - began)
        else:
            tally.error(problem)


async def run_load(host: str, port: int, request: Request, connections: int, streams: int, seconds: float) -> dict:
    """Opens the connections, loads them for `seconds`, closes them; returns `summarise`'s figures."""
    from aioquic.asyncio.client import connect

    protocol = _client_class()
    tally = Tally()
    async with _Connections(connect, protocol, host, port, connections) as clients:
        cpu_began, began = time.process_time(), time.monotonic()
        deadline = began + seconds
        closer = asyncio.get_running_loop().call_later(seconds, lambda: [c.close_window() for c in clients])
        slots = [_slot(client, request, deadline, tally) for client in clients for _ in range(streams)]
        await asyncio.gather(*slots)
        closer.cancel()
        window = max(time.monotonic(), deadline) - began
        cpu = time.process_time() - cpu_began
    return summarise(tally.latencies, tally.errors, window, cpu, tally.unfinished, tally.first_error)


class _Connections:
    """`count` connections opened together (bounded) and closed together (bounded) on exit."""

    def __init__(self, connect, protocol, host: str, port: int, count: int) -> None:
        self._managers = [
            connect(host, port, configuration=configuration(), create_protocol=protocol) for _ in range(count)
        ]
        self._entered: list = []

    async def __aenter__(self) -> list:
        async def enter(manager):
            client = await manager.__aenter__()
            self._entered.append(manager)
            return client

        try:
            return await asyncio.wait_for(asyncio.gather(*(enter(m) for m in self._managers)), CONNECT_TIMEOUT)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise

    async def __aexit__(self, *exc_info) -> None:
        async def leave(manager) -> None:
            # A connection that fails to close cleanly costs nothing measured.
            with contextlib.suppress(Exception):
                await manager.__aexit__(None, None, None)

        try:
            await asyncio.wait_for(asyncio.gather(*(leave(m) for m in self._entered)), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            pass


def _event_loop() -> str:
    """Runs on uvloop when it is installed (less client CPU per request); returns the loop's name."""
    try:
        import uvloop
    except ImportError:
        return 'asyncio'
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return 'uvloop'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Timed HTTP/3 load on aioquic; prints one JSON line.')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--connections', type=int, default=4, help='QUIC connections (default: 4)')
    parser.add_argument('--streams', type=int, default=16, help='requests in flight per connection (default: 16)')
    parser.add_argument('--seconds', type=float, default=5.0, help='measured window (default: 5)')
    parser.add_argument('--method', default='GET')
    parser.add_argument('--path', default='/b/1k')
    parser.add_argument('--body-size', type=int, default=0, help='request body bytes; a POST echoes them')
    parser.add_argument(
        '--expect-size', type=int, help='response body bytes (default: the body size of a POST, else any)'
    )
    options = parser.parse_args(argv)
    body = payload(options.body_size) if options.body_size else b''
    expect = options.expect_size if options.expect_size is not None or not body else len(body)
    request = Request(options.method, options.path, body, expect, echo=bool(body))
    loop = _event_loop()
    limit = CONNECT_TIMEOUT + options.seconds + CLOSE_TIMEOUT + 5
    try:
        result = asyncio.run(
            asyncio.wait_for(
                run_load(options.host, options.port, request, options.connections, options.streams, options.seconds),
                limit,
            )
        )
    except asyncio.TimeoutError:
        print(json.dumps({'fatal': f'the run did not end within {limit:.0f} s'}))
        return 1
    except Exception as error:  # noqa: BLE001 - every failure is reported to the harness as one JSON line
        print(json.dumps({'fatal': f'{type(error).__name__}: {error}'}))
        return 1
    from importlib.metadata import version

    result.update(
        connections=options.connections,
        streams=options.streams,
        loop=loop,
        aioquic=version('aioquic'),
        python=sys.version.split()[0],
    )
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
