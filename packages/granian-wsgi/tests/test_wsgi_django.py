"""A real Django app under granian's WSGI interface: sessions, CSRF-protected form posts, the admin login page."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip('django', reason='the Django tests need django installed in the test environment')

TOKEN_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(scope='module')
def django_server(server_factory, wsgi_apps_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    database_dir = tmp_path_factory.mktemp('django-db')
    # The app migrates its SQLite database when imported; that can take a few seconds.
    return server_factory(
        'django_wsgi_app:application',
        working_dir=wsgi_apps_dir,
        interface='wsgi',
        env={'WSGI_DJANGO_DB_DIR': str(database_dir)},
        ready_timeout=60,
    )


@pytest.fixture
def client(make_client: Callable[[str], httpx.Client], http_version: str) -> Iterator[httpx.Client]:
    """A client with its own cookie jar, so the CSRF cookie of one test never helps another."""
    with make_client(http_version) as client:
        yield client


def test_get(django_server, client: httpx.Client):
    response = client.get(django_server.url('/'))
    assert (response.status_code, response.text) == (200, 'hello from django')


def test_form_post_with_csrf_token(django_server, client: httpx.Client):
    page = client.get(django_server.url('/form/'))
    assert page.status_code == 200, page.text
    assert 'csrftoken' in page.cookies, f'no CSRF cookie in {page.headers}'
    match = TOKEN_FIELD.search(page.text)
    assert match, page.text
    # The client's cookie jar sends the csrftoken cookie back with the token field.
    response = client.post(django_server.url('/form/'), data={'csrfmiddlewaretoken': match.group(1), 'name': 'granian'})
    assert response.status_code == 200, response.text
    assert response.text == 'hello granian'


def test_form_post_without_csrf_token_is_forbidden(django_server, client: httpx.Client):
    assert client.get(django_server.url('/form/')).status_code == 200
    response = client.post(django_server.url('/form/'), data={'name': 'intruder'})
    assert response.status_code == 403


def test_admin_login_page_renders(django_server, client: httpx.Client):
    response = client.get(django_server.url('/admin/login/'))
    assert response.status_code == 200, response.text[:2000]
    assert 'Log in' in response.text or 'id_username' in response.text


def test_unknown_url_is_djangos_404(django_server, client: httpx.Client):
    response = client.get(django_server.url('/no/such/page/'))
    assert response.status_code == 404


def test_server_log_has_no_tracebacks(django_server, client: httpx.Client):
    assert client.get(django_server.url('/')).status_code == 200
    assert 'Traceback' not in django_server.output, django_server.output
