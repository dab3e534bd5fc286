"""Static files served by the core before the app: content types and caching, validators and
conditional requests, ranges, HEAD, precompressed siblings, several mounts, and traversal attempts."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests_support.rawhttp import exchange
from tests_support.server import RunningServer, run_granian

APPS_DIR = Path(__file__).parent / 'apps'
BIG_SIZE = 1_000_003  # streamed in chunks, not read in one go


@pytest.fixture(scope='module')
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """public/ (served) beside secret.txt (not served), with a symlink from one to the other."""
    base = tmp_path_factory.mktemp('static')
    public = base / 'public'
    (public / 'docs').mkdir(parents=True)
    (public / 'empty-dir').mkdir()
    (public / 'app.css').write_text('body { color: red }\n')
    (public / 'app.css.gz').write_bytes(gzip.compress(b'body { color: red }\n'))
    (public / 'app.css.br').write_bytes(b'pretend-brotli')
    (public / 'script.js').write_text('console.log(1)\n')
    (public / 'script.js.gz').write_bytes(gzip.compress(b'console.log(1)\n'))
    (public / 'page.html').write_text('<h1>page</h1>')
    (public / 'docs' / 'index.html').write_text('<h1>docs</h1>')
    (public / 'a b.txt').write_text('spaced')
    (public / 'big.bin').write_bytes(os.urandom(BIG_SIZE))
    (public / 'changing.txt').write_text('version 1')
    (base / 'secret.txt').write_text('TOP SECRET')
    (public / 'escape.txt').symlink_to(base / 'secret.txt')
    (public / 'inside-link.css').symlink_to(public / 'app.css')
    (public / 'page.html.gz').symlink_to(base / 'secret.txt')  # a sibling that leaves the mount
    other = base / 'other'
    other.mkdir()
    (other / 'logo.svg').write_text('<svg/>')
    return base


@pytest.fixture(scope='module')
def server(server_factory, tree: Path):
    args = [
        '--static-path-mount',
        str(tree / 'public'),
        '--static-path-route',
        '/static',
        '--static-path-mount',
        str(tree / 'other'),
        '--static-path-route',
        '/static/other',
        '--static-path-dir-to-file',
        'index.html',
        '--static-path-expires',
        '3600',
    ]
    return server_factory('address_app:rsgi', working_dir=APPS_DIR, extra_args=args)


@pytest.fixture(scope='module')
def client(server):
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def test_files_are_served_with_type_validators_and_caching(client, tree):
    response = client.get('/static/app.css', headers={'accept-encoding': 'identity'})
    assert response.status_code == 200
    assert response.content == (tree / 'public' / 'app.css').read_bytes()
    assert response.headers['content-type'] == 'text/css'
    assert response.headers['cache-control'] == 'max-age=3600'
    assert response.headers['accept-ranges'] == 'bytes'
    assert response.headers['etag'].startswith('"') and response.headers['etag'].endswith('"')
    modified = (tree / 'public' / 'app.css').stat().st_mtime
    assert response.headers['last-modified'] == time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(modified))
    assert 'content-encoding' not in response.headers
    assert response.headers['vary'] == 'accept-encoding'  # siblings exist
    assert client.get('/static/script.js').headers['content-type'] in ('text/javascript', 'application/javascript')
    assert client.get('/static/a%20b.txt').text == 'spaced'
    assert client.get('/static/inside-link.css').status_code == 200  # a symlink that stays inside


def test_the_app_never_sees_static_paths(client):
    assert client.get('/static/missing.css').status_code == 404
    assert client.get('/static').status_code == 404
    assert client.get('/static/').text == 'Not found'
    assert client.get('/statics/app.css').json()['server']  # another path: the app answers
    refused = client.post('/static/app.css', content=b'x')
    assert refused.status_code == 405
    assert refused.headers['allow'] == 'GET, HEAD'
    assert refused.text == 'Method Not Allowed'


def test_directories_and_several_mounts(client):
    assert client.get('/static/docs/').text == '<h1>docs</h1>'
    assert client.get('/static/docs').text == '<h1>docs</h1>'
    assert client.get('/static/empty-dir/').status_code == 404
    # The longer route wins, whatever the order the mounts were given in.
    logo = client.get('/static/other/logo.svg')
    assert logo.text == '<svg/>' and logo.headers['content-type'] == 'image/svg+xml'


def test_large_files_stream_whole_and_in_ranges(client, tree):
    content = (tree / 'public' / 'big.bin').read_bytes()
    whole = client.get('/static/big.bin')
    assert whole.headers['content-length'] == str(BIG_SIZE)
    assert hashlib.sha256(whole.content).digest() == hashlib.sha256(content).digest()
    middle = client.get('/static/big.bin', headers={'range': 'bytes=500000-899999'})
    assert middle.status_code == 206
    assert middle.headers['content-range'] == f'bytes 500000-899999/{BIG_SIZE}'
    assert middle.content == content[500000:900000]


@pytest.mark.parametrize(
    ('range_header', 'status', 'content_range', 'part'),
    [
        ('bytes=0-9', 206, 'bytes 0-9/20', slice(0, 10)),
        ('bytes=15-', 206, 'bytes 15-19/20', slice(15, 20)),
        ('bytes=-4', 206, 'bytes 16-19/20', slice(16, 20)),
        ('bytes=10-1000', 206, 'bytes 10-19/20', slice(10, 20)),
        ('bytes=20-', 416, 'bytes */20', None),
        ('bytes=30-40, 50-', 416, 'bytes */20', None),
        ('bytes=0-1, 5-6', 200, None, slice(0, 20)),  # several ranges: the whole file
        ('bytes=5-2', 200, None, slice(0, 20)),  # invalid: ignored
        ('pages=1-2', 200, None, slice(0, 20)),
    ],
)
def test_single_ranges(client, tree, range_header, status, content_range, part):
    content = (tree / 'public' / 'app.css').read_bytes()
    assert len(content) == 20
    response = client.get('/static/app.css', headers={'range': range_header, 'accept-encoding': 'identity'})
    assert response.status_code == status
    assert response.headers.get('content-range') == content_range
    if status == 416:
        assert response.text == 'Range Not Satisfiable'
    if part is not None:
        assert response.content == content[part]
        assert response.headers['content-length'] == str(len(content[part]))


def test_if_range_serves_the_range_only_while_the_file_is_unchanged(client):
    first = client.get('/static/page.html')
    etag, modified = first.headers['etag'], first.headers['last-modified']
    for condition in (etag, modified):
        partial = client.get('/static/page.html', headers={'range': 'bytes=0-3', 'if-range': condition})
        assert (partial.status_code, partial.content) == (206, b'<h1>')
    for condition in ('"stale"', f'W/{etag}', 'Mon, 01 Jan 2001 00:00:00 GMT'):
        whole = client.get('/static/page.html', headers={'range': 'bytes=0-3', 'if-range': condition})
        assert (whole.status_code, whole.content) == (200, b'<h1>page</h1>')


def test_conditional_requests(client, tree):
    first = client.get('/static/page.html')
    etag, modified = first.headers['etag'], first.headers['last-modified']
    for headers in ({'if-none-match': etag}, {'if-none-match': f'"x", W/{etag}'}, {'if-modified-since': modified}):
        cached = client.get('/static/page.html', headers=headers)
        assert cached.status_code == 304, headers
        assert cached.content == b''
        assert cached.headers['etag'] == etag and cached.headers['cache-control'] == 'max-age=3600'
    assert client.get('/static/page.html', headers={'if-none-match': '"other"'}).status_code == 200
    old_date = 'Mon, 01 Jan 2001 00:00:00 GMT'
    assert client.get('/static/page.html', headers={'if-modified-since': old_date}).status_code == 200
    assert client.get('/static/page.html', headers={'if-match': '"other"'}).status_code == 412
    assert client.get('/static/page.html', headers={'if-match': etag}).status_code == 200
    assert client.get('/static/page.html', headers={'if-unmodified-since': old_date}).status_code == 412


def test_a_changed_file_gets_a_new_etag(client, tree):
    changing = tree / 'public' / 'changing.txt'
    before = client.get('/static/changing.txt')
    assert before.text == 'version 1'
    changing.write_text('version 2!')
    after = client.get('/static/changing.txt', headers={'if-none-match': before.headers['etag']})
    assert after.status_code == 200
    assert after.text == 'version 2!'
    assert after.headers['etag'] != before.headers['etag']


def test_head_sends_the_headers_without_the_body(server, client):
    raw = exchange(server.port, b'HEAD /static/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert raw.status == 200
    assert raw.header('content-length') == str(BIG_SIZE)
    assert raw.header('etag') is not None and raw.header('accept-ranges') == 'bytes'
    with httpx.Client(base_url=server.base_url, http1=False, http2=True, timeout=10) as h2:
        head = h2.head('/static/big.bin', headers={'range': 'bytes=0-9'})
        get = h2.get('/static/app.css', headers={'range': 'bytes=0-3', 'accept-encoding': 'identity'})
    assert head.http_version == 'HTTP/2'
    assert head.status_code == 200 and head.content == b''  # ranges apply to GET only
    assert head.headers['content-length'] == str(BIG_SIZE)
    assert (get.status_code, get.content) == (206, b'body')


def test_precompressed_siblings_follow_accept_encoding(client, tree):
    gz = client.get('/static/app.css', headers={'accept-encoding': 'gzip'})
    assert gz.headers['content-encoding'] == 'gzip'
    assert gz.content == b'body { color: red }\n'  # httpx decodes gzip
    assert gz.headers['content-type'] == 'text/css'
    assert gz.headers['vary'] == 'accept-encoding'
    identity = client.get('/static/app.css', headers={'accept-encoding': 'identity'})
    assert gz.headers['etag'] != identity.headers['etag']
    with client.stream('GET', '/static/app.css', headers={'accept-encoding': 'br, gzip'}) as br:
        assert br.headers['content-encoding'] == 'br'
        assert b''.join(br.iter_raw()) == (tree / 'public' / 'app.css.br').read_bytes()
    prefers_gzip = client.get('/static/app.css', headers={'accept-encoding': 'br;q=0.2, gzip'})
    assert prefers_gzip.headers['content-encoding'] == 'gzip'
    refused = client.get('/static/app.css', headers={'accept-encoding': 'br;q=0, gzip;q=0'})
    assert 'content-encoding' not in refused.headers
    only_gz = client.get('/static/script.js', headers={'accept-encoding': 'br'})
    assert 'content-encoding' not in only_gz.headers
    # A sibling that is a symlink out of the mount is not used (nor its Vary).
    page = client.get('/static/page.html', headers={'accept-encoding': 'gzip'})
    assert page.text == '<h1>page</h1>' and 'content-encoding' not in page.headers and 'vary' not in page.headers


TRAVERSALS = [
    '/static/../secret.txt',
    '/static/docs/../../secret.txt',
    '/static/%2e%2e/secret.txt',
    '/static/%2E%2E/secret.txt',
    '/static/.%2e/secret.txt',
    '/static/..%2fsecret.txt',
    '/static/..%2Fsecret.txt',
    '/static/..%5csecret.txt',
    '/static/..\\secret.txt',
    '/static/%252e%252e/secret.txt',
    '/static/escape.txt',
    '/static/app.css%00.txt',
    '/static//etc/passwd',
    '/static/%2fetc%2fpasswd',
    '/static/docs/%2e%2e/%2e%2e/secret.txt',
]


@pytest.mark.parametrize('path', TRAVERSALS)
def test_no_request_reaches_a_file_outside_the_mount(server, path):
    response = exchange(server.port, f'GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'.encode())
    assert response.status in (400, 404), (path, response.status)
    assert b'SECRET' not in response.body and b'root:' not in response.body


@pytest.mark.skipif(shutil.which('curl') is None, reason='curl is not installed')
def test_curl_resumes_a_download(server, tree, tmp_path):
    target = tmp_path / 'big.bin'
    target.write_bytes((tree / 'public' / 'big.bin').read_bytes()[:300_000])
    subprocess.run(
        ['curl', '-sSf', '-C', '-', '-o', str(target), server.url('/static/big.bin')], check=True, timeout=30
    )
    assert target.read_bytes() == (tree / 'public' / 'big.bin').read_bytes()


@pytest.mark.parametrize('interface', ['asgi', 'wsgi'])
def test_every_interface_serves_static_files_first(tree, interface):
    args = ['--static-path-mount', str(tree / 'public'), '--static-path-expires', '0']
    with RunningServer(
        f'address_app:{interface}', working_dir=APPS_DIR, interface=interface, extra_args=args
    ) as server:
        response = httpx.get(server.url('/static/page.html'), timeout=10)
        app = httpx.get(server.url('/'), timeout=10)
    assert response.text == '<h1>page</h1>'
    assert 'cache-control' not in response.headers  # expires 0
    assert app.status_code == 200 and app.headers['content-type'] == 'application/json'


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--static-path-route', '/assets'], 'it needs a static_path_mount'),
        (['--static-path-mount', '{public}', '--static-path-mount', '{other}'], 'give one for each of the 2'),
        (['--static-path-mount', '{public}', '--static-path-route', 'assets'], 'does not start with "/"'),
        (['--static-path-mount', '{public}', '--static-path-route', '/a', '--static-path-route', '/b'], '2 route(s)'),
        (['--static-path-mount', '{missing}'], 'is not an existing directory'),
    ],
)
def test_bad_static_settings_are_refused(tree, args, message):
    paths = {'public': tree / 'public', 'other': tree / 'other', 'missing': tree / 'missing'}
    argv = ['--interface', 'rsgi', *(arg.format(**paths) for arg in args), 'address_app:rsgi']
    result = run_granian(argv, cwd=APPS_DIR)
    assert result.returncode == 2
    assert message in result.stderr
