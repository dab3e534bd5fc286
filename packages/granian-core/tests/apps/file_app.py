"""Apps that send the file named by `?path=` the way each interface offers: RSGI `response_file`,
ASGI `http.response.pathsend`, and the WSGI `wsgi.file_wrapper` over an open file. `/pid` answers the
worker's process id."""

from __future__ import annotations

import os
from urllib.parse import parse_qs

HEADERS = [('content-type', 'application/octet-stream')]


def _path(query_string: str) -> str:
    return parse_qs(query_string)['path'][0]


async def rsgi(scope, proto):
    if scope.path == '/pid':
        proto.response_str(200, [], str(os.getpid()))
        return
    proto.response_file(200, HEADERS, _path(scope.query_string))


async def asgi(scope, receive, send):
    if scope['type'] != 'http':
        return
    if scope['path'] == '/pid':
        await send({'type': 'http.response.start', 'status': 200, 'headers': []})
        await send({'type': 'http.response.body', 'body': str(os.getpid()).encode()})
        return
    headers = [(name.encode(), value.encode()) for name, value in HEADERS]
    await send({'type': 'http.response.start', 'status': 200, 'headers': headers})
    await send({'type': 'http.response.pathsend', 'path': _path(scope['query_string'].decode())})


def wsgi(environ, start_response):
    if environ['PATH_INFO'] == '/pid':
        start_response('200 OK', [])
        return [str(os.getpid()).encode()]
    file = open(_path(environ['QUERY_STRING']), 'rb')  # noqa: SIM115 - closed by the server through the wrapper
    start_response('200 OK', HEADERS)
    return environ['wsgi.file_wrapper'](file)
