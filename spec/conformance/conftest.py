"""RSGI conformance suite: starts the server under test from a command template and reports per requirement.

    pytest spec/conformance --server-cmd 'granian --interface rsgi --port {port} {app}'

The suite fills `{port}` with a free TCP port on 127.0.0.1 and `{app}` with the import target of its
reference application (`conformance_app:app`), and starts the command in the directory that target
imports from (spec/conformance/apps). It imports nothing from any server.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SUITE_DIR = Path(__file__).resolve().parent
if str(SUITE_DIR) not in sys.path:
    sys.path.insert(0, str(SUITE_DIR))

from rsgi_requirements import LEVELS, SPEC_PATH, Requirement, load_requirements, spec_version, version_key

APPS_DIR = SUITE_DIR / 'apps'
HOST = '127.0.0.1'
STATE_ENV = 'RSGI_CONFORMANCE_STATE'
STOP_TIMEOUT = 20.0

REQUIREMENTS = load_requirements()
SPEC_VERSION = spec_version()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup('rsgi-conformance', 'RSGI conformance suite')
    group.addoption(
        '--server-cmd',
        default=os.environ.get('RSGI_SERVER_CMD'),
        help="command that serves an RSGI app; '{port}' and '{app}' are filled in (or set RSGI_SERVER_CMD)",
    )
    group.addoption(
        '--rsgi-version',
        default=SPEC_VERSION,
        help='the spec version the server claims; requirements introduced later are skipped (default: %(default)s)',
    )
    group.addoption('--server-start-timeout', type=float, default=30.0, help='seconds to wait for the port')
    group.addoption('--report-json', metavar='PATH', help='write the per-requirement report as JSON')
    group.addoption('--report-md', metavar='PATH', help='write the per-requirement report as markdown')


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = {}
    if config.getoption('--server-cmd') is None and not config.getoption('--collect-only'):
        raise pytest.UsageError(
            "--server-cmd is required, e.g. --server-cmd 'granian --interface rsgi --port {port} {app}'"
        )
    wanted = config.getoption('--rsgi-version')
    if not wanted or not all(part.isdigit() for part in wanted.split('.')):
        raise pytest.UsageError(f'--rsgi-version: {wanted!r} is not a version like 1.6')


# -- requirements: markers, arrangement checks, version selection -------------------------------------


def item_requirements(item: pytest.Item) -> list[Requirement]:
    ids = [rid for marker in item.iter_markers('requirement') for rid in marker.args]
    return [REQUIREMENTS[rid] for rid in ids]


def _arrangement_error(item: pytest.Item) -> str | None:
    """Tests live in vX_Y/test_<area>_<level>.py matching their requirements' version and level."""
    ids = [rid for marker in item.iter_markers('requirement') for rid in marker.args]
    if not ids:
        return f'{item.nodeid}: no @pytest.mark.requirement(...)'
    unknown = [rid for rid in ids if rid not in REQUIREMENTS]
    if unknown:
        return f'{item.nodeid}: unknown requirement {", ".join(unknown)} (not in rsgi.md)'
    path = Path(str(item.path))
    version = path.parent.name.removeprefix('v').replace('_', '.')
    level = path.stem.rsplit('_', 1)[-1].upper()
    for requirement in item_requirements(item):
        if (requirement.since, requirement.level) != (version, level):
            return (
                f'{item.nodeid}: {requirement.id} is {requirement.level} since {requirement.since}, '
                f'so its tests belong in v{requirement.since.replace(".", "_")}/test_*_{requirement.level.lower()}.py'
            )
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    errors = [error for item in items if (error := _arrangement_error(item))]
    if errors:
        raise pytest.UsageError('conformance suite arrangement:\n' + '\n'.join(errors))
    claimed = version_key(config.getoption('--rsgi-version'))
    for item in items:
        requirements = item_requirements(item)
        for level in {requirement.level for requirement in requirements}:
            item.add_marker(getattr(pytest.mark, level.lower()))
        newest = max(requirements, key=lambda requirement: version_key(requirement.since))
        if version_key(newest.since) > claimed:
            item.add_marker(pytest.mark.skip(reason=f'{newest.id} is since RSGI {newest.since}, above --rsgi-version'))


