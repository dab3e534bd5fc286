"""A page for a real browser: it reports the HTTP version it was loaded over and echoes a message over a
`wss://` WebSocket to the same server, then posts what it saw to /result, which the test reads."""

from __future__ import annotations

from tls_app import lifespan, websocket_reply

PAGE = b"""<!doctype html>
<html><head><title>granian browser check</title></head><body><pre id="out">waiting</pre><script>
const protocol = performance.getEntriesByType('navigation')[0].nextHopProtocol;
const ws = new WebSocket(`wss://${location.host}/ws`);
const report = (text) => {
  document.getElementById('out').textContent = text;
  fetch('/result', {method: 'POST', body: text});
};
ws.onopen = () => ws.send('hello from the browser');
ws.onmessage = (event) => { report(`${protocol} ${event.data}`); ws.close(); };
ws.onerror = () => report(`${protocol} websocket-error`);
</script></body></html>
"""
RESULTS: list[bytes] = []


async def rsgi(scope, proto):
    if scope.proto == 'ws':
        transport = await proto.accept()
        message = await transport.receive()
        await transport.send_str(f'echo: {message.data}')
        await transport.receive()
        return
    if scope.path == '/result' and scope.method == 'POST':
        RESULTS.append(await proto())
        proto.response_empty(204, [])
    elif scope.path == '/result':
        proto.response_bytes(200, [('content-type', 'text/plain')], RESULTS[-1] if RESULTS else b'')
    else:
        proto.response_bytes(200, [('content-type', 'text/html')], PAGE)


async def asgi(scope, receive, send):
    if scope['type'] == 'lifespan':
        return await lifespan(receive, send)
    if scope['type'] == 'websocket':
        return await websocket_reply(receive, send, 'echo:')
    if scope['path'] == '/result' and scope['method'] == 'POST':
        body = b''
        more = True
        while more:
            message = await receive()
            body += message.get('body', b'')
            more = message.get('more_body', False)
        RESULTS.append(body)
        await send({'type': 'http.response.start', 'status': 204, 'headers': []})
        await send({'type': 'http.response.body', 'body': b''})
        return
    if scope['path'] == '/result':
        body, kind = (RESULTS[-1] if RESULTS else b''), b'text/plain'
    else:
        body, kind = PAGE, b'text/html'
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', kind)]})
    await send({'type': 'http.response.body', 'body': body})
