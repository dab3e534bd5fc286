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
