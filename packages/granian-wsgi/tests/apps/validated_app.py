"""A WSGI app wrapped in `wsgiref.validate.validator`: every PEP 3333 rule the validator knows is checked live.

The validator raises AssertionError (logged by the server, 500 to the client) when the server breaks a rule
while calling the app, and prints to stderr when the server forgets to close the response iterable.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from urllib.parse import parse_qs
from wsgiref.validate import validator

from wsgi_app import read_all


def _plain(start_response, body: bytes, content_type: str = 'text/plain'):
    start_response('200 OK', [('Content-Type', content_type), ('Content-Length', str(len(body)))])
    return [body]


def _digest(start_response, body: bytes):
    document = json.dumps({'length': len(body), 'sha256': hashlib.sha256(body).hexdigest()}).encode()
    return _plain(start_response, document, 'application/json')


def _unchecked_app(environ, start_response):
    path = environ['PATH_INFO']
    params = {key: values[-1] for key, values in parse_qs(environ.get('QUERY_STRING', '')).items()}
    if path == '/digest':
        return _digest(start_response, read_all(environ))
    if path == '/lines':
        # Line-oriented reads through the validator's wrapper: readline(), iteration, readlines().
        stream = environ['wsgi.input']
        first = stream.readline()
        second = stream.readline(4)
        rest = b''.join(stream)
        return _digest(start_response, first + second + rest)
    if path == '/stream':
        size = int(params.get('size', '1048576'))
        data = random.Random(int(params.get('seed', '0'))).randbytes(size)
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])

        def body():
            for start in range(0, size, 65536):
                yield data[start : start + 65536]

        return body()
    if path == '/write':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'written ')
        return [b'and returned']
    if path == '/file':
        data = random.Random(int(params.get('seed', '0'))).randbytes(int(params.get('size', '100000')))
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](io.BytesIO(data), 8192)
    read_all(environ)
    return _plain(start_response, b'hello from the validated app')


app = validator(_unchecked_app)
