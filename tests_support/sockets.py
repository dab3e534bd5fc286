"""Reading a raw socket in tests: what arrives, while the test wants it, and whether the peer closed."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator


def received(sock: socket.socket, keep_going: Callable[[], bool], poll: float = 0.1) -> Iterator[bytes]:
    """Yields each chunk `sock` receives while `keep_going()` is true; a final b'' when the peer closed
    the connection or reset it (then the iteration ends)."""
    sock.settimeout(poll)
    while keep_going():
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            chunk = b''
        yield chunk
        if not chunk:
            return


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Everything `sock` receives, and whether the peer closed (or reset) the connection before
    `timeout` seconds passed without data."""
    sock.settimeout(timeout)
    data = b''
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
