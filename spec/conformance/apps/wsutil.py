"""What the WebSocket routes share: describing a received message, bounded receives, sends that may fail.

Every wait is bounded: a route never waits for the client longer than WS_WAIT unless told otherwise.
"""

from __future__ import annotations

import asyncio

from routing import outcome_of

WS_WAIT = 10.0  # seconds a route waits for the client's next message


def describe_message(message) -> dict:
    """A received message as JSON: its kind (as an int when it is one), the type of its data and the data."""
    kind = message.kind
    described: dict = {'kind': int(kind) if isinstance(kind, int) else repr(kind), 'kind_is_int': isinstance(kind, int)}
    if isinstance(kind, int) and kind != 0:
        data = message.data
        described['type'] = type(data).__name__
        described['data'] = data.hex() if isinstance(data, bytes) else data
    return described


def deadline_in(seconds: float) -> float:
    """The event loop's time `seconds` from now."""
    return asyncio.get_running_loop().time() + seconds


async def receive_by(transport, deadline: float):
    """`transport.receive()`, or None when the loop time `deadline` passes first; what receive() raises propagates."""
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return None
    try:
        return await asyncio.wait_for(transport.receive(), remaining)
    except asyncio.TimeoutError:
        return None


async def receive_until_close(transport, timeout: float = WS_WAIT) -> dict | None:
    """Receive (bounded) until a message of kind 0; returns it described, or None when none came in time."""
    deadline = deadline_in(timeout)
    while (message := await receive_by(transport, deadline)) is not None:
        if message.kind == 0:
            return describe_message(message)
    return None


async def ready_until_close(protocol, timeout: float = WS_WAIT) -> tuple[object, dict | None]:
    """Accept, send 'ready', receive until the client's close (receive_until_close); the transport and the close."""
    transport = await protocol.accept()
    await transport.send_str('ready')
    return transport, await receive_until_close(transport, timeout)


async def send(transport, data: str | bytes) -> None:
    """A str with send_str, bytes with send_bytes."""
    await (transport.send_str if isinstance(data, str) else transport.send_bytes)(data)


async def try_send(transport, data: str | bytes) -> dict:
    """What sending `data` did (routing.outcome_of)."""
    return await outcome_of(lambda: send(transport, data))