# -- the server under test ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ServerUnderTest:
    """One run of the --server-cmd command serving `app` from spec/conformance/apps."""

    def __init__(self, template: str, app: str, start_timeout: float) -> None:
        self.port = free_port()
        self.app = app
        self.state_dir = Path(tempfile.mkdtemp(prefix='rsgi-conformance-'))
        self.log_path = self.state_dir / 'server.log'
        try:
            self.command = shlex.split(template.format(port=self.port, app=app, host=HOST))
        except (KeyError, IndexError, ValueError) as exc:
            raise pytest.UsageError(f'--server-cmd: cannot fill in the template: {exc!r}') from None
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerUnderTest:
        env = dict(os.environ, **{STATE_ENV: str(self.state_dir)})
        with self.log_path.open('wb') as log:
            try:
                self.proc = subprocess.Popen(
                    self.command, cwd=APPS_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as exc:
                pytest.fail(f'cannot start the server command {self.command[0]!r}: {exc}', pytrace=False)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f'the server exited with {self.proc.returncode} before serving:\n{self.log()}', pytrace=False
                )
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        pytest.fail(f'the server did not accept connections on port {self.port} in time:\n{self.log()}', pytrace=False)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')[-4000:]

    def url(self, path: str = '/') -> str:
        return f'http://{HOST}:{self.port}{path}'

    def ws_url(self, path: str = '/') -> str:
        return f'ws://{HOST}:{self.port}{path}'

    def state(self, name: str, timeout: float = 10.0) -> object:
        """What the reference app recorded under `name` (apps/state.py), waiting up to `timeout` for it."""
        path = self.state_dir / f'{name}.json'
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f'the app recorded no {name!r} within {timeout} s')
            time.sleep(0.05)
        return json.loads(path.read_text())

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait; kill the process group when it does not stop in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


ServerFactory = Callable[[str], ServerUnderTest]


