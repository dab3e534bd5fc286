"""A raw WebSocket client for tests that need to send what a well-behaved client never would.

RFC 6455 frames are built and parsed here by hand (client frames are masked), over a plain socket
(HTTP/1.1 upgrade) or an HTTP/2 stream opened with extended CONNECT (RFC 8441) through the `h2` library.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing.Self is Python >= 3.11; annotations are not evaluated at run time
    from typing import Self

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


@dataclass
class Frame:
    """One received frame."""

    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int | None:
        """The close code of a close frame (None when it carries none)."""
        return struct.unpack('!H', self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        """The close reason of a close frame."""
        return self.payload[2:].decode('utf-8')


def encode_frame(opcode: int, payload: bytes = b'', *, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    """An RFC 6455 frame as a client sends it (masked unless `mask` is False)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + struct.pack('!H', length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack('!Q', length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code: int, reason: str = '') -> bytes:
    """The payload of a close frame."""
    return struct.pack('!H', code) + reason.encode('utf-8')


def decode_frames(buffer: bytearray) -> list[Frame]:
    """Removes every complete (unmasked, server-sent) frame from `buffer` and returns them."""
    frames = []
    while len(buffer) >= 2:
        fin = bool(buffer[0] & 0x80)
        opcode = buffer[0] & 0x0F
        length = buffer[1] & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                break
            length = struct.unpack('!H', buffer[2:4])[0]
            offset = 4
        elif length == 127:
            if len(buffer) < 10:
                break
            length = struct.unpack('!Q', buffer[2:10])[0]
            offset = 10
        if len(buffer) < offset + length:
            break
        frames.append(Frame(opcode, bytes(buffer[offset : offset + length]), fin))
        del buffer[: offset + length]
    return frames


class RawWebSocket:
    """A WebSocket over a plain TCP socket, after a hand-written HTTP/1.1 upgrade."""

    def __init__(self, host: str, port: int, path: str = '/', headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f'GET {path} HTTP/1.1',
            f'Host: {host}:{port}',
            'Upgrade: websocket',
            'Connection: Upgrade',
            f'Sec-WebSocket-Key: {key}',
            'Sec-WebSocket-Version: 13',
            *(f'{name}: {value}' for name, value in (headers or {}).items()),
        ]
        self.sock.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
        self.buffer = bytearray()
        while b'\r\n\r\n' not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f'closed during the handshake: {bytes(self.buffer)!r}')
            self.buffer += chunk
        head, _, rest = bytes(self.buffer).partition(b'\r\n\r\n')
        self.response_head = head.decode('latin-1')
        self.status = int(self.response_head.split(' ', 2)[1])
        self.buffer = bytearray(rest)
        self.pending: list[Frame] = []

    def send(self, opcode: int, payload: bytes = b'', **kwargs: object) -> None:
        """Sends one frame."""
        self.sock.sendall(encode_frame(opcode, payload, **kwargs))  # type: ignore[arg-type]

    def send_raw(self, data: bytes) -> None:
        """Sends bytes as they are."""
        self.sock.sendall(data)

    def receive(self, timeout: float = 10.0) -> Frame | None:
        """The next frame, or None when the server closed the TCP connection."""
        deadline = time.monotonic() + timeout
        while True:
            self.pending += decode_frames(self.buffer)
            if self.pending:
                return self.pending.pop(0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError('no frame from the server')
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def close(self) -> None:
        """Closes the TCP connection."""
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Http2WebSocket:
    """A WebSocket over an HTTP/2 stream (RFC 8441) on a cleartext h2 connection."""

    def __init__(self, host: str, port: int, path: str = '/', headers: dict[str, str] | None = None) -> None:
        import h2.config
        import h2.connection
        import h2.events
        import h2.settings

        self._events = h2.events
        self.sock = socket.create_connection((host, port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding='utf-8'))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.server_allows_connect = False
        self.settings_received = False
        self.status: int | None = None
        #: True when the stream ended with RST_STREAM rather than END_STREAM.
        self.reset = False
        self.stream_id = 0
        self.buffer = bytearray()
        self.pending: list[Frame] = []
        self.ended = False
        # Wait for the server's SETTINGS (SETTINGS_ENABLE_CONNECT_PROTOCOL).
        self._pump(lambda: self.settings_received)
        self.server_allows_connect = bool(
            self.conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0)
        )
        self.stream_id = self.conn.get_next_available_stream_id()
        request_headers = [
            (':method', 'CONNECT'),
            (':protocol', 'websocket'),
            (':scheme', 'http'),
            (':path', path),
            (':authority', f'{host}:{port}'),
            ('sec-websocket-version', '13'),
            *((name.lower(), value) for name, value in (headers or {}).items()),
        ]
        self.conn.send_headers(self.stream_id, request_headers)
        self.sock.sendall(self.conn.data_to_send())
        self._pump(lambda: self.status is not None or self.ended)

    def _pump(self, done, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError('the HTTP/2 server did not answer')
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                self.ended = True
                return
            for event in self.conn.receive_data(data):
                if isinstance(event, self._events.ResponseReceived) and event.stream_id == self.stream_id:
                    self.status = int(dict(event.headers)[':status'])
                elif isinstance(event, self._events.DataReceived) and event.stream_id == self.stream_id:
                    self.buffer += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, self._events.RemoteSettingsChanged):
                    self.settings_received = True
                elif (
                    isinstance(event, (self._events.StreamEnded, self._events.StreamReset))
                    and event.stream_id == self.stream_id
                ):
                    self.ended = True
                    self.reset = isinstance(event, self._events.StreamReset)
            self.sock.sendall(self.conn.data_to_send())

    def send(self, opcode: int, payload: bytes = b'') -> None:
        """Sends one WebSocket frame as DATA on the stream."""
        self.conn.send_data(self.stream_id, encode_frame(opcode, payload))
        self.sock.sendall(self.conn.data_to_send())

    def receive(self, timeout: float = 10.0) -> Frame | None:
        """The next WebSocket frame, or None when the stream ended."""

        def ready() -> bool:
            self.pending += decode_frames(self.buffer)
            return bool(self.pending) or self.ended

        self._pump(ready, timeout)
        return self.pending.pop(0) if self.pending else None

    def close(self) -> None:
        """Closes the TCP connection."""
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
