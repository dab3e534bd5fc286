"""A Django application served by granian in the ASGI tests, configured in code (no project, no database).

This module is its own URLconf. Django's ASGI handler does not implement lifespan, so under `--interface asgi`
it also shows how the server copes with an app that rejects the lifespan scope.
"""

from __future__ import annotations

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=['*'],
    ROOT_URLCONF=__name__,
    SECRET_KEY='granian-tests-only-not-a-secret',
    INSTALLED_APPS=[],
    DATABASES={},
    MIDDLEWARE=['django.middleware.common.CommonMiddleware', 'django.middleware.csrf.CsrfViewMiddleware'],
    USE_TZ=True,
)
django.setup()

# These imports need the settings configured above.
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def reverse(request: HttpRequest) -> HttpResponse:
    """A synchronous view: answer the POST body reversed."""
    return HttpResponse(request.body[::-1], content_type='application/octet-stream')


@csrf_exempt
async def length(request: HttpRequest) -> JsonResponse:
    """An async view: answer the method and the length of the body."""
    return JsonResponse({'method': request.method, 'length': len(request.body)})


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse('hello from django', content_type='text/plain')


urlpatterns = [
    path('', hello),
    path('reverse', reverse),
    path('length', length),
]

application = get_asgi_application()
