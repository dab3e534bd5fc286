"""An HTTP/3 client for tests, on aioquic: requests over one QUIC connection, bodies sent whole or in
chunks, streams reset on purpose, and the connection's GOAWAY and close seen by the test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset

#: HTTP/3 error code H3_REQUEST_CANCELLED (RFC 9114, 8.1), for streams a test gives up.
REQUEST_CANCELLED = 0x10C


class StreamFailed(Exception):
    """The server reset the stream, or the connection ended before the response did."""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


@dataclass
class _Stream:
    done: asyncio.Future
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    chunks: asyncio.Queue | None = None


class _H3Connection(H3Connection):
    """aioquic's HTTP/3 connection, except that it does not hold the answer to a HEAD request to its
    `content-length` (aioquic does, though RFC 9110 §8.6 has a HEAD answer declare the length of
    the body a GET would get, and send none)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head_streams: set[int] = set()

    def _check_content_length(self, stream) -> None:
        if stream.stream_id not in self.head_streams:
            super()._check_content_length(stream)


class H3Client(QuicConnectionProtocol):
    """One QUIC connection speaking HTTP/3 (make it with `h3_connection`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.http = _H3Connection(self._quic)
        self._streams: dict[int, _Stream] = {}
        #: Set when the connection ended (the reason as aioquic reports it).
        self.terminated: ConnectionTerminated | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            self.terminated = event
            for stream in self._streams.values():
                _fail(stream, f'connection ended: {event.reason_phrase or event.error_code}')
        elif isinstance(event, StreamReset) and event.stream_id in self._streams:
            _fail(self._streams[event.stream_id], f'stream reset with code {event.error_code:#x}')
        for h3_event in self.http.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        stream = self._streams.get(getattr(event, 'stream_id', -1))
        if stream is None:
            return
        if isinstance(event, HeadersReceived):
            stream.headers.extend(event.headers)
        elif isinstance(event, DataReceived):
            stream.body.extend(event.data)
            if stream.chunks is not None and event.data:
                stream.chunks.put_nowait(event.data)
        if getattr(event, 'stream_ended', False) and not stream.done.done():
            stream.done.set_result(None)
            if stream.chunks is not None:
                stream.chunks.put_nowait(None)

    def open(self, method: str, path: str, headers: Iterable[tuple[str, str]] = (), *, end: bool = True) -> int:
        """Sends a request head; returns its stream id (`end=False` leaves the body to `send`)."""
        stream_id = self._quic.get_next_available_stream_id()
        head = [
            (b':method', method.encode()),
            (b':scheme', b'https'),
            (b':authority', b'localhost'),
            (b':path', path.encode()),
            *((name.encode(), value.encode()) for name, value in headers),
        ]
        self._streams[stream_id] = _Stream(asyncio.get_running_loop().create_future())
        if method == 'HEAD':
            self.http.head_streams.add(stream_id)
        self.http.send_headers(stream_id, head, end_stream=end)
        self.transmit()
        return stream_id

    def send(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        self.http.send_data(stream_id, data, end_stream=end)
        self.transmit()

    def reset(self, stream_id: int) -> None:
        """Gives the request up: resets the stream and stops reading the response."""
        self._quic.reset_stream(stream_id, REQUEST_CANCELLED)
        with contextlib.suppress(Exception):
            self._quic.stop_stream(stream_id, REQUEST_CANCELLED)
        self.transmit()

    def cancel(self, stream_id: int) -> None:
        """Stops reading the response only (STOP_SENDING), as a client does for a request it sent whole."""
        self._quic.stop_stream(stream_id, REQUEST_CANCELLED)
        self.transmit()

    async def response(self, stream_id: int) -> Response:
        stream = self._streams[stream_id]
        await stream.done
        return _response(stream)

    async def chunks(self, stream_id: int) -> AsyncIterator[bytes]:
        """The response body as it arrives (call before the response is complete)."""
        stream = self._streams[stream_id]
        stream.chunks = asyncio.Queue()
        if stream.body:
            stream.chunks.put_nowait(bytes(stream.body))
        while (chunk := await stream.chunks.get()) is not None:
            yield chunk
        await stream.done

    async def request(
        self, method: str, path: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b''
    ) -> Response:
        stream_id = self.open(method, path, headers, end=not body)
        if body:
            self.send(stream_id, body, end=True)
        return await self.response(stream_id)


def _fail(stream: _Stream, reason: str) -> None:
    if not stream.done.done():
        stream.done.set_exception(StreamFailed(reason))
        if stream.chunks is not None:
            stream.chunks.put_nowait(None)


def _response(stream: _Stream) -> Response:
    headers = [(name.decode(), value.decode()) for name, value in stream.headers]
    status = next(int(value) for name, value in headers if name == ':status')
    return Response(status, [(n, v) for n, v in headers if not n.startswith(':')], bytes(stream.body))


def configuration(
    ca_file: Path | str, *, idle_timeout: float = 30.0, client_cert: tuple[Path, Path] | None = None
) -> QuicConfiguration:
    """A client configuration trusting the CA in `ca_file`; `client_cert` is (certificate, key) files."""
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, idle_timeout=idle_timeout)
    config.server_name = 'localhost'
    config.load_verify_locations(cafile=str(ca_file))
    if client_cert is not None:
        config.load_cert_chain(client_cert[0], client_cert[1])
    return config


@contextlib.asynccontextmanager
async def h3_connection(port: int, ca_file: Path | str, host: str = '127.0.0.1', **options) -> AsyncIterator[H3Client]:
    """An HTTP/3 connection to `host:port` that trusts the CA in `ca_file`."""
    async with connect(host, port, configuration=configuration(ca_file, **options), create_protocol=H3Client) as client:
        yield client  # type: ignore[misc]


def h3_request(
    port: int,
    ca_file: Path | str,
    method: str = 'GET',
    path: str = '/',
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b'',
    timeout: float = 10.0,
) -> Response:
    """One request on a new connection, from synchronous test code."""

    async def run() -> Response:
        async with h3_connection(port, ca_file) as client:
            return await client.request(method, path, headers, body)

    return asyncio.run(asyncio.wait_for(run(), timeout))
