"""The application's lifecycle hooks __rsgi_init__ and __rsgi_del__ (rsgi.md section 2)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from clients import request_ok


@pytest.mark.requirement('app-init')
def test_init_is_called_with_the_loop_before_it_runs(server):
    init = server.state('init', timeout=10)
    assert init['running'] is False, 'the loop was already running during __rsgi_init__'
    assert init['calls'] == 1, 'one worker: __rsgi_init__ is called once'


@pytest.mark.requirement('app-init')
def test_work_scheduled_in_init_runs(server):
    assert server.state('init-task', timeout=10) == {'ran': True}


@pytest.mark.requirement('app-init')
def test_requests_run_on_the_loop_given_to_init(server):
    assert request_ok(server, '/lifecycle').text == 'same', 'requests do not run on the loop __rsgi_init__ received'


@pytest.mark.requirement('app-init')
def test_init_is_called_before_the_first_request(server_factory):
    fresh = server_factory('conformance_app:app')
    try:
        response = httpx.get(fresh.url('/lifecycle'), timeout=10)
        assert fresh.state('first-call', timeout=5) == {'after_init': True}
        assert response.text == 'same'
    finally:
        fresh.stop()


@pytest.mark.requirement('app-del')
def test_del_is_called_on_graceful_stop_with_the_init_loop(server_factory):
    fresh = server_factory('conformance_app:app')
    assert httpx.get(fresh.url('/lifecycle'), timeout=10).text == 'same'
    fresh.stop()
    deleted = fresh.state('del', timeout=2)
    assert deleted['same_loop'] is True, '__rsgi_del__ did not get the loop __rsgi_init__ received'
    assert deleted['running'] is False, 'the loop was still running during __rsgi_del__'
    assert deleted['cleanup'] == 'done', 'loop.run_until_complete(...) did not work in __rsgi_del__'


@pytest.mark.requirement('app-del')
def test_del_is_called_after_the_request_in_flight(server_factory):
    fresh = server_factory('conformance_app:app')
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(_get_or_error, fresh.url('/app/slow?key=stopped&seconds=1'))
        assert fresh.state('app-slow-started-stopped', timeout=5) is True
        fresh.stop()  # SIGTERM while the request sleeps inside the app
        in_flight.result(timeout=15)
    deleted = fresh.state('del', timeout=2)
    try:
        slow = fresh.state('app-slow-stopped', timeout=1)
    except AssertionError:
        return  # the server gave the request up without cancelling it: nothing to order
    assert slow['outcome'] in {'finished', 'cancelled'}
    assert deleted['at'] >= slow['at'], '__rsgi_del__ ran while a request was still in the app'


def _get_or_error(url: str) -> object:
    try:
        return httpx.get(url, timeout=10)
    except httpx.HTTPError as exc:
        return exc
