"""Load generators (wrk for HTTP/1.1, h2load for HTTP/2 and for counted runs), their parsing, and checks.

Every run is pinned to `LOAD_CPU` and bounded in time: the tool's own duration plus a margin, after
which the tool is killed and the run counts as failed.
"""

from __future__ import annotations

import http.client
import re
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .scenarios import Scenario, expected_size, payload
from .servers import HOST, LOAD_CPU, connect

#: Seconds a load tool may run past its planned duration before it is killed.
MARGIN = 20.0
WRK_UNITS = {'us': 1e-3, 'ms': 1.0, 's': 1e3, 'm': 60e3}


class LoadError(RuntimeError):
    """A load tool failed, overran its time, or printed something we cannot read."""


@dataclass
class LoadResult:
    """One measured run."""

    rps: float
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    errors: int
    #: CPU time the server used during the run (set by the runner), in seconds.
    server_cpu_s: float | None = None
    #: CPU time the load generator used, and the wall time it ran, in seconds.
    client_cpu_s: float | None = None
    client_wall_s: float | None = None

    @property
    def rps_per_cpu(self) -> float | None:
        """Requests per second of server CPU time."""
        return self.requests / self.server_cpu_s if self.server_cpu_s else None

    @property
    def client_busy(self) -> float | None:
        """Share of its core the load generator used (near 1.0: the client, not the server, set the pace)."""
        return self.client_cpu_s / self.client_wall_s if self.client_cpu_s and self.client_wall_s else None

    def timed(self, tool: ToolRun) -> LoadResult:
        """This result with the load generator's CPU and wall time from `tool`."""
        self.client_cpu_s, self.client_wall_s = round(tool.cpu_s, 3), round(tool.wall_s, 3)
        return self

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain data for the results file."""
        return asdict(self)


class Workspace:
    """Request bodies and wrk scripts for the POST scenarios, in a temporary directory."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix='granian-bench-')
        self.path = Path(self._directory.name)

    def body_file(self, size: int) -> Path:
        """A file holding the request body of `size` bytes."""
        path = self.path / f'body-{size}.bin'
        if not path.exists():
            path.write_bytes(payload(size))
        return path

    def wrk_script(self, scenario: Scenario) -> Path | None:
        """A Lua script that makes wrk send the scenario's request body (None for bodiless requests)."""
        if not scenario.request_size:
            return None
        path = self.path / f'{scenario.name}.lua'
        if not path.exists():
            body = self.body_file(scenario.request_size)
            path.write_text(
                f'wrk.method = "{scenario.method}"\n'
                'wrk.headers["Content-Type"] = "application/octet-stream"\n'
                f'local file = assert(io.open("{body}", "rb"))\n'
                'wrk.body = file:read("*all")\n'
                'file:close()\n'
            )
        return path

    def certificate(self) -> tuple[Path, Path]:
        """A self-signed certificate for 127.0.0.1 and its key (PEM), made once with openssl."""
        cert, key = self.path / 'cert.pem', self.path / 'key.pem'
        if not cert.exists():
            subprocess.run(
                ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                 '-subj', f'/CN={HOST}', '-addext', f'subjectAltName=IP:{HOST}', '-days', '2',
                 '-keyout', str(key), '-out', str(cert)],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        return cert, key

    def server_arguments(self, tls: bool) -> tuple[str, ...]:
        """The flags that make a server serve HTTPS with `certificate()` (none when not `tls`)."""
        if not tls:
            return ()
        cert, key = self.certificate()
        return ('--ssl-certificate', str(cert), '--ssl-keyfile', str(key))

    def close(self) -> None:
        """Remove the temporary files."""
        self._directory.cleanup()


def _url(scenario: Scenario, port: int) -> str:
    return f'{"https" if scenario.tls else "http"}://{HOST}:{port}{scenario.path}'


@dataclass
class ToolRun:
    """What a load tool printed and what it cost."""

    stdout: str
    #: CPU time (user + system) of the tool.
    cpu_s: float
    wall_s: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_pinned(argv: list[str], timeout: float) -> ToolRun:
    """Runs a load tool on the load CPU; LoadError when it fails or overruns.

    Its CPU time is the growth of this process's reaped-children usage across the run: `taskset`
    execs the tool in place, and the servers (also children) are reaped only when they stop.
    """
    command = ['taskset', '-c', str(LOAD_CPU), *argv]
    cpu_before, began = _children_cpu(), time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise LoadError(f'{argv[0]} did not finish within {timeout:.0f} s') from None
    if done.returncode != 0:
        raise LoadError(f'{argv[0]} exited with {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}')
    return ToolRun(done.stdout, _children_cpu() - cpu_before, time.monotonic() - began)


