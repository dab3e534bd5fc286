"""FastAPI and Starlette WebSocket routes served by granian in the ASGI tests."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
DISCONNECTS: list[int] = []


@app.websocket('/ws/{room}')
async def room(websocket: WebSocket, room: str):
    await websocket.accept(subprotocol='chat' if 'chat' in websocket.scope['subprotocols'] else None)
    try:
        while True:
            data = await websocket.receive_json()
            await websocket.send_json({'room': room, 'echo': data})
    except WebSocketDisconnect as exc:
        DISCONNECTS.append(exc.code)


@app.websocket('/denied')
async def denied(websocket: WebSocket):
    await websocket.close(code=1008)


@app.get('/disconnects')
async def disconnects():
    return DISCONNECTS
