"""The robustness suite in one command: runs the tests that attack the server (malformed input, abuse,
faults, slow clients) and prints one table row per kind of attack: what was tried, how many cases,
and whether every case held.

    python tools/robustness.py                 # run the suite (about 5 minutes on 2 cores), print the table
    python tools/robustness.py --from-log F    # no run: read a pytest --report-log file (what CI does)
    python tools/robustness.py --markdown F    # also write the table as markdown

The rows are defined below as pytest node id prefixes; a row without tests is printed as not covered,
with the reason. docs/robustness.md explains how to read the table. Exit status: 0 when every case
held, 1 when one failed, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = 'packages/granian-core/tests/'
RSGI = 'packages/granian-rsgi/tests/'
ASGI = 'packages/granian-asgi/tests/'
WSGI = 'packages/granian-wsgi/tests/'


@dataclass
class Row:
    """One kind of attack or fault: the tests that try it (node id prefixes), or why there are none."""

    name: str
    tried: str
    tests: list[str] = field(default_factory=list)
    gap: str = ''


ROWS = [
    Row(
        'HTTP/1.1 parsing',
        'RFC 9112 corpus: bare LF, obs-fold, CL+TE, duplicate/list/signed CL, NUL/CTL/non-ASCII in target '
        'and headers, bad versions (505), space before colon, authority/asterisk forms, oversize head (431), '
        'a request target over 64 KiB (414), '
        'more than 100 headers (431), broken chunk lines and trailers; valid edge cases whole and byte by byte',
        [
            CORE + 'test_request_validation.py::',
            CORE + 'test_http_settings.py::test_buffer_size_bounds_the_request_head',
            CORE + 'test_http_semantics.py::test_more_headers_than_the_server_accepts_get_431',
            RSGI + 'test_rsgi_connections.py::test_malformed_request_is_400_and_server_keeps_serving',
        ],
    ),
    Row(
        'Request smuggling',
        'CL.TE, TE.TE, CL.CL, Transfer-Encoding mutations (case, lists, duplicates, chunked not last), '
        'pipelined requests after a refused one never run',
        [
            CORE + 'test_request_validation.py::test_smuggling',
            CORE + 'test_request_validation.py::test_requests_before_a_refused_one',
        ],
    ),
    Row(
        'Request body limit',
        '--max-request-body-size: declared length over the limit (413 before the app, with and without '
        'Expect: 100-continue), chunked and HTTP/2 bodies that outgrow it, an app that handles the failed read',
        [
            CORE + 'test_http_semantics.py::test_a_body_at_the_limit',
            CORE + 'test_http_semantics.py::test_a_declared_length',
            CORE + 'test_http_semantics.py::test_expect_100_continue_over_the_limit',
            CORE + 'test_http_semantics.py::test_a_chunked_body',
            CORE + 'test_http_semantics.py::test_an_app_that_handles_the_failed_read',
            CORE + 'test_http_semantics.py::test_http2_bodies_over_the_limit',
        ],
    ),
    Row(
        'HTTP semantics',
        'Expect: 100-continue (HTTP/1.1, HTTP/2), HEAD of streamed responses read off the socket, '
        'Connection: close, HTTP/1.0 with and without keep-alive, pipelining order, 204 from an app that gives '
        'a body, 304, %2F in paths, many headers, IPv6 binding',
        [
            CORE + 'test_http_semantics.py::test_expect_100_continue_is',
            CORE + 'test_http_semantics.py::test_expect_100_continue_over_http2',
            CORE + 'test_http_semantics.py::test_head',
            CORE + 'test_http_semantics.py::test_a_request_with_many_headers',
            CORE + 'test_http_semantics.py::test_the_server_closes_when_the_client_asks',
            CORE + 'test_http_semantics.py::test_http_1_0_keep_alive',
            CORE + 'test_http_semantics.py::test_a_204_from_the_app',
            CORE + 'test_http_semantics.py::test_an_encoded_slash',
            CORE + 'test_http_semantics.py::test_ipv6_binding',
            CORE + 'test_http_settings.py::test_pipelined_requests_are_answered_in_order',
            CORE + 'test_zero_copy.py::test_pipelined_responses_keep_their_order_and_bytes',
            CORE + 'test_static_files.py::test_head_sends_the_headers_without_the_body',
            CORE + 'test_static_files.py::test_conditional_requests',
        ],
    ),
    Row(
        'WSGI environ and file errors',
        'header names with underscores cannot shadow dashed ones; an unreadable file is 500, not 404',
        [
            WSGI + 'test_wsgi_environ.py::test_header_names_with_underscores_cannot_shadow_dashed_ones',
            RSGI + 'test_rsgi_responses.py::test_response_file_that_cannot_be_read_is_500_not_404',
        ],
    ),
    Row(
        'Slow and greedy clients',
        '200 slowloris connections, 50 bodies trickled a byte at a time, a client that never reads a 256 MiB '
        'response, 10,000 idle keep-alive connections, clients that stop reading (HTTP/2 send buffer, '
        'WebSocket), silent HTTP/2 peers, 500 concurrent connections, long streams next to short requests',
        [
            CORE + 'test_http_settings.py::test_header_read_timeout_cuts_off_slow_headers_and_others_are_served',
            CORE + 'test_http_settings.py::test_max_send_buffer_bounds_what_waits_for_a_slow_reader',
            CORE + 'test_http_settings.py::test_keep_alive_pings_and_drops_a_silent_peer',
            RSGI + 'test_rsgi_connections.py::test_500_concurrent_connections',
            RSGI + 'test_rsgi_websocket.py::test_a_client_that_stops_reading_holds_back_the_app_not_the_others',
            WSGI + 'test_wsgi_concurrency.py::test_short_requests_are_not_starved_by_long_streams',
            CORE + 'test_slow_clients.py::',
        ],
    ),
    Row(
        'HTTP/2 abuse',
        'rapid reset, CONTINUATION flood, SETTINGS and PING floods from a peer that does not read, '
        'empty DATA flood, zero window, too many streams, oversize header list and frames, HPACK bombs '
        '(20 MB decoded from 8 KiB refused; 40 streams of 15.6 MB decoded cost no memory per copy)',
        [
            CORE + 'test_http2_abuse.py::',
            CORE + 'test_http_settings.py::test_max_concurrent_streams_is_enforced',
            CORE + 'test_http_settings.py::test_a_header_list_over_the_limit_is_refused',
            CORE + 'test_http_settings.py::test_a_frame_over_max_frame_size_is_a_connection_error',
        ],
    ),
    Row(
        'TLS abuse',
        'plain HTTP on the TLS port, failed handshakes (logged at debug only), old protocol versions, '
        'missing or revoked client certificates, bad certificate and key files',
        [
            CORE + 'test_tls.py::test_plain_http_on_the_tls_port_closes_that_connection_only',
            CORE + 'test_tls.py::test_failed_handshakes_are_logged_at_debug_level_only',
            CORE + 'test_tls.py::test_default_minimum_is_tls13_and_refuses_a_tls12_client',
            CORE + 'test_tls.py::test_required_client_certificate_and_crl',
            CORE + 'test_tls.py::test_bad_tls_settings_stop_the_server_with_one_line',
        ],
    ),
    Row(
        'WebSocket abuse',
        'oversize messages (1009), reserved bits and opcodes, control frames over 125 bytes (1002), '
        'invalid UTF-8 (1007), bad handshakes, silent peers; a 2^62-byte frame header, 20,000 empty fragments, '
        'ping floods from clients that read and that never read, invalid close codes and reasons, one close '
        'frame only (Autobahn cases 1-10 run separately in CI)',
        [
            CORE + 'test_websocket_abuse.py::',
            RSGI + 'test_rsgi_websocket.py::test_oversized_message_closes_with_1009',
            RSGI + 'test_rsgi_websocket.py::test_max_size_option',
            RSGI + 'test_rsgi_websocket.py::test_reserved_',
            RSGI + 'test_rsgi_websocket.py::test_a_control_frame_over_125_bytes',
            RSGI + 'test_rsgi_websocket.py::test_invalid_utf8_closes_with_1007',
            RSGI + 'test_rsgi_websocket.py::test_bad_handshake',
            RSGI + 'test_rsgi_websocket.py::test_server_pings_and_drops_a_silent_peer',
        ],
    ),
    Row(
        'App faults',
        'exceptions before, during and after the response in RSGI, ASGI and WSGI; misuse of the protocol '
        'objects; a killed worker respawned while the others serve; a crash loop stops with one line; '
        'segfaults and os._exit in a request; requests never answered; an event loop blocked for seconds (logged)',
        [
            CORE + 'test_app_faults.py::',
            RSGI + 'test_rsgi_responses.py::test_app_failure_is_500_and_server_keeps_serving',
            RSGI + 'test_rsgi_websocket.py::test_app_raising_before_accept_gets_500_and_the_worker_lives_on',
            ASGI + 'test_asgi_errors.py::',
            WSGI + 'test_wsgi_start_response.py::test_app_exception_is_500_and_logged_once',
            WSGI + 'test_wsgi_start_response.py::test_invalid_status_is_500_and_logged_once',
            WSGI + 'test_wsgi_responses.py::test_close_is_called_when_iteration_fails',
            CORE + 'test_worker_lifecycle.py::test_a_killed_worker_is_respawned_and_the_others_keep_serving',
            CORE + 'test_worker_lifecycle.py::test_a_crash_loop_stops_the_server_with_one_line',
            CORE + 'test_worker_lifecycle.py::test_kill_timeout_kills_a_worker_that_does_not_drain',
        ],
    ),
    Row(
        'Shutdown and reload under load',
        'SIGHUP, code reload, request-count recycling and socket-activated restarts with steady clients: '
        'zero failed requests; SIGTERM with new-connection and keep-alive clients in every interface: every '
        'request the server read is answered, connections waiting in the listen queue are served',
        [
            CORE + 'test_shutdown_under_load.py::',
            CORE + 'test_server_process.py::test_sighup_replaces_workers_without_failed_requests',
            CORE + 'test_server_process.py::test_sigterm_lets_in_flight_request_finish_then_exits_0',
            CORE + 'test_worker_lifecycle.py::test_reload_serves_the_changed_code_without_failed_requests',
            CORE + 'test_worker_lifecycle.py::test_max_requests_recycles_workers_without_failed_requests',
            CORE + 'test_sockets.py::test_restart_behind_an_activated_socket_loses_no_request',
            CORE + 'test_embed.py::test_reload_restarts_the_app_without_failing_requests',
        ],
    ),
    Row(
        'Soak',
        'GET and POST echo on keep-alive connections and GET on a new connection each, per interface, with '
        "the worker's RSS and descriptors sampled (tools/soak.py runs about 1M requests per interface)",
        [CORE + 'test_soak.py::'],
    ),
    Row(
        'Fuzzing',
        'hypothesis: generated, mutated and arbitrary requests against a live server (well-formed answers '
        'only, refused requests never reach the app, the server stays up); proxy headers with arbitrary '
        'values. proptest (cargo test): request validation in any pieces, ranges, static paths, deflate',
        [CORE + 'test_fuzz.py::'],
    ),
]


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)


def row_of(nodeid: str) -> Row | None:
    """The row whose longest prefix matches (a whole file in one row, some of its tests in another)."""
    matches = [
        (len(prefix), index) for index, row in enumerate(ROWS) for prefix in row.tests if nodeid.startswith(prefix)
    ]
    return ROWS[max(matches)[1]] if matches else None


def outcomes_from_log(path: Path) -> dict[str, str]:
    """Each test's outcome (passed, failed, skipped) from a pytest --report-log file."""
    outcomes: dict[str, str] = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry.get('$report_type') != 'TestReport':
            continue
        nodeid, outcome, when = entry['nodeid'], entry['outcome'], entry['when']
        if outcome == 'failed':
            outcomes[nodeid] = 'failed'
        elif outcome == 'skipped' and outcomes.get(nodeid) != 'failed':
            outcomes[nodeid] = 'skipped'
        elif when == 'call' and nodeid not in outcomes:
            outcomes[nodeid] = 'passed'
    return outcomes


