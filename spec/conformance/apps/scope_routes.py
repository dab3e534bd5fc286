"""Routes that report the scope and the headers mapping (spec sections 3 and 4)."""

from __future__ import annotations

import json

from routing import probe, route, send_json


def describe_scope(scope) -> dict:
    """Every scope attribute, and the result of every headers operation on the test's headers."""
    headers = scope.headers
    return {
        'proto': probe(lambda: scope.proto),
        'rsgi_version': probe(lambda: scope.rsgi_version),
        'http_version': probe(lambda: scope.http_version),
        'server': probe(lambda: scope.server),
        'client': probe(lambda: scope.client),
        'scheme': probe(lambda: scope.scheme),
        'method': probe(lambda: scope.method),
        'path': probe(lambda: scope.path),
        'query_string': probe(lambda: scope.query_string),
        'authority': probe(lambda: scope.authority),
        'headers': {
            'keys': probe(lambda: list(headers.keys())),
            'values': probe(lambda: list(headers.values())),
            'items': probe(lambda: [list(item) for item in headers.items()]),
            'iter': probe(lambda: list(iter(headers))),
            'len': probe(lambda: len(headers)),
            'getitem_x_one': probe(lambda: headers['x-one']),
            'getitem_x_multi': probe(lambda: headers['x-multi']),
            'getitem_missing': probe(lambda: headers['x-missing']),
            'get_x_multi': probe(lambda: headers.get('x-multi')),
            'get_missing': probe(lambda: headers.get('x-missing')),
            'get_missing_default': probe(lambda: headers.get('x-missing', 'fallback')),
            'contains_x_one': probe(lambda: 'x-one' in headers),
            'contains_missing': probe(lambda: 'x-missing' in headers),
            'get_all_x_multi': probe(lambda: list(headers.get_all('x-multi'))),
            'get_all_missing': probe(lambda: list(headers.get_all('x-missing'))),
            'mixed_case_getitem': probe(lambda: headers['X-One']),
            'mixed_case_get': probe(lambda: headers.get('X-One')),
            'mixed_case_contains': probe(lambda: 'X-One' in headers),
            'mixed_case_get_all': probe(lambda: list(headers.get_all('X-Multi'))),
        },
    }


@route('/scope')
async def scope_http(scope, protocol) -> None:
    send_json(protocol, describe_scope(scope))


@route('/ws/scope')
async def scope_ws(scope, protocol) -> None:
    """Accept, send the scope as one text message, close."""
    transport = await protocol.accept()
    await transport.send_str(json.dumps(describe_scope(scope)))
    protocol.close(1000)
