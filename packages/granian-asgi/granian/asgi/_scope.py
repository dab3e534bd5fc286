"""Constants of the ASGI scopes built in Python (the HTTP scope is built by the core)."""

ASGI_INFO = {'version': '3.0', 'spec_version': '2.4'}
