"""Bodies and the static file shared by the benchmark apps of every interface (and by the harness).

Every app serves the same routes:

- `GET /b/10`, `/b/1k`, `/b/10k`, `/b/100k`: a fixed body of that size (built once, at import);
- `POST /echo`: reads the whole request body, then answers it with a `content-length`;
- `POST /stream`: answers the request body chunk by chunk as it is read (a streamed response);
- `GET /file`: a 50 KiB file, through the interface's file path (RSGI `response_file`, ASGI
  `http.response.pathsend`, WSGI `wsgi.file_wrapper`) when the server offers one;
- a WebSocket on any path (RSGI and ASGI): every message is echoed back as it came (text or bytes).
"""

from __future__ import annotations

import os
from pathlib import Path

BODY_SIZES = {'10': 10, '1k': 1024, '10k': 10 * 1024, '100k': 100 * 1024}
FILE_SIZE = 50 * 1024
# results/raw/ is ignored by git; the file is regenerated whenever it is missing.
FILE_PATH = Path(__file__).resolve().parent.parent / 'results' / 'raw' / 'file-50k.bin'


def payload(size: int) -> bytes:
    """Deterministic bytes of `size` (printable, so a mismatch is readable in a failed check)."""
    pattern = b'granian-benchmark-payload-0123456789abcdefghijklmnopqrstuvwxyz\n'
    return (pattern * (size // len(pattern) + 1))[:size]


BODIES = {f'/b/{name}': payload(size) for name, size in BODY_SIZES.items()}


def ensure_file() -> Path:
    """Create the static file if it is missing (atomically: several servers may import this at once)."""
    if not FILE_PATH.exists() or FILE_PATH.stat().st_size != FILE_SIZE:
        FILE_PATH.parent.mkdir(parents=True, exist_ok=True)
        partial = FILE_PATH.with_name(f'{FILE_PATH.name}.{os.getpid()}.tmp')
        partial.write_bytes(payload(FILE_SIZE))
        partial.replace(FILE_PATH)
    return FILE_PATH
