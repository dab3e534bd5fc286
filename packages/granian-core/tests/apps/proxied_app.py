"""One app per interface behind granian.utils.proxies (trusting 127.0.0.1; the `unix_` ones trust
peers on a Unix socket): each answers the client host and the scheme it sees, as a JSON list."""

from __future__ import annotations

import json

from granian.utils.proxies import (
    wrap_asgi_with_proxy_headers,
    wrap_rsgi_with_proxy_headers,
    wrap_wsgi_with_proxy_headers,
)


def _body(host: str, scheme: str) -> bytes:
    return json.dumps([host, scheme]).encode()


async def _asgi(scope, receive, send):
    if scope['type'] == 'lifespan':
        while (await receive())['type'] != 'lifespan.shutdown':
            await send({'type': 'lifespan.startup.complete'})
        await send({'type': 'lifespan.shutdown.complete'})
        return
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'application/json')]})
    await send({'type': 'http.response.body', 'body': _body((scope['client'] or ('',))[0], scope['scheme'])})


def _wsgi(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [_body(environ['REMOTE_ADDR'], environ['wsgi.url_scheme'])]


async def _rsgi(scope, proto):
    host = scope.client.rsplit(':', 1)[0].strip('[]')
    proto.response_bytes(200, [('content-type', 'application/json')], _body(host, scope.scheme))


asgi = wrap_asgi_with_proxy_headers(_asgi)
wsgi = wrap_wsgi_with_proxy_headers(_wsgi)
rsgi = wrap_rsgi_with_proxy_headers(_rsgi)
unix_asgi = wrap_asgi_with_proxy_headers(_asgi, trusted_hosts='unix')
unix_wsgi = wrap_wsgi_with_proxy_headers(_wsgi, trusted_hosts='unix')
unix_rsgi = wrap_rsgi_with_proxy_headers(_rsgi, trusted_hosts=['unix'])
