"""Proxy headers: let an app behind a reverse proxy see the real client address and scheme.

Wrap the app, naming the proxies whose headers are believed (`trusted_hosts`: addresses, CIDR
networks, or `'*'` for any peer). When the connection comes from a trusted proxy, the client address
and scheme are taken from the RFC 7239 `Forwarded` header if the request has one, otherwise from
`X-Forwarded-For` and `X-Forwarded-Proto`. Requests from any other peer are passed on untouched, so a
client cannot forge its address by sending the headers itself.

The client is the right-most address in the chain that is not a trusted proxy (the last hop the
trusted proxies saw), or the left-most one when every hop is trusted or `trusted_hosts` is `'*'`.

    from granian.utils.proxies import wrap_asgi_with_proxy_headers
    app = wrap_asgi_with_proxy_headers(app, trusted_hosts=['10.0.0.0/8'])

The same exists for WSGI (`wrap_wsgi_with_proxy_headers`: `REMOTE_ADDR`, `REMOTE_PORT`,
`wsgi.url_scheme`, `HTTPS`) and RSGI (`wrap_rsgi_with_proxy_headers`: `scope.client`, `scope.scheme`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    'Forwarded',
    'TrustedHosts',
    'forwarded_from_headers',
    'wrap_asgi_with_proxy_headers',
    'wrap_rsgi_with_proxy_headers',
    'wrap_wsgi_with_proxy_headers',
]

_SCHEMES = frozenset({'http', 'https', 'ws', 'wss'})
_WEBSOCKET_SCHEMES = {'http': 'ws', 'https': 'wss', 'ws': 'ws', 'wss': 'wss'}
_HTTP_SCHEMES = {'http': 'http', 'https': 'https', 'ws': 'http', 'wss': 'https'}
# One `name=value` pair of a Forwarded element; the value is a token or a quoted string (RFC 7239, 4).
_PORT = re.compile(r'[0-9]{1,5}')
_PAIR = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


#: The host a peer connected through a Unix socket has (ASGI: no client at all).
UNIX_PEER = ''


class TrustedHosts:
    """The proxies whose forwarding headers are believed: addresses, CIDR networks, `'unix'` (peers on a
    Unix socket, which have no address: a proxy in front of `--uds`), or `'*'` (everyone)."""

    def __init__(self, trusted: str | Iterable[str]) -> None:
        entries = [part.strip() for part in trusted.split(',')] if isinstance(trusted, str) else list(trusted)
        self.everyone = '*' in entries
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        #: Entries that are not addresses (a Unix socket path, a name) compare as text.
        self.literals: set[str] = set()
        for entry in entries:
            if not entry or entry == '*':
                continue
            if entry == 'unix':
                self.literals.add(UNIX_PEER)
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.literals.add(entry)

    def __contains__(self, host: object) -> bool:
        if self.everyone:
            return True
        if not isinstance(host, str):
            return False
        if host in self.literals:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class Forwarded:
    """What the trusted proxies say about the original request; None where they say nothing usable."""

    client: str | None = None
    port: int | None = None
    scheme: str | None = None


def _port(text: str) -> int | None:
    """A TCP port written in ASCII digits (0-65535), else None."""
    if not _PORT.fullmatch(text):
        return None
    port = int(text)
    return port if port <= 65535 else None


def _split_node(node: str) -> tuple[str, int | None]:
    """A `for=` node or an X-Forwarded-For entry as (host, port): `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`."""
    node = node.strip()
    if node.startswith('['):
        host, _, rest = node[1:].partition(']')
        return host, _port(rest[1:]) if rest.startswith(':') else None
    if node.count(':') == 1:
        host, port = node.split(':')
        return host, _port(port)
    return node, None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r'\\(.)', r'\1', value[1:-1])
    return value


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """`text` split at `separator`, except inside quoted strings (with their backslash escapes)."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == '\\' and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(''.join(current))
            current = []
            continue
        current.append(char)
    parts.append(''.join(current))
    return parts


def _parse_forwarded(values: list[str]) -> list[dict[str, str]] | None:
    """Forwarded elements, one dict of lowercase parameter names each; None if any part is malformed."""
    elements = []
    for element in _split_outside_quotes(','.join(values), ','):
        params: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ';'):
            if not pair.strip():
                continue
            match = _PAIR.fullmatch(pair)
            if match is None:
                return None
            params[match.group(1).lower()] = _unquote(match.group(2))
        elements.append(params)
    return elements


def _pick_client(hops: list[tuple[str, int | None]], trusted: TrustedHosts) -> tuple[str | None, int | None]:
    """The right-most hop that is not a trusted proxy; the left-most when all are (or all are trusted)."""
    if not hops:
        return None, None
    if not trusted.everyone:
        for host, port in reversed(hops):
            if host not in trusted:
                return host, port
    return hops[0]


