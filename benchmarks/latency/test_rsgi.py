"""Per-request latency of RSGI over one keep-alive connection: ours vs granian 2.8.1."""

INTERFACE = 'rsgi'


def test_latency(measure, server, case):
    measure(server, case)
