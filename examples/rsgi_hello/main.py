"""A minimal RSGI application: answers every HTTP request with a greeting."""


async def app(scope, protocol):
    """Reply 'Hello, world!' to HTTP requests and refuse WebSocket connections."""
    if scope.proto == 'ws':
        protocol.close(403)
        return
    protocol.response_str(200, [('content-type', 'text/plain; charset=utf-8')], 'Hello, world!')
