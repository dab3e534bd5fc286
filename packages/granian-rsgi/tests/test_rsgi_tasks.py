"""The asyncio task an RSGI app runs in: one per request, named, with its own context; a task
factory the app installs is honoured. From Python 3.12 the task starts eagerly."""

from __future__ import annotations

import httpx

from tests_support.apptasks import (
    assert_a_task_factory_is_honoured,
    assert_each_request_runs_in_its_own_task,
    assert_waiting_requests_run_in_different_tasks,
)


def test_each_request_runs_in_its_own_task(rsgi_server, http_client: httpx.Client):
    assert_each_request_runs_in_its_own_task(http_client, rsgi_server.url)


def test_a_task_factory_the_app_installs_makes_the_tasks(rsgi_server, http_client: httpx.Client):
    assert_a_task_factory_is_honoured(http_client, rsgi_server.url)


def test_requests_waiting_at_once_run_in_different_tasks(rsgi_server):
    assert_waiting_requests_run_in_different_tasks(rsgi_server.url)
