"""An asyncio program that embeds granian: `python embedded_host.py INTERFACE PORT`.

Besides the server it runs a ticker task on the same loop. The app answers JSON about where it runs;
`/reload` and `/stop` call the embedded server's `reload()` and `stop()`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from granian.server.embed import Server

state = {'ticks': 0, 'starts': 0}
server: Server | None = None
main_loop: asyncio.AbstractEventLoop | None = None


def report(server_address) -> bytes:
    return json.dumps(
        {
            'ticks': state['ticks'],
            'starts': state['starts'],
            'same_loop': asyncio.get_running_loop() is main_loop,
            'pid': os.getpid(),
            'server': server_address,
        }
    ).encode()


def control(path: str) -> None:
    assert server is not None
    if path == '/reload':
        server.reload()
    elif path == '/stop':
        server.stop()


async def asgi_app(scope, receive, send):
    if scope['type'] == 'lifespan':
        while True:
            message = await receive()
            if message['type'] == 'lifespan.startup':
                state['starts'] += 1
                print(f'lifespan startup {state["starts"]}', flush=True)
                await send({'type': 'lifespan.startup.complete'})
            else:
                print('lifespan shutdown', flush=True)
                await send({'type': 'lifespan.shutdown.complete'})
                return
    control(scope['path'])
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'application/json')]})
    await send({'type': 'http.response.body', 'body': report(scope['server'])})


async def rsgi_app(scope, proto):
    control(scope.path)
    proto.response_bytes(200, [('content-type', 'application/json')], report(scope.server))


async def ticker() -> None:
    while True:
        state['ticks'] += 1
        await asyncio.sleep(0.01)


async def main() -> None:
    global server, main_loop
    main_loop = asyncio.get_running_loop()
    interface, port = sys.argv[1], int(sys.argv[2])
    app = asgi_app if interface == 'asgi' else rsgi_app
    server = Server(app, port=port, interface=interface, workers_drain_timeout=10)
    ticking = asyncio.create_task(ticker())
    await server.serve()
    ticking.cancel()
    print('serve returned', flush=True)


if __name__ == '__main__':
    asyncio.run(main())
