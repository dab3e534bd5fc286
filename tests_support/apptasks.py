"""Checks shared by the RSGI and ASGI suites: the asyncio task an app's request runs in.

Both test apps have `/task` (reports `asyncio.current_task()`, its name, and a context variable an
earlier request may have leaked) and `/task-factory` (installs or removes a counting task factory).
"""

from __future__ import annotations

import httpx

#: The name every app task carries (`asyncio.Task.get_name()`).
APP_TASK_NAME = 'granian-app'


def assert_each_request_runs_in_its_own_task(client: httpx.Client, url) -> None:
    """An app sees a current task, named, in its first step and after a suspension, and a context
    variable set by one request is not seen by the next (each task runs in its own context)."""
    for wait in ('', '1'):
        for number in range(3):
            response = client.get(url(f'/task?wait={wait}&mark=request-{number}'))
            assert response.status_code == 200
            assert response.json() == {'task': True, 'name': APP_TASK_NAME, 'leaked': None, 'coroutine': 'CORO_RUNNING'}


def assert_a_task_factory_is_honoured(client: httpx.Client, url) -> None:
    """A task factory the app installs on the loop makes the tasks of later requests."""
    assert client.get(url('/task-factory?install=1')).json() == {'factory_calls': 0}
    try:
        for _ in range(3):
            assert client.get(url('/task')).json()['task'] is True
    finally:
        removed = client.get(url('/task-factory?install=0')).json()
    # The three /task requests and the request that removed the factory.
    assert removed == {'factory_calls': 4}
    after = client.get(url('/task')).json()
    assert after == {'task': True, 'name': APP_TASK_NAME, 'leaked': None, 'coroutine': 'CORO_RUNNING'}
    assert client.get(url('/task-factory?install=0')).json() == {'factory_calls': 4}
