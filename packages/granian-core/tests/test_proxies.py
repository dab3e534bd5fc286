"""granian.utils.proxies: trusted peers, X-Forwarded-* and RFC 7239 Forwarded, for ASGI, WSGI and RSGI
(called directly), and behind a real server for each interface."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from granian.utils.proxies import (
    TrustedHosts,
    forwarded_from_headers,
    wrap_asgi_with_proxy_headers,
    wrap_rsgi_with_proxy_headers,
    wrap_wsgi_with_proxy_headers,
)

APPS_DIR = Path(__file__).parent / 'apps'


def _read(headers: dict[str, list[str]], trusted: str = '127.0.0.1, 10.0.0.0/8'):
    return forwarded_from_headers(lambda name: headers.get(name, []), TrustedHosts(trusted))


def test_trusted_hosts_take_addresses_networks_literals_and_everyone():
    trusted = TrustedHosts('127.0.0.1, 10.0.0.0/8, ::1, unix-socket')
    assert '127.0.0.1' in trusted and '10.20.30.40' in trusted and '::1' in trusted and 'unix-socket' in trusted
    assert '11.0.0.1' not in trusted and '::2' not in trusted and 'elsewhere' not in trusted and None not in trusted
    assert '8.8.8.8' in TrustedHosts('*')
    assert '192.168.1.5' in TrustedHosts(['192.168.0.0/16'])
    # Peers on a Unix socket have no address; 'unix' (or '*') trusts them.
    assert '' in TrustedHosts('unix') and '' in TrustedHosts('*') and '' not in trusted
    assert '127.0.0.1' not in TrustedHosts('unix')


@pytest.mark.parametrize(
    ('chain', 'client'),
    [
        (['203.0.113.7'], '203.0.113.7'),
        (['203.0.113.7, 10.0.0.2'], '203.0.113.7'),  # the right-most untrusted hop
        (['198.51.100.1, 203.0.113.7, 10.0.0.2'], '203.0.113.7'),  # a client-supplied entry is ignored
        (['203.0.113.7', '10.0.0.2'], '203.0.113.7'),  # the header repeated
        (['10.0.0.3, 10.0.0.2'], '10.0.0.3'),  # all trusted: the left-most
    ],
)
def test_x_forwarded_for_gives_the_last_untrusted_hop(chain, client):
    found = _read({'x-forwarded-for': chain, 'x-forwarded-proto': ['https']})
    assert (found.client, found.scheme) == (client, 'https')


def test_everyone_trusted_takes_the_left_most_hop():
    found = _read({'x-forwarded-for': ['198.51.100.1, 203.0.113.7']}, trusted='*')
    assert found.client == '198.51.100.1'


def test_forwarded_header_wins_over_x_forwarded():
    headers = {
        'forwarded': ['for=192.0.2.60;proto=https;by=203.0.113.43', 'for="[2001:db8:cafe::17]:4711"'],
        'x-forwarded-for': ['198.51.100.99'],
        'x-forwarded-proto': ['http'],
    }
    found = _read(headers, trusted='*')
    assert (found.client, found.port, found.scheme) == ('192.0.2.60', None, 'https')
    found = _read(headers)
    assert (found.client, found.port, found.scheme) == ('2001:db8:cafe::17', 4711, 'https')


@pytest.mark.parametrize(
    ('value', 'client', 'scheme'),
    [
        ('For="192.0.2.43:47011";Proto=HTTPS', '192.0.2.43', 'https'),  # case-insensitive names and values
        ('for=unknown, for=203.0.113.9', '203.0.113.9', None),
        ('for=_hidden;proto=http', None, 'http'),  # obfuscated identifier: no address
        ('for="quoted, comma";proto=https, for=203.0.113.9', '203.0.113.9', 'https'),
        ('for=203.0.113.9;proto=gopher', '203.0.113.9', None),  # an unknown scheme is ignored
        ('for=203.0.113.9;;', '203.0.113.9', None),
        ('for', None, None),  # malformed: nothing believed
        ('for=1.2.3.4;junk', None, None),
    ],
)
def test_forwarded_header_forms(value, client, scheme):
    found = _read({'forwarded': [value]})
    assert (found.client, found.scheme) == (client, scheme)


def _capturing_asgi(seen: dict[str, Any]) -> Any:
    async def app(scope, receive, send):
        seen.update(scope)

    return app


def test_asgi_wrapper_believes_trusted_peers_only():
    headers = [(b'x-forwarded-for', b'203.0.113.7'), (b'x-forwarded-proto', b'https')]
    for peer, expected in (('127.0.0.1', (('203.0.113.7', 0), 'https')), ('192.0.2.1', (('192.0.2.1', 5), 'http'))):
        seen: dict[str, Any] = {}
        scope = {'type': 'http', 'client': (peer, 5), 'scheme': 'http', 'headers': headers}
        asyncio.run(wrap_asgi_with_proxy_headers(_capturing_asgi(seen))(scope, None, None))
        assert (seen['client'], seen['scheme']) == expected
        assert scope['client'] == (peer, 5), 'the server-made scope is not changed'


def test_asgi_wrapper_maps_websocket_schemes_and_passes_lifespan():
    seen: dict[str, Any] = {}
    wrapped = wrap_asgi_with_proxy_headers(_capturing_asgi(seen))
    scope = {
        'type': 'websocket',
        'client': ('127.0.0.1', 5),
        'scheme': 'ws',
        'headers': [(b'forwarded', b'proto=https')],
    }
    asyncio.run(wrapped(scope, None, None))
    assert seen['scheme'] == 'wss' and seen['client'] == ('127.0.0.1', 5)
    lifespan = {'type': 'lifespan'}
    seen.clear()
    asyncio.run(wrapped(lifespan, None, None))
    assert seen == lifespan


def test_wsgi_wrapper_sets_remote_addr_and_scheme():
    def app(environ, start_response):
        return [
            json.dumps(
                [environ['REMOTE_ADDR'], environ['REMOTE_PORT'], environ['wsgi.url_scheme'], environ.get('HTTPS')]
            ).encode()
        ]

    wrapped = wrap_wsgi_with_proxy_headers(app, trusted_hosts=['127.0.0.1'])
    base = {'REMOTE_ADDR': '127.0.0.1', 'REMOTE_PORT': '5', 'wsgi.url_scheme': 'http'}
    trusted = {**base, 'HTTP_FORWARDED': 'for="203.0.113.7:8080";proto=https'}
    assert json.loads(wrapped(trusted, None)[0]) == ['203.0.113.7', '8080', 'https', 'on']
    untrusted = {**base, 'REMOTE_ADDR': '192.0.2.1', 'HTTP_X_FORWARDED_FOR': '203.0.113.7'}
    assert json.loads(wrapped(untrusted, None)[0]) == ['192.0.2.1', '5', 'http', None]


class _Headers:
    def __init__(self, values: dict[str, list[str]]) -> None:
        self.values = values

    def get_all(self, name: str) -> list[str]:
        return self.values.get(name, [])


class _Scope:
    proto = 'http'
    scheme = 'http'
    path = '/x'

    def __init__(self, client: str, headers: dict[str, list[str]]) -> None:
        self.client = client
        self.headers = _Headers(headers)


def test_rsgi_wrapper_replaces_client_and_scheme_and_keeps_the_rest():
    seen: list[Any] = []
    calls: list[str] = []

    class App:
        def __rsgi_init__(self, loop):
            calls.append('init')

        def __rsgi_del__(self, loop):
            calls.append('del')

        async def __rsgi__(self, scope, protocol):
            seen.append((scope.client, scope.scheme, scope.path))

    wrapped = wrap_rsgi_with_proxy_headers(App(), trusted_hosts='127.0.0.1')
    wrapped.__rsgi_init__(None)
    headers = {'x-forwarded-for': ['2001:db8::7'], 'x-forwarded-proto': ['https']}
    asyncio.run(wrapped.__rsgi__(_Scope('127.0.0.1:5', headers), None))
    asyncio.run(wrapped.__rsgi__(_Scope('192.0.2.1:5', headers), None))
    wrapped.__rsgi_del__(None)
    assert seen == [('[2001:db8::7]:0', 'https', '/x'), ('192.0.2.1:5', 'http', '/x')]
    assert calls == ['init', 'del']


@pytest.mark.parametrize('interface', ['asgi', 'wsgi', 'rsgi'])
def test_behind_a_real_server(server_factory, interface):
    server = server_factory(f'proxied_app:{interface}', interface=interface, working_dir=APPS_DIR)
    headers = {'x-forwarded-for': '198.51.100.1, 203.0.113.7', 'x-forwarded-proto': 'https'}
    assert httpx.get(server.url('/'), headers=headers, timeout=10).json() == ['203.0.113.7', 'https']
    forwarded = {'forwarded': 'for="[2001:db8::1]:4711";proto=https'}
    assert httpx.get(server.url('/'), headers=forwarded, timeout=10).json() == ['2001:db8::1', 'https']
    assert httpx.get(server.url('/'), timeout=10).json() == ['127.0.0.1', 'http']
