"""Per-request latency of ASGI over one keep-alive connection: ours vs granian 2.8.1."""

INTERFACE = 'asgi'


def test_latency(measure, server, case):
    measure(server, case)
