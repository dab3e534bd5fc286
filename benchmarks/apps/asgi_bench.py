"""ASGI benchmark app: `GET /` hello world, `POST /echo` streams the request body back."""

START = {'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]}
ECHO_START = {'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'application/octet-stream')]}
HELLO = {'type': 'http.response.body', 'body': b'Hello, world!'}


async def app(scope, receive, send):
    if scope['type'] != 'http':
        return
    if scope['path'] == '/echo':
        await send(ECHO_START)
        more = True
        while more:
            message = await receive()
            more = message.get('more_body', False)
            await send({'type': 'http.response.body', 'body': message.get('body', b''), 'more_body': more})
        return
    await send(START)
    await send(HELLO)
