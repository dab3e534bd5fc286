"""Apps that count the garbage collections of their worker's Python: `GET /gc` answers
`<collections of generation 0> <of 1> <of 2> <requests before this one>`; any other path answers
a short body. `asgi_app` for ASGI, `app` for RSGI."""

import gc

collections = [0, 0, 0]
requests = [0]


def _count(phase, info):
    if phase == 'stop':
        collections[info['generation']] += 1


gc.callbacks.append(_count)


def _report() -> bytes:
    return f'{collections[0]} {collections[1]} {collections[2]} {requests[0]}'.encode()


async def asgi_app(scope, receive, send):
    if scope['type'] != 'http':
        return
    body = _report() if scope['path'] == '/gc' else b'ok'
    requests[0] += 1
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]})
    await send({'type': 'http.response.body', 'body': body})


async def app(scope, proto):
    body = _report() if scope.path == '/gc' else b'ok'
    requests[0] += 1
    proto.response_bytes(200, [('content-type', 'text/plain')], body)
