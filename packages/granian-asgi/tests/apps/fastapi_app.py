"""A FastAPI application served by granian in the ASGI tests: path params, a pydantic body, streaming, lifespan state."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

STREAM_CHUNKS = 5


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict]:
    """Hand a greeting to every request through the lifespan state."""
    yield {'greeting': 'hi'}


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    """The body of POST /items/{item_id}."""

    name: str
    price: float
    tags: list[str] = []


@app.post('/items/{item_id}')
async def create_item(item_id: int, item: Item) -> dict:
    """Echo the item with its id."""
    return {'item_id': item_id, 'name': item.name, 'price': item.price, 'tags': item.tags}


@app.get('/greeting')
async def greeting(request: Request) -> dict:
    """Return the greeting the lifespan put into the state."""
    return {'greeting': request.state.greeting}


@app.get('/stream')
async def stream() -> StreamingResponse:
    """Stream a few lines from an async generator."""

    async def lines() -> AsyncIterator[bytes]:
        for index in range(STREAM_CHUNKS):
            yield f'line {index}\n'.encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(lines(), media_type='text/plain')