def run_suite(log: Path, extra: list[str]) -> int:
    """Runs the rows' tests with pytest, writing the report log; returns pytest's exit status."""
    files = sorted({prefix.split('::', 1)[0] for row in ROWS for prefix in row.tests})
    selectors = [prefix.rstrip(':') if prefix.endswith('::') else prefix for row in ROWS for prefix in row.tests]
    # Whole files are collected; the prefixes choose the tests (-k cannot express node id prefixes).
    path = os.pathsep.join(filter(None, [str(ROOT / 'tools'), os.environ.get('PYTHONPATH')]))
    env = dict(os.environ, GRANIAN_ROBUSTNESS_SELECT=json.dumps(selectors), PYTHONPATH=path)
    # This module is also the pytest plugin that deselects what no row names (see below).
    command = [sys.executable, '-m', 'pytest', '-q', '-p', 'robustness', f'--report-log={log}']
    return subprocess.call([*command, *files, *extra], cwd=ROOT, env=env)


def pytest_collection_modifyitems(config, items) -> None:
    """As a pytest plugin (`-p robustness`): keep only the tests a row names."""
    selectors = json.loads(os.environ.get('GRANIAN_ROBUSTNESS_SELECT', '[]'))
    if not selectors:
        return
    chosen = [any(item.nodeid.startswith(prefix) for prefix in selectors) for item in items]
    config.hook.pytest_deselected(items=[item for item, keep in zip(items, chosen, strict=True) if not keep])
    items[:] = [item for item, keep in zip(items, chosen, strict=True) if keep]


