"""Typing protocols of the RSGI objects, for annotating applications and checking them with mypy or pyright.

The server hands an application native objects (`granian._core.RSGI*`); these protocols describe what
RSGI 1.6 promises of them, with the parameters and defaults granian's server accepts. They are
`runtime_checkable`, so `isinstance(protocol, HTTPProtocol)` holds for the objects the server passes
(it checks that the members exist, not their signatures).
"""

from __future__ import annotations

from asyncio import AbstractEventLoop
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from enum import IntEnum
from os import PathLike
from typing import Protocol, TypeVar, overload, runtime_checkable

_T = TypeVar('_T')


class WebsocketMessageType(IntEnum):
    """Kind of a message received on an RSGI WebSocket (`WebsocketMessage.kind`).

    Spec: spec/rsgi.md#ws-receive
    """

    close = 0
    bytes = 1
    string = 2


@runtime_checkable
class Headers(Protocol):
    """The request headers: a read-only, multi-valued mapping of lower-case names to string values.

    Spec: spec/rsgi.md#4-headers
    """

    def keys(self) -> list[str]:
        """The header names."""
        ...

    def values(self) -> list[str]:
        """Every value, in the order received."""
        ...

    def items(self) -> list[tuple[str, str]]:
        """Every `(name, value)` pair, a field sent twice giving two pairs, in the order received."""
        ...

    @overload
    def get(self, key: str, default: None = None) -> str | None: ...
    @overload
    def get(self, key: str, default: _T) -> str | _T: ...
    def get(self, key: str, default: object = None) -> object:
        """The first value of `key`, or `default` when there is none."""
        ...

    def get_all(self, key: str) -> list[str]:
        """Every value of `key` in the order received; `[]` when there is none."""
        ...

    def __contains__(self, key: str, /) -> bool: ...
    def __getitem__(self, key: str, /) -> str:
        """The first value of `key`; `KeyError` when there is none."""
        ...

    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...


@runtime_checkable
class Scope(Protocol):
    """The RSGI scope: read-only facts about one HTTP request or WebSocket connection.

    Spec: spec/rsgi.md#3-the-scope
    """

    @property
    def proto(self) -> str:
        """`'http'` for an HTTP request, `'ws'` for a WebSocket connection."""
        ...

    @property
    def rsgi_version(self) -> str:
        """The RSGI version the server implements, as `'MAJOR.MINOR'`."""
        ...

    @property
    def http_version(self) -> str:
        """`'1'`, `'1.1'` or `'2'`."""
        ...

    @property
    def server(self) -> str:
        """The local address, `'host:port'` (the socket path on a Unix socket)."""
        ...

    @property
    def client(self) -> str:
        """The peer address, `'host:port'`."""
        ...

    @property
    def scheme(self) -> str:
        """`'https'` over TLS, `'http'` otherwise (WebSockets included)."""
        ...

    @property
    def method(self) -> str:
        """The request method as sent (`'GET'` for a WebSocket)."""
        ...

    @property
    def path(self) -> str:
        """The percent-decoded path, without the query string."""
        ...

    @property
    def query_string(self) -> str:
        """The raw query, without `?`; `''` when there is none."""
        ...

    @property
    def headers(self) -> Headers:
        """The request header fields."""
        ...

    @property
    def authority(self) -> str | None:
        """The authority of the request target (HTTP/2 `:authority`, absolute-form targets), else `None`."""
        ...


@runtime_checkable
class HTTPStreamTransport(Protocol):
    """The transport `HTTPProtocol.response_stream` returns: each send appends to the response body.

    Spec: spec/rsgi.md#http-response-stream
    """

    def send_bytes(self, data: bytes) -> Awaitable[None]:
        """Append `data`; raises `ProtocolClosed` once the client has gone."""
        ...

    def send_str(self, data: str) -> Awaitable[None]:
        """Append `data` encoded as UTF-8; raises `ProtocolClosed` once the client has gone."""
        ...


