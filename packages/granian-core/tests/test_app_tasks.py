"""The asyncio task an RSGI or ASGI app's request runs in: its first step and what follows run
in one task (`asyncio.current_task()`, named `granian-app`), each request in its own context,
requests waiting at once in different tasks; a task factory the app installs is honoured.

Both interfaces' test apps have `/task` (reports `asyncio.current_task()` before and after an
optional wait, its name, the state of its coroutine, and a context variable an earlier request may
have leaked) and `/task-factory` (installs or removes a counting task factory).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests_support.server import RunningServer

#: The name every app task carries (`asyncio.Task.get_name()`).
APP_TASK_NAME = 'granian-app'

#: Stands for the number in asyncio's default task names.
ANY_NUMBER = '<n>'

EXPECTED = {'task': True, 'name': APP_TASK_NAME, 'leaked': None, 'same_task': True, 'coroutine': 'CORO_RUNNING'}


def task_report(client: httpx.Client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200
    report = response.json()
    del report['task_id']
    if report['name'].startswith('Task-') and report['name'][5:].isdigit():
        report['name'] = 'Task-' + ANY_NUMBER
    return report


@pytest.fixture(scope='module', params=['rsgi', 'asgi'])
def app_server(request: pytest.FixtureRequest, server_factory, repo_root) -> RunningServer:
    """A worker serving the interface's test app (`rsgi_app:app` or `asgi_app:app`)."""
    interface = request.param
    apps = repo_root / 'packages' / f'granian-{interface}' / 'tests' / 'apps'
    return server_factory(f'{interface}_app:app', working_dir=apps, interface=interface)


def test_each_request_runs_in_its_own_task(app_server, http_client: httpx.Client) -> None:
    """An app sees a current task, named, in its first step and after waiting (the same task), and a
    context variable set by one request is not seen by the next (each runs in its own context)."""
    for wait in ('', '0', '0.01'):
        for number in range(3):
            url = app_server.url(f'/task?wait={wait}&mark=request-{number}')
            assert task_report(http_client, url) == EXPECTED


def test_requests_waiting_at_once_run_in_different_tasks(app_server) -> None:
    """Requests waiting at the same time are in different tasks, each the same before and after."""
    url = app_server.url('/task?wait=0.3')
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda _: httpx.get(url, timeout=30).json(), range(4)))
    assert all(report['same_task'] and report['leaked'] is None for report in reports)
    assert len({report['task_id'] for report in reports}) == 4


def test_a_task_factory_the_app_installs_makes_the_tasks(app_server, http_client: httpx.Client) -> None:
    """A task factory the app installs on the loop makes the tasks of later requests."""
    client, url = http_client, app_server.url
    assert client.get(url('/task-factory?install=1')).json() == {'factory_calls': 0}
    try:
        for wait in ('', '0'):
            # The factory names its tasks (this one leaves asyncio's `Task-N`).
            assert task_report(client, url(f'/task?wait={wait}')) == {**EXPECTED, 'name': 'Task-' + ANY_NUMBER}
    finally:
        removed = client.get(url('/task-factory?install=0')).json()
    # The two /task requests and the request that removed the factory.
    assert removed == {'factory_calls': 3}
    assert task_report(client, url('/task')) == EXPECTED
    assert client.get(url('/task-factory?install=0')).json() == {'factory_calls': 3}
