"""`wsgi.file_wrapper` (PEP 3333)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class FileWrapper:
    """Wraps a file-like object as a response iterable.

    When the object is a real file (it has a working `fileno()`), the server sends it straight from
    the file descriptor, from its current position, without Python reading it.
    """

    def __init__(self, filelike: Any, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        while True:
            data = self.filelike.read(self.blksize)
            if not data:
                return
            yield data
