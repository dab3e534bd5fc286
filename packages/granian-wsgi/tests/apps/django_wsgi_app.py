"""A Django application served by granian in the WSGI tests, configured in code (this module is its URLconf).

It has the admin, sessions, auth, messages and CSRF protection, backed by a SQLite database in the directory
named by $WSGI_DJANGO_DB_DIR, migrated when the module is imported.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import django
from django.conf import settings

DB_DIR = Path(os.environ.get('WSGI_DJANGO_DB_DIR') or tempfile.mkdtemp(prefix='granian-django-'))

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=['*'],
    ROOT_URLCONF=__name__,
    SECRET_KEY='granian-tests-only-not-a-secret',
    INSTALLED_APPS=[
        'django.contrib.admin',
        'django.contrib.auth',
        'django.contrib.contenttypes',
        'django.contrib.sessions',
        'django.contrib.messages',
    ],
    MIDDLEWARE=[
        'django.contrib.sessions.middleware.SessionMiddleware',
        'django.middleware.common.CommonMiddleware',
        'django.middleware.csrf.CsrfViewMiddleware',
        'django.contrib.auth.middleware.AuthenticationMiddleware',
        'django.contrib.messages.middleware.MessageMiddleware',
    ],
    DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': str(DB_DIR / 'db.sqlite3')}},
    TEMPLATES=[
        {
            'BACKEND': 'django.template.backends.django.DjangoTemplates',
            'DIRS': [],
            'APP_DIRS': True,
            'OPTIONS': {
                'context_processors': [
                    'django.template.context_processors.request',
                    'django.contrib.auth.context_processors.auth',
                    'django.contrib.messages.context_processors.messages',
                ]
            },
        }
    ],
    STATIC_URL='/static/',
    USE_TZ=True,
    DEFAULT_AUTO_FIELD='django.db.models.AutoField',
)
django.setup()

# These imports need the settings configured above.
from django.contrib import admin
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.urls import path
from django.utils.html import escape

call_command('migrate', run_syncdb=True, verbosity=0)


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse('hello from django', content_type='text/plain')


def form_page(request: HttpRequest) -> HttpResponse:
    """GET: a form carrying the CSRF token; POST (checked by CsrfViewMiddleware): greet the posted name."""
    if request.method == 'POST':
        return HttpResponse(f'hello {request.POST.get("name", "")}', content_type='text/plain')
    token = escape(get_token(request))
    return HttpResponse(
        '<form method="post">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
        '<input name="name"><button>send</button></form>',
        content_type='text/html',
    )


urlpatterns = [
    path('admin/', admin.site.urls),
    path('form/', form_page),
    path('', hello),
]

application = get_wsgi_application()