def _wrk_time(text: str) -> float:
    match = re.fullmatch(r'([\d.]+)(us|ms|s|m)', text)
    if match is None:
        raise LoadError(f'unreadable wrk latency {text!r}')
    return float(match.group(1)) * WRK_UNITS[match.group(2)]


def run_wrk(workspace: Workspace, scenario: Scenario, port: int, connections: int, seconds: float) -> LoadResult:
    """HTTP/1.1 keep-alive load with wrk (one thread: it has one CPU)."""
    duration = max(1, round(seconds))
    argv = ['wrk', '-t1', f'-c{connections}', f'-d{duration}s', '--latency', '--timeout', '10s']
    script = workspace.wrk_script(scenario)
    if script is not None:
        argv += ['-s', str(script)]
    if scenario.reconnect:
        argv += ['-H', 'Connection: close']
    tool = run_pinned([*argv, _url(scenario, port)], duration + MARGIN)
    out = tool.stdout
    rps = re.search(r'^Requests/sec:\s+([\d.]+)', out, re.MULTILINE)
    total = re.search(r'^\s*(\d+) requests in', out, re.MULTILINE)
    if rps is None or total is None:
        raise LoadError(f'unreadable wrk output: {out[-300:]}')
    percentiles = dict(re.findall(r'^\s+(50|99)%\s+(\S+)', out, re.MULTILINE))
    errors = sum(int(n) for n in re.findall(r'(?:connect|read|write|timeout) (\d+)', out))
    non_2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return LoadResult(
        rps=float(rps.group(1)),
        p50_ms=_wrk_time(percentiles['50']) if '50' in percentiles else None,
        p99_ms=_wrk_time(percentiles['99']) if '99' in percentiles else None,
        requests=int(total.group(1)),
        errors=errors,
    ).timed(tool)


def _h2load_argv(workspace: Workspace, scenario: Scenario, http1: bool, connections: int) -> list[str]:
    argv = ['h2load', '-t1', f'-c{connections}']
    argv += ['--h1', f'-m{scenario.pipeline}'] if http1 else [f'-m{scenario.streams}']
    if scenario.request_size:
        argv += ['-d', str(workspace.body_file(scenario.request_size)), '-H', 'content-type: application/octet-stream']
    return argv


def _h2load_summary(out: str) -> tuple[float, int, int]:
    rps = re.search(r'finished in [\d.]+[mu]?s, ([\d.]+) req/s', out)
    requests = re.search(
        r'^requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout',
        out,
        re.MULTILINE,
    )
    statuses = re.search(r'^status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx', out, re.MULTILINE)
    if rps is None or requests is None or statuses is None:
        raise LoadError(f'unreadable h2load output: {out[-300:]}')
    done, failed, errored, timed_out = (int(value) for value in requests.groups())
    errors = failed + errored + timed_out + sum(int(value) for value in statuses.groups())
    return float(rps.group(1)), done, errors


def run_h2load(workspace: Workspace, scenario: Scenario, port: int, connections: int, seconds: float) -> LoadResult:
    """Timed load with h2load (HTTP/2 prior knowledge, or HTTP/1.1 for HTTP/1.1 scenarios); latency
    percentiles from its log file."""
    argv = [*_h2load_argv(workspace, scenario, not scenario.http2, connections), f'-D{int(seconds * 1000)}ms']
    return _run_h2load_logged(workspace, scenario, argv, port, seconds + MARGIN)


#: A paced run opens its connections in steps of this many milliseconds.
PACE_STEP_MS = 10
#: A paced run lasts at least this long: the server uses a fraction of its core at the offered rate,
#: and its CPU time, read in 10 ms ticks, needs a few seconds of it to be exact to about 1%.
PACE_MIN_SECONDS = 4.0


