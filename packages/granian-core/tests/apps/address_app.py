"""The addresses each interface reports for the connection, as JSON: `rsgi`, `asgi` and `wsgi` apps.

`/pid` answers the worker's process id (for the tests that restart or balance workers).
"""

from __future__ import annotations

import json
import os


async def rsgi(scope, proto):
    if scope.path == '/pid':
        proto.response_str(200, [], str(os.getpid()))
        return
    proto.response_str(
        200,
        [('content-type', 'application/json')],
        json.dumps({'server': scope.server, 'client': scope.client, 'scheme': scope.scheme}),
    )


async def asgi(scope, receive, send):
    if scope['type'] != 'http':
        return
    body = json.dumps({'server': scope['server'], 'client': scope['client'], 'scheme': scope['scheme']}).encode()
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'application/json')]})
    await send({'type': 'http.response.body', 'body': body})


def wsgi(environ, start_response):
    keys = ('SERVER_NAME', 'SERVER_PORT', 'REMOTE_ADDR', 'REMOTE_PORT', 'wsgi.url_scheme')
    body = json.dumps({key: environ[key] for key in keys}).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
