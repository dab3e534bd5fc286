"""WSGI benchmark app; the routes are described in payloads.py."""

from payloads import BODIES, FILE_SIZE, ensure_file

FILE = ensure_file()
CHUNK = 64 * 1024
HEADERS = {path: [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))] for path, body in BODIES.items()}
RESPONSES = {path: [body] for path, body in BODIES.items()}
FILE_HEADERS = [('Content-Type', 'application/octet-stream'), ('Content-Length', str(FILE_SIZE))]


def app(environ, start_response):
    path = environ['PATH_INFO']
    response = RESPONSES.get(path)
    if response is not None:
        start_response('200 OK', HEADERS[path])
        return response
    if path == '/echo':
        body = environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(len(body)))])
        return [body]
    if path == '/stream':
        # No Content-Length: the server streams the chunks as the generator yields them.
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return stream(environ['wsgi.input'], int(environ.get('CONTENT_LENGTH') or 0))
    if path == '/file':
        start_response('200 OK', FILE_HEADERS)
        # The server closes the file through the iterable's close() once the response is sent.
        file = open(FILE, 'rb')  # noqa: SIM115
        wrapper = environ.get('wsgi.file_wrapper')
        return wrapper(file, CHUNK) if wrapper is not None else read_chunks(file)
    start_response('404 Not Found', [('Content-Length', '0')])
    return []


def stream(body, remaining):
    """Yield the request body as it is read, never past its declared length (PEP 3333)."""
    while remaining > 0:
        chunk = body.read(min(remaining, 16 * 1024))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def read_chunks(file):
    """The fallback for servers without wsgi.file_wrapper: the app reads the file itself."""
    with file:
        while chunk := file.read(CHUNK):
            yield chunk
