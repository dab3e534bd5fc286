"""Checks shared by the RSGI and ASGI suites: the asyncio task an app's request runs in.

Both test apps have `/task` (reports `asyncio.current_task()` before and after an optional wait,
its name, the state of its coroutine, and a context variable an earlier request may have leaked)
and `/task-factory` (installs or removes a counting task factory).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

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


def assert_each_request_runs_in_its_own_task(client: httpx.Client, url) -> None:
    """An app sees a current task, named, in its first step and after waiting (the same task), and a
    context variable set by one request is not seen by the next (each runs in its own context)."""
    for wait in ('', '0', '0.01'):
        for number in range(3):
            assert task_report(client, url(f'/task?wait={wait}&mark=request-{number}')) == EXPECTED


def assert_waiting_requests_run_in_different_tasks(url) -> None:
    """Requests waiting at the same time are in different tasks, each the same before and after."""
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda _: httpx.get(url('/task?wait=0.3'), timeout=30).json(), range(4)))
    assert all(report['same_task'] and report['leaked'] is None for report in reports)
    assert len({report['task_id'] for report in reports}) == 4


def assert_a_task_factory_is_honoured(client: httpx.Client, url) -> None:
    """A task factory the app installs on the loop makes the tasks of later requests."""
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
