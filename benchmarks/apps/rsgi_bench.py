"""RSGI benchmark app: `GET /` hello world, `POST /echo` streams the request body back."""

HEADERS = [('content-type', 'text/plain')]


async def app(scope, proto):
    if scope.path == '/echo':
        transport = proto.response_stream(200, [('content-type', 'application/octet-stream')])
        async for chunk in proto:
            await transport.send_bytes(chunk)
        return
    proto.response_str(200, HEADERS, 'Hello, world!')
