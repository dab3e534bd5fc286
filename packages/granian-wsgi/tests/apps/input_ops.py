"""Read a `wsgi.input` stream with a list of operations, so a test can replay the same list on `io.BytesIO`.

Shared by the test app (which applies it to `wsgi.input`) and the tests (which compute the expected pieces).
An operation is `name` or `name=N`:

- `read`, `read=N`: one `read()` / `read(N)` call;
- `readall=N`: `read(N)` until it returns b'';
- `readline`, `readline=N`: one `readline()` / `readline(N)` call;
- `readlineall`, `readlineall=N`: `readline()` / `readline(N)` until it returns b'';
- `readlines`, `readlines=N`: one `readlines()` / `readlines(N)` call;
- `iter`: every line of `for line in stream`.
"""

from __future__ import annotations

# No test body needs more calls than this; a stream that never reports the end must not loop forever.
MAX_CALLS = 1_000_000


class EndlessStream(Exception):
    """The stream kept returning data past MAX_CALLS calls."""


def _until_empty(call) -> list[bytes]:
    pieces = []
    for _ in range(MAX_CALLS):
        piece = call()
        if not piece:
            return pieces
        pieces.append(piece)
    raise EndlessStream(f'no end of input after {MAX_CALLS} calls')


def apply_op(stream, op: str) -> list[bytes]:
    """Apply one operation to `stream`; return the pieces it read, in order."""
    name, _, arg = op.partition('=')
    size = int(arg) if arg else None
    sized = () if size is None else (size,)
    if name == 'read':
        return [stream.read(*sized)]
    if name == 'readall':
        return _until_empty(lambda: stream.read(size))
    if name == 'readline':
        return [stream.readline(*sized)]
    if name == 'readlineall':
        return _until_empty(lambda: stream.readline(*sized))
    if name == 'readlines':
        return list(stream.readlines(*sized))
    if name == 'iter':
        return list(stream)
    raise ValueError(f'unknown input operation {op!r}')


def apply_ops(stream, spec: str) -> list[list[bytes]]:
    """Apply the comma-separated operations of `spec` in order; return the pieces of each."""
    return [apply_op(stream, op) for op in spec.split(',') if op]
