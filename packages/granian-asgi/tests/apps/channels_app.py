"""A Django Channels application served by granian in the ASGI tests: a sync and an async consumer, unchanged."""

from __future__ import annotations

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=['*'],
    ROOT_URLCONF=__name__,
    SECRET_KEY='granian-tests-only-not-a-secret',
    INSTALLED_APPS=['channels'],
    DATABASES={},
    USE_TZ=True,
)
django.setup()

# These imports need the settings configured above.
from channels.generic.websocket import AsyncJsonWebsocketConsumer, WebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.http import HttpResponse
from django.urls import path


class EchoConsumer(WebsocketConsumer):
    """A synchronous consumer: echoes text with a prefix and bytes as they are."""

    def connect(self) -> None:
        self.accept()

    def receive(self, text_data=None, bytes_data=None) -> None:
        if text_data is not None:
            self.send(text_data='echo:' + text_data)
        else:
            self.send(bytes_data=bytes_data)


class RoomConsumer(AsyncJsonWebsocketConsumer):
    """An async JSON consumer that reads its URL route and closes on request."""

    async def connect(self) -> None:
        await self.accept()

    async def receive_json(self, content, **kwargs) -> None:
        if content.get('close'):
            await self.close(code=4003)
            return
        await self.send_json({'room': self.scope['url_route']['kwargs']['room'], 'got': content})


def index(request) -> HttpResponse:
    return HttpResponse('channels http')


urlpatterns = [path('', index)]

app = ProtocolTypeRouter(
    {
        'http': get_asgi_application(),
        'websocket': URLRouter(
            [path('ws/echo/', EchoConsumer.as_asgi()), path('ws/room/<str:room>/', RoomConsumer.as_asgi())]
        ),
    }
)
