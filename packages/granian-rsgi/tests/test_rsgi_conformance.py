"""The RSGI conformance suite (spec/conformance) run against our server, and against upstream Granian 2.8.1.

Our server must meet every requirement. Upstream Granian 2.8.1 (from PyPI, in .venv-upstream) must fail
exactly the requirements in UPSTREAM_DEVIATIONS, each explained with the spec text it breaks in
spec/conformance/results/granian-2.8.1.md: the suite tests the spec, not our implementation.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests_support.conformance import (
    REPO_ROOT,
    our_server_cmd,
    run_suite,
    statuses,
    upstream_granian,
    upstream_server_cmd,
)

#: Requirements upstream Granian 2.8.1 does not meet (why: spec/conformance/results/granian-2.8.1.md).
UPSTREAM_DEVIATIONS = {'http-error-after-start', 'ws-reject', 'ws-no-accept', 'ws-close'}


@pytest.mark.timeout(600)
def test_our_server_meets_every_requirement(tmp_path: Path):
    result, report = run_suite(our_server_cmd(), tmp_path / 'report.json')
    not_met = {rid: status for rid, status in statuses(report).items() if status != 'passed'}
    assert not_met == {}, result.stdout[-6000:]
    assert result.returncode == 0, result.stdout[-6000:]


@pytest.mark.timeout(900)
def test_upstream_granian_deviates_only_where_documented(tmp_path: Path):
    result, report = run_suite(upstream_server_cmd(upstream_granian()), tmp_path / 'report.json')
    failed = {rid for rid, status in statuses(report).items() if status == 'failed'}
    assert failed == UPSTREAM_DEVIATIONS, result.stdout[-6000:]
    assert 'untested' not in statuses(report).values()


def spec_example(section_title: str) -> str:
    """The first python code block after `section_title` in spec/rsgi.md."""
    text = (REPO_ROOT / 'spec' / 'rsgi.md').read_text(encoding='utf-8')
    after = text[text.index(section_title) :]
    start = after.index('```python\n') + len('```python\n')
    return after[start : after.index('```', start)]


def test_the_spec_example_app_works_as_written(server_factory, tmp_path: Path):
    (tmp_path / 'main.py').write_text(spec_example('## 8. A complete application'))
    server = server_factory('main:app', working_dir=tmp_path)
    response = httpx.post(server.url('/?granian'), content=b'12345', timeout=10)
    assert response.status_code == 200
    assert response.text == 'hello, granian: 5 bytes received'
    with connect(f'ws://127.0.0.1:{server.port}/', open_timeout=10) as websocket:
        websocket.send('text')
        assert websocket.recv(timeout=10) == 'text'
        websocket.send(b'\x00bytes')
        assert websocket.recv(timeout=10) == b'\x00bytes'
