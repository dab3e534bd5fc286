"""How the server calls the application: entry points and concurrency (rsgi.md section 2)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from clients import first_message, key, request_ok


@pytest.fixture(scope='module')
def plain_server(server_factory):
    """A server for `conformance_app:plain_app`, a plain coroutine function without `__rsgi__`."""
    return server_factory('conformance_app:plain_app')


@pytest.mark.requirement('app-callable')
def test_a_plain_function_is_called_for_a_request(plain_server):
    assert request_ok(plain_server, '/entry').text == 'function'


@pytest.mark.requirement('app-callable')
def test_a_plain_function_is_called_for_a_websocket(plain_server):
    assert first_message(plain_server, '/ws/entry') == 'function'


@pytest.mark.requirement('app-callable')
def test_the_returned_awaitable_is_awaited_to_completion(plain_server):
    name = key()
    response = httpx.get(plain_server.url(f'/app/after-response?key={name}'), timeout=10)
    assert response.text == 'answered'
    # The route goes on after answering (an await, then a record): the server ran the coroutine to its end.
    assert plain_server.state(f'app-after-response-{name}', timeout=5) is True


@pytest.mark.requirement('app-rsgi-method')
def test_rsgi_method_is_preferred_for_a_request(server):
    assert request_ok(server, '/entry').text == 'rsgi', (
        'the server called the app object itself instead of app.__rsgi__'
    )


@pytest.mark.requirement('app-rsgi-method')
def test_rsgi_method_is_preferred_for_a_websocket(server):
    message = first_message(server, '/ws/entry')
    assert message == 'rsgi', 'the server called the app object itself instead of app.__rsgi__'


@pytest.mark.requirement('app-concurrency')
def test_a_waiting_request_does_not_hold_up_another(server):
    name = key()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(httpx.get, server.url(f'/app/wait?key={name}'), timeout=15)
        # The first request is inside the app, awaiting an event only the second request sets.
        assert server.state(f'app-waiting-{name}', timeout=5) is True
        setter = httpx.get(server.url(f'/app/set?key={name}'), timeout=4)
        assert setter.text == 'ok'
        first = waiting.result(timeout=10)
    assert first.text == 'set', 'the second request was not served while the first one was waiting'
