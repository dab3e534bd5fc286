"""An RSGI app that keeps memory: `/grow?N` allocates N MiB and holds it; any other path answers the pid."""

from __future__ import annotations

import os

_held: list[bytearray] = []


async def app(scope, proto):
    if scope.path == '/grow':
        # Filled, not just reserved, so the pages count in the resident set.
        _held.append(bytearray(b'x' * (int(scope.query_string) * 1024 * 1024)))
    proto.response_str(200, [], str(os.getpid()))
