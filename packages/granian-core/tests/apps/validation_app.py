"""Counts the requests that reach it and answers `path=<path> body=<bytes read>`; `/count` answers
how many requests reached it before (itself not counted). For the request validation tests."""

from __future__ import annotations

seen = 0


async def rsgi(scope, proto):
    global seen
    if scope.path == '/count':
        proto.response_str(200, [], str(seen))
        return
    seen += 1
    body = await proto()
    proto.response_str(200, [], f'path={scope.path} body={len(body)}')
