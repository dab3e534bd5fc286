"""One misbehaving app per interface (`rsgi_app`, `asgi_app`, `wsgi_app`), with the same paths in each:

- `/ok` answers the worker's pid;
- `/segv` crashes the worker with a segmentation fault (reads address 0);
- `/exit` ends the worker with `os._exit(3)`;
- `/fork-exit` forks a child that keeps every descriptor of the worker for 15 s (as a process pool's
  forked workers do), then ends the worker with `os._exit(3)`;
- `/hang?PATH` writes the worker's pid to the file PATH (if given), then never answers (async: awaits an
  event nobody sets; WSGI: sleeps an hour);
- `/block?PATH` writes the worker's pid to the file PATH (if given), blocks the worker's thread for 3 s
  (`time.sleep` on the event loop of the async apps), then answers the pid.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from urllib.parse import unquote

BLOCK_SECONDS = 3.0


def _fault(path: str, query: str) -> None:
    """The faults every interface shares: those that never come back, the markers, and the block."""
    if path == '/segv':
        ctypes.string_at(0)
    elif path == '/exit':
        os._exit(3)
    elif path == '/fork-exit':
        if os.fork() == 0:
            time.sleep(15)
            os._exit(0)
        os._exit(3)
    elif path in ('/hang', '/block') and query:
        marker = unquote(query)
        with open(marker + '.part', 'w') as file:
            file.write(str(os.getpid()))
        os.replace(marker + '.part', marker)
    if path == '/block':
        time.sleep(BLOCK_SECONDS)


async def rsgi_app(scope, proto):
    _fault(scope.path, scope.query_string)
    if scope.path == '/hang':
        await asyncio.Event().wait()
    proto.response_str(200, [('content-type', 'text/plain')], str(os.getpid()))


async def asgi_app(scope, receive, send):
    if scope['type'] == 'lifespan':
        while True:
            message = await receive()
            if message['type'] == 'lifespan.startup':
                await send({'type': 'lifespan.startup.complete'})
            else:
                await send({'type': 'lifespan.shutdown.complete'})
                return
    _fault(scope['path'], scope['query_string'].decode())
    if scope['path'] == '/hang':
        await asyncio.Event().wait()
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]})
    await send({'type': 'http.response.body', 'body': str(os.getpid()).encode()})


def wsgi_app(environ, start_response):
    _fault(environ['PATH_INFO'], environ.get('QUERY_STRING', ''))
    if environ['PATH_INFO'] == '/hang':
        time.sleep(3600)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(os.getpid()).encode()]