def run_h2load_paced(
    workspace: Workspace, scenario: Scenario, port: int, connections: int, seconds: float
) -> LoadResult:
    """New connections at `scenario.connection_rate` per second for `seconds`, opened in steps of
    `PACE_STEP_MS`, one request each (h2load -r), with `Connection: close` when the scenario
    reconnects (the server closes, as a client that sends it expects); `connections` is not used. Every server gets the same offered load, so server CPU per request compares what each
    spends on it; at full speed the load generator's core sets the pace, and the faster server, idle
    between arrivals, pays more wake-ups per request. Latency percentiles from the log file (request
    to response, after the handshake). Runs for at least `PACE_MIN_SECONDS`."""
    return _paced(workspace, scenario, port, max(seconds, PACE_MIN_SECONDS))


def _paced(workspace: Workspace, scenario: Scenario, port: int, seconds: float) -> LoadResult:
    total = max(1, round(scenario.connection_rate * seconds))
    per_step = max(1, scenario.connection_rate * PACE_STEP_MS // 1000)
    argv = ['h2load', '-t1', f'-c{total}', f'-n{total}', f'-r{per_step}', f'--rate-period={PACE_STEP_MS}ms']
    if not scenario.http2:
        argv.append('--h1')
        if scenario.reconnect:
            argv += ['-H', 'Connection: close']
    return _run_h2load_logged(workspace, scenario, argv, port, seconds + MARGIN)


def _run_h2load_logged(
    workspace: Workspace, scenario: Scenario, argv: list[str], port: int, timeout: float
) -> LoadResult:
    log = workspace.path / f'h2load-{scenario.name}.log'
    tool = run_pinned([*argv, '--log-file', str(log), _url(scenario, port)], timeout)
    rps, done, errors = _h2load_summary(tool.stdout)
    latencies = sorted(int(fields[2]) for line in log.read_text().splitlines() if len(fields := line.split('\t')) >= 3)
    log.unlink()
    p50 = p99 = None
    if latencies:
        p50 = latencies[len(latencies) // 2] / 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000
    return LoadResult(rps=rps, p50_ms=p50, p99_ms=p99, requests=done, errors=errors).timed(tool)


def run_counted(
    workspace: Workspace, scenario: Scenario, port: int, connections: int, requests: int, timeout: float
) -> LoadResult:
    """Exactly `requests` requests with h2load (HTTP/1.1 for HTTP/1.1 scenarios); no latency figures."""
    argv = [*_h2load_argv(workspace, scenario, not scenario.http2, connections), f'-n{requests}']
    tool = run_pinned([*argv, _url(scenario, port)], timeout)
    rps, done, errors = _h2load_summary(tool.stdout)
    return LoadResult(rps=rps, p50_ms=None, p99_ms=None, requests=done, errors=errors).timed(tool)


def warm_up(workspace: Workspace, scenario: Scenario, port: int, connections: int, seconds: float) -> LoadResult:
    """A timed run whose figures are thrown away (h2load: it takes sub-second durations)."""
    if DRIVERS[scenario.driver] is run_h2load_paced:
        return _paced(workspace, scenario, port, seconds)
    return run_h2load(workspace, scenario, port, connections, seconds)


Driver = Callable[[Workspace, Scenario, int, int, float], LoadResult]

#: Load drivers by the name a scenario gives in `Scenario.driver`.
DRIVERS: dict[str, Driver] = {'wrk': run_wrk, 'h2load': run_h2load, 'h2load-paced': run_h2load_paced}


def check(workspace: Workspace, scenario: Scenario, port: int) -> str | None:
    """Send the scenario's request once and verify the answer; None when correct, else what was wrong."""
    if scenario.http2:
        try:
            result = run_counted(workspace, scenario, port, 1, 4, timeout=15)
        except LoadError as error:
            return str(error)
        return None if result.errors == 0 and result.requests == 4 else 'no h2c (HTTP/2 prior knowledge) answer'
    body = payload(scenario.request_size) if scenario.request_size else None
    connection = connect(port, 10, scenario.tls)
    try:
        headers = {'Content-Type': 'application/octet-stream'} if body is not None else {}
        connection.request(scenario.method, scenario.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as error:
        return f'request failed: {error!r}'
    finally:
        connection.close()
    if response.status != 200:
        return f'status {response.status}'
    if len(data) != expected_size(scenario):
        return f'{len(data)} body bytes instead of {expected_size(scenario)}'
    if scenario.echoes and data != body:
        return 'the echoed body differs from the request body'
    return None


def median(values: list[float]) -> float | None:
    """Median of the values that exist."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None