def tally(outcomes: dict[str, str]) -> dict[str, Tally]:
    tallies = {row.name: Tally() for row in ROWS}
    for nodeid, outcome in outcomes.items():
        row = row_of(nodeid)
        if row is None:
            continue
        counts = tallies[row.name]
        setattr(counts, outcome, getattr(counts, outcome) + 1)
        if outcome == 'failed':
            counts.failures.append(nodeid)
    return tallies


def verdict(row: Row, counts: Tally) -> str:
    if row.gap:
        return 'not covered'
    if counts.failed:
        return 'FAILED'
    if not counts.passed:
        return 'not run'
    return 'holds'


def table(tallies: dict[str, Tally]) -> str:
    lines = ['| What was tried | Cases | Passed | Failed | Skipped | Result |', '|---|---|---|---|---|---|']
    for row in ROWS:
        counts = tallies[row.name]
        cases = counts.passed + counts.failed + counts.skipped
        detail = row.gap or row.tried
        lines.append(
            f'| **{row.name}**: {detail} | {cases} | {counts.passed} | {counts.failed} | {counts.skipped} '
            f'| {verdict(row, counts)} |'
        )
    return '\n'.join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--from-log', type=Path, help='read outcomes from this pytest --report-log file')
    parser.add_argument('--markdown', type=Path, help='also write the table to this file')
    parser.add_argument('pytest_args', nargs='*', help='passed on to pytest')
    args = parser.parse_args()
    if args.from_log:
        if not args.from_log.is_file():
            print(f'robustness: no report log at {args.from_log}', file=sys.stderr)
            return 2
        outcomes = outcomes_from_log(args.from_log)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            log = Path(scratch) / 'report.jsonl'
            status = run_suite(log, args.pytest_args)
            if not log.is_file():
                print(f'robustness: pytest did not run (exit status {status})', file=sys.stderr)
                return 2
            outcomes = outcomes_from_log(log)
    tallies = tally(outcomes)
    text = table(tallies)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + '\n')
    failures = [nodeid for counts in tallies.values() for nodeid in counts.failures]
    for nodeid in failures:
        print(f'failed: {nodeid}', file=sys.stderr)
    missing = [row.name for row in ROWS if not row.gap and not (tallies[row.name].passed or tallies[row.name].failed)]
    for name in missing:
        print(f'robustness: no test of the row {name!r} ran', file=sys.stderr)
    return 1 if failures or missing else 0


if __name__ == '__main__':
    sys.exit(main())
