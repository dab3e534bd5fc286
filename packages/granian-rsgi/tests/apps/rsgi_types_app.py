"""Reports whether the objects granian passes an app are instances of the `granian.rsgi` protocols.

Served as `rsgi_types_app:app`: an HTTP request gets a JSON object of checks in a streamed body (so the
stream transport is checked too); a WebSocket gets it as a text message after the client's first message.
"""

from __future__ import annotations

import json

from granian.rsgi import (
    Headers,
    HTTPProtocol,
    HTTPStreamTransport,
    Scope,
    WebsocketMessage,
    WebsocketProtocol,
    WebsocketTransport,
)


def instance(value: object, cls: type) -> bool:
    """`isinstance`, on values whose static type already claims the answer."""
    return isinstance(value, cls)


async def app(scope: Scope, protocol: HTTPProtocol | WebsocketProtocol) -> None:
    found = {
        'Scope': instance(scope, Scope),
        'Headers': instance(scope.headers, Headers),
        'HTTPProtocol': instance(protocol, HTTPProtocol),
        'WebsocketProtocol': instance(protocol, WebsocketProtocol),
    }
    if isinstance(protocol, HTTPProtocol):
        transport = protocol.response_stream(200, [('content-type', 'application/json')])
        found['HTTPStreamTransport'] = instance(transport, HTTPStreamTransport)
        await transport.send_str(json.dumps(found))
    else:
        websocket = await protocol.accept()
        found['WebsocketTransport'] = instance(websocket, WebsocketTransport)
        message = await websocket.receive()
        found['WebsocketMessage'] = instance(message, WebsocketMessage)
        await websocket.send_str(json.dumps(found))
