"""WSGI benchmark app: `GET /` hello world, `POST /echo` sends the request body back."""

HELLO = [b'Hello, world!']
HEADERS = [('Content-Type', 'text/plain'), ('Content-Length', '13')]


def app(environ, start_response):
    if environ['PATH_INFO'] == '/echo':
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(len(body)))])
        return [body]
    start_response('200 OK', HEADERS)
    return HELLO
