"""A Flask application served by granian in the WSGI tests: forms, multipart uploads, streaming, send_file."""

from __future__ import annotations

import hashlib

from flask import Flask, Response, jsonify, request, send_file, stream_with_context

app = Flask(__name__)


@app.get('/')
def index():
    return 'hello from flask'


@app.post('/form')
def form():
    """Answer the url-encoded form fields (every value of each)."""
    return jsonify({key: request.form.getlist(key) for key in request.form})


@app.post('/upload')
def upload():
    """Answer what arrived of a multipart upload: the file's name, size and digest, and a plain field."""
    uploaded = request.files['file']
    data = uploaded.read()
    return jsonify(
        filename=uploaded.filename,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        note=request.form.get('note'),
    )


@app.get('/stream')
def stream():
    """Stream `count` lines; the generator reads `request` while streaming, hence stream_with_context."""
    count = int(request.args.get('count', '10'))

    def generate():
        for index in range(count):
            yield f'{request.args.get("prefix", "line")}-{index}\n'

    return Response(stream_with_context(generate()), mimetype='text/plain')


@app.get('/file')
def file():
    return send_file(request.args['path'], mimetype='application/octet-stream')