def forwarded_from_headers(headers: Callable[[str], list[str]], trusted: TrustedHosts) -> Forwarded:
    """Read `Forwarded`, or else `X-Forwarded-For`/`X-Forwarded-Proto`; `headers(name)` gives every
    value of a (lowercase) header name."""
    forwarded = headers('forwarded')
    if forwarded:
        elements = _parse_forwarded(forwarded)
        if elements is None:
            return Forwarded()
        hops = [_split_node(element['for']) for element in elements if 'for' in element]
        # Obfuscated identifiers and `unknown` (RFC 7239, 6.2-6.3) carry no address.
        hops = [(host, port) for host, port in hops if host and host != 'unknown' and not host.startswith('_')]
        host, port = _pick_client(hops, trusted)
        protos = [element['proto'].lower() for element in elements if 'proto' in element]
        scheme = protos[0] if protos and protos[0] in _SCHEMES else None
        return Forwarded(host, port, scheme)
    chain = [entry.strip() for value in headers('x-forwarded-for') for entry in value.split(',') if entry.strip()]
    host, port = _pick_client([_split_node(entry) for entry in chain], trusted)
    protos = [entry.strip().lower() for value in headers('x-forwarded-proto') for entry in value.split(',')]
    scheme = protos[0] if protos and protos[0] in _SCHEMES else None
    return Forwarded(host, port, scheme)


def _peer_host(address: str) -> str:
    """The host part of an RSGI `client` string (`1.2.3.4:5`, `[::1]:5`)."""
    return _split_node(address)[0]


def wrap_asgi_with_proxy_headers(app: Any, trusted_hosts: str | Iterable[str] = '127.0.0.1') -> Any:
    """An ASGI app that sets `scope['client']` and `scope['scheme']` from a trusted proxy's headers."""
    trusted = TrustedHosts(trusted_hosts)

    async def proxied(scope: MutableMapping[str, Any], receive: Any, send: Any) -> Any:
        if scope['type'] in ('http', 'websocket'):
            client = scope.get('client')
            if (client[0] if client else UNIX_PEER) in trusted:
                raw = scope.get('headers') or []

                def values(name: str) -> list[str]:
                    key = name.encode()
                    return [value.decode('latin-1') for header, value in raw if header.lower() == key]

                found = forwarded_from_headers(values, trusted)
                if found.client is not None or found.scheme is not None:
                    scope = dict(scope)
                    if found.client is not None:
                        scope['client'] = (found.client, found.port or 0)
                    if found.scheme is not None:
                        schemes = _WEBSOCKET_SCHEMES if scope['type'] == 'websocket' else _HTTP_SCHEMES
                        scope['scheme'] = schemes[found.scheme]
        return await app(scope, receive, send)

    return proxied


def wrap_wsgi_with_proxy_headers(app: Any, trusted_hosts: str | Iterable[str] = '127.0.0.1') -> Any:
    """A WSGI app that sets `REMOTE_ADDR`, `REMOTE_PORT`, `wsgi.url_scheme` and `HTTPS` from a
    trusted proxy's headers."""
    trusted = TrustedHosts(trusted_hosts)
    keys = {'forwarded': 'HTTP_FORWARDED', 'x-forwarded-for': 'HTTP_X_FORWARDED_FOR'}
    keys['x-forwarded-proto'] = 'HTTP_X_FORWARDED_PROTO'

    def proxied(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get('REMOTE_ADDR') in trusted:

            def values(name: str) -> list[str]:
                value = environ.get(keys[name])
                return [value] if value else []

            found = forwarded_from_headers(values, trusted)
            if found.client is not None:
                environ['REMOTE_ADDR'] = found.client
                environ['REMOTE_PORT'] = str(found.port or 0)
            if found.scheme is not None:
                scheme = _HTTP_SCHEMES[found.scheme]
                environ['wsgi.url_scheme'] = scheme
                if scheme == 'https':
                    environ['HTTPS'] = 'on'
                else:
                    environ.pop('HTTPS', None)
        return app(environ, start_response)

    return proxied


class _ForwardedScope:
    """An RSGI scope with `client` and `scheme` replaced; every other attribute is the server's."""

    __slots__ = ('_scope', 'client', 'scheme')

    def __init__(self, scope: Any, client: str, scheme: str) -> None:
        self._scope = scope
        self.client = client
        self.scheme = scheme

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scope, name)


class _ProxiedRSGIApp:
    """The RSGI app form with the lifecycle hooks of the wrapped app."""

    def __init__(self, app: Any, trusted: TrustedHosts) -> None:
        self.app = app
        self.callback: Callable[[Any, Any], Awaitable[Any]] = getattr(app, '__rsgi__', app)
        self.trusted = trusted

    def __rsgi_init__(self, loop: Any) -> None:
        init = getattr(self.app, '__rsgi_init__', None)
        if init is not None:
            init(loop)

    def __rsgi_del__(self, loop: Any) -> None:
        teardown = getattr(self.app, '__rsgi_del__', None)
        if teardown is not None:
            teardown(loop)

    async def __rsgi__(self, scope: Any, protocol: Any) -> Any:
        if _peer_host(scope.client) in self.trusted:
            found = forwarded_from_headers(lambda name: list(scope.headers.get_all(name)), self.trusted)
            if found.client is not None or found.scheme is not None:
                client = scope.client
                if found.client is not None:
                    host = f'[{found.client}]' if ':' in found.client else found.client
                    client = f'{host}:{found.port or 0}'
                schemes = _WEBSOCKET_SCHEMES if scope.proto == 'ws' else _HTTP_SCHEMES
                scheme = schemes[found.scheme] if found.scheme is not None else scope.scheme
                scope = _ForwardedScope(scope, client, scheme)
        return await self.callback(scope, protocol)


def wrap_rsgi_with_proxy_headers(app: Any, trusted_hosts: str | Iterable[str] = '127.0.0.1') -> Any:
    """An RSGI app whose scopes carry `client` and `scheme` from a trusted proxy's headers."""
    return _ProxiedRSGIApp(app, TrustedHosts(trusted_hosts))
