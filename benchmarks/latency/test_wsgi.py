"""Per-request latency of WSGI over one keep-alive connection: ours vs granian 2.8.1."""

INTERFACE = 'wsgi'


def test_latency(measure, server, case):
    measure(server, case)