@pytest.fixture(scope='session')
def _servers(request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    started: list[ServerUnderTest] = []
    config = request.config

    def start(app: str) -> ServerUnderTest:
        server = ServerUnderTest(config.getoption('--server-cmd'), app, config.getoption('--server-start-timeout'))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


class SharedServer:
    """The session's server for `conformance_app:app`, started again when a test left it dead.

    A server that crashes on one test (a panic in a worker) must not fail every later test, so before
    each test that uses it the suite checks that the process is alive and accepting connections, and
    starts a new one if not. Each restart is reported at the end, with the test that preceded it.
    """

    def __init__(self, start: ServerFactory) -> None:
        self._start = start
        self.current = start('conformance_app:app')
        self.restarts: list[str] = []

    def ensure_running(self, nodeid: str) -> None:
        proc = self.current.proc
        alive = proc is not None and proc.poll() is None
        if alive:
            try:
                socket.create_connection((HOST, self.current.port), timeout=2).close()
            except OSError:
                alive = False
        if not alive:
            code = None if proc is None else proc.poll()
            self.restarts.append(f'before {nodeid}: the server was down (exit code {code}); log:\n{self.current.log()}')
            self.current.stop()
            self.current = self._start('conformance_app:app')

    def __getattr__(self, name: str) -> object:
        return getattr(self.current, name)


_SHARED = pytest.StashKey[SharedServer]()


@pytest.fixture(scope='session')
def server(_servers: ServerFactory, pytestconfig: pytest.Config) -> SharedServer:
    """The server under test, serving the reference app `conformance_app:app` (shared by the session)."""
    shared = SharedServer(_servers)
    pytestconfig.stash[_SHARED] = shared
    return shared


@pytest.fixture(autouse=True)
def _server_alive(request: pytest.FixtureRequest) -> None:
    """Restart the shared server before a test that uses it, if an earlier test left it dead."""
    shared = request.config.stash.get(_SHARED, None)
    if shared is not None and 'server' in request.fixturenames:
        shared.ensure_running(request.node.nodeid)


@pytest.fixture(scope='module')
def server_factory(_servers: ServerFactory) -> ServerFactory:
    """Start another server for `app` (an import target in apps/); stopped at the end of the session."""
    return _servers


# -- the per-requirement report -----------------------------------------------------------------------------

_RESULTS = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    results = item.config.stash[_RESULTS]
    outcome = 'failed' if report.failed else 'skipped' if report.skipped else 'passed'
    if report.when == 'call' or outcome != 'passed':
        previous = results.get(item.nodeid)
        if previous is None or previous['outcome'] == 'passed':
            message = '' if outcome == 'passed' else _short(report)
            results[item.nodeid] = {'outcome': outcome, 'message': message}
    return report


def _short(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix('Skipped: ')
    text = getattr(report, 'longreprtext', '') or ''
    lines = [line for line in text.splitlines() if line.startswith('E ')]
    return (lines[0][1:].strip() if lines else text.strip().splitlines()[-1] if text.strip() else '')[:300]


def _requirement_rows(session: pytest.Session) -> list[dict]:
    results = session.config.stash[_RESULTS]
    tests: dict[str, list[dict]] = {rid: [] for rid in REQUIREMENTS}
    for item in session.items:
        for requirement in item_requirements(item):
            outcome = results.get(item.nodeid, {'outcome': 'not run', 'message': ''})
            tests[requirement.id].append({'test': item.nodeid, **outcome})
    rows = []
    for rid, requirement in REQUIREMENTS.items():
        outcomes = {test['outcome'] for test in tests[rid]}
        if not tests[rid]:
            status = 'untested'
        elif 'failed' in outcomes:
            status = 'failed'
        elif outcomes == {'passed'} or outcomes == {'passed', 'skipped'}:
            status = 'passed'
        elif 'not run' in outcomes:
            status = 'not run'
        else:
            status = 'skipped'
        rows.append(
            {'id': rid, 'level': requirement.level, 'since': requirement.since, 'status': status, 'tests': tests[rid]}
        )
    return rows


def _totals(rows: list[dict]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        level = totals.setdefault(row['level'], {})
        level[row['status']] = level.get(row['status'], 0) + 1
    return {level: totals[level] for level in LEVELS if level in totals}


def _markdown(report: dict, spec_link: str) -> str:
    lines = [
        f'# RSGI {report["spec_version"]} conformance report',
        '',
        f'Server command: `{report["server_cmd"]}`',
        '',
        '| Level | ' + ' | '.join(STATUSES) + ' |',
        '|---|' + '---|' * len(STATUSES),
    ]
    for level, counts in report['totals'].items():
        lines.append(f'| {level} | ' + ' | '.join(str(counts.get(status, 0)) for status in STATUSES) + ' |')
    lines += ['', '| Requirement | Level | Since | Status | Detail |', '|---|---|---|---|---|']
    for row in report['requirements']:
        detail = '; '.join(
            f'{test["test"].rsplit("::", 1)[-1]}: {test["message"]}' for test in row['tests'] if test['message']
        )
        detail = detail.replace('|', '\\|').replace('\n', ' ')
        lines.append(
            f'| [{row["id"]}]({spec_link}#{row["id"]}) | {row["level"]} | {row["since"]} | {row["status"]} | {detail} |'
        )
    return '\n'.join(lines) + '\n'


STATUSES = ('passed', 'failed', 'skipped', 'untested', 'not run')


def _report(session: pytest.Session) -> dict:
    rows = _requirement_rows(session)
    return {
        'spec_version': SPEC_VERSION,
        'claimed_version': session.config.getoption('--rsgi-version'),
        'server_cmd': session.config.getoption('--server-cmd'),
        'totals': _totals(rows),
        'requirements': rows,
        'server_restarts': [restart.splitlines()[0] for restart in _restarts(session.config)],
    }


def _restarts(config: pytest.Config) -> list[str]:
    shared = config.stash.get(_SHARED, None)
    return [] if shared is None else shared.restarts


def pytest_sessionfinish(session: pytest.Session) -> None:
    report = _report(session)
    session.config.stash[_REPORT] = report
    if path := session.config.getoption('--report-json'):
        Path(path).write_text(json.dumps(report, indent=2) + '\n')
    if path := session.config.getoption('--report-md'):
        spec_link = os.path.relpath(SPEC_PATH, Path(path).resolve().parent)
        Path(path).write_text(_markdown(report, spec_link))


_REPORT = pytest.StashKey[dict]()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report is None:
        return
    terminalreporter.section(f'RSGI {report["spec_version"]} requirements')
    for level, counts in report['totals'].items():
        summary = ', '.join(f'{counts[status]} {status}' for status in STATUSES if counts.get(status))
        terminalreporter.write_line(f'{level:6} {summary}')
    for row in report['requirements']:
        if row['status'] in {'failed', 'untested'}:
            terminalreporter.write_line(f'{row["status"]:8} {row["level"]:6} {row["id"]}')
    for restart in _restarts(config):
        terminalreporter.write_line(f'server restarted {restart}')
