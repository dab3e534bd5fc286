"""Type descriptions of the RSGI objects an application receives, for annotations and type checkers."""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from granian._core import RSGIHeaders


class WebsocketMessageType(IntEnum):
    """Kind of a message received on an RSGI WebSocket."""

    close = 0
    bytes = 1
    string = 2


class Scope(Protocol):
    """The RSGI scope: read-only facts about one request."""

    proto: str
    rsgi_version: str
    http_version: str
    server: str
    client: str
    scheme: str
    method: str
    path: str
    query_string: str
    headers: RSGIHeaders
    authority: str | None


class WebsocketMessage(Protocol):
    """A message received on an RSGI WebSocket (`data` is absent on close)."""

    kind: WebsocketMessageType
    data: bytes | str


class WebsocketTransport(Protocol):
    """The transport of an accepted RSGI WebSocket."""

    async def receive(self) -> WebsocketMessage: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def send_str(self, data: str) -> None: ...
