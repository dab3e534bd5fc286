"""The app the deployment examples serve: a Flask app with a health route for the probes."""

from flask import Flask

app = Flask(__name__)


@app.get('/')
def index():
    return 'Hello from granian!'


@app.get('/healthz')
def healthz():
    # Readiness: answer only when the app can serve (check its database here, if it has one).
    return 'ok'