@runtime_checkable
class HTTPProtocol(Protocol):
    """The protocol object of an HTTP request (`scope.proto == 'http'`): read the body, answer once.

    Spec: spec/rsgi.md#5-http
    """

    def __call__(self) -> Awaitable[bytes]:
        """`await protocol()`: the whole request body (`b''` when there is none); it can be read once."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]:
        """`async for chunk in protocol`: the request body as it arrives."""
        ...

    def client_disconnect(self) -> Awaitable[None]:
        """Completes once the client has gone."""
        ...

    def response_empty(self, status: int = 200, headers: Iterable[tuple[str, str]] | None = None) -> None:
        """Answer without a body."""
        ...

    def response_str(
        self, status: int = 200, headers: Iterable[tuple[str, str]] | None = None, body: str | None = None
    ) -> None:
        """Answer with `body` encoded as UTF-8 (the server adds no `content-type`)."""
        ...

    def response_bytes(
        self, status: int = 200, headers: Iterable[tuple[str, str]] | None = None, body: bytes | None = None
    ) -> None:
        """Answer with `body`."""
        ...

    def response_file(self, status: int, headers: Iterable[tuple[str, str]] | None, file: str | PathLike[str]) -> None:
        """Answer with the content of the file at `file` (granian answers 404 when it cannot be opened)."""
        ...

    def response_file_range(
        self, status: int, headers: Iterable[tuple[str, str]] | None, file: str | PathLike[str], start: int, end: int
    ) -> None:
        """Answer with bytes `start` (inclusive) to `end` (exclusive) of a file; `ValueError` if `start >= end`."""
        ...

    def response_stream(
        self, status: int = 200, headers: Iterable[tuple[str, str]] | None = None
    ) -> HTTPStreamTransport:
        """Send the status and headers; the body is what the returned transport sends until the app returns."""
        ...


@runtime_checkable
class WebsocketMessage(Protocol):
    """A message received on an RSGI WebSocket.

    `kind` is a `WebsocketMessageType` value (the server gives a plain `int`): `data` is `bytes` for
    `bytes`, `str` for `string` and `None` for `close`.

    Spec: spec/rsgi.md#ws-receive
    """

    @property
    def kind(self) -> int: ...
    @property
    def data(self) -> bytes | str | None: ...


@runtime_checkable
class WebsocketTransport(Protocol):
    """The transport of an accepted RSGI WebSocket.

    Spec: spec/rsgi.md#6-websockets
    """

    def receive(self) -> Awaitable[WebsocketMessage]:
        """The next message; one of kind `close` once the client closed or left."""
        ...

    def send_bytes(self, data: bytes) -> Awaitable[None]:
        """Send a binary message."""
        ...

    def send_str(self, data: str) -> Awaitable[None]:
        """Send a text message."""
        ...


@runtime_checkable
class WebsocketProtocol(Protocol):
    """The protocol object of a WebSocket request (`scope.proto == 'ws'`): accept or refuse it.

    Spec: spec/rsgi.md#6-websockets
    """

    def accept(self) -> Awaitable[WebsocketTransport]:
        """Complete the handshake; resolves with the transport."""
        ...

    def close(self, status: int | None = None) -> None:
        """Before `accept`: refuse with HTTP `status` (default 403). After: close with code `status` (default 1000)."""
        ...


@runtime_checkable
class App(Protocol):
    """An RSGI application in its plain form, usually `async def app(scope, protocol): ...`.

    Spec: spec/rsgi.md#app-callable
    """

    def __call__(self, scope: Scope, protocol: HTTPProtocol | WebsocketProtocol, /) -> Awaitable[None]: ...


@runtime_checkable
class AppObject(Protocol):
    """An application object the server calls through `__rsgi__` (it may serve another interface by `__call__`).

    Spec: spec/rsgi.md#app-rsgi-method
    """

    def __rsgi__(self, scope: Scope, protocol: HTTPProtocol | WebsocketProtocol, /) -> Awaitable[None]: ...


@runtime_checkable
class LifecycleAppObject(AppObject, Protocol):
    """An application object with the per-worker hooks, each called with the worker's event loop not running.

    Spec: spec/rsgi.md#app-init and spec/rsgi.md#app-del
    """

    def __rsgi_init__(self, loop: AbstractEventLoop, /) -> None:
        """Called once per worker before its first request (it may schedule work on `loop`)."""
        ...

    def __rsgi_del__(self, loop: AbstractEventLoop, /) -> None:
        """Called once per worker when it stops gracefully (it may `loop.run_until_complete` clean-up)."""
        ...
