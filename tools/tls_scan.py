#!/usr/bin/env python3
"""Scan granian's HTTPS with sslyze and fail on any weak protocol, cipher or known vulnerability.

    hatch run tls-scan:scan              # both --ssl-protocol-min settings
    python tools/tls_scan.py             # the same, from any Python with sslyze and trustme installed

The server runs from the development environment (.venv, after `python3 tools/dev.py build`) with a
trustme certificate, once with `--ssl-protocol-min tls1.2` and once with the default (tls1.3). For
each, sslyze must find: no SSL 2.0/3.0, TLS 1.0/1.1 (nor TLS 1.2 under tls1.3); only forward-secret
AEAD suites on TLS 1.2; no compression; not vulnerable to Heartbleed, ROBOT, CCS injection or client
renegotiation DoS; secure renegotiation where TLS 1.2 is on. Prints a summary; exits 1 on a finding.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

ROOT = Path(__file__).resolve().parent.parent
SERVER_PYTHON = ROOT / '.venv' / 'bin' / 'python'
APPS = ROOT / 'packages' / 'granian-core' / 'tests' / 'apps'
LEGACY = ('ssl_2_0_cipher_suites', 'ssl_3_0_cipher_suites', 'tls_1_0_cipher_suites', 'tls_1_1_cipher_suites')
AEAD = ('_GCM_', 'CHACHA20_POLY1305', '_CCM')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def serve(cert: Path, key: Path, protocol_min: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [
        str(SERVER_PYTHON), '-m', 'granian', '--interface', 'rsgi', '--host', '127.0.0.1', '--port', str(port),
        '--ssl-certificate', str(cert), '--ssl-keyfile', str(key), '--ssl-protocol-min', protocol_min,
        '--working-dir', str(APPS), 'tls_app:rsgi',
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f'the server did not start (exit code {process.poll()})')


def findings(result: dict, protocol_min: str) -> list[str]:
    """What is wrong in one sslyze server result."""
    scans = result['scan_result']
    problems = [
        f'{name} scan: {scan["status"]} {scan.get("error_reason") or ""}'.rstrip()
        for name, scan in scans.items()
        if scan['status'] not in ('COMPLETED', 'NOT_SCHEDULED')
    ]

    def accepted(name: str) -> list[str]:
        return [suite['cipher_suite']['name'] for suite in scans[name]['result']['accepted_cipher_suites']]

    for name in LEGACY:
        if accepted(name):
            problems.append(f'{name} accepted: {accepted(name)}')
    tls12 = accepted('tls_1_2_cipher_suites')
    if protocol_min == 'tls1.3' and tls12:
        problems.append(f'TLS 1.2 accepted under --ssl-protocol-min tls1.3: {tls12}')
    for suite in tls12:
        if not suite.startswith(('TLS_ECDHE_', 'TLS_DHE_')) or not any(mark in suite for mark in AEAD):
            problems.append(f'weak TLS 1.2 suite: {suite}')
    if not accepted('tls_1_3_cipher_suites'):
        problems.append('TLS 1.3 not offered')
    checks = {
        'compression': scans['tls_compression']['result']['supports_compression'],
        'Heartbleed': scans['heartbleed']['result']['is_vulnerable_to_heartbleed'],
        'CCS injection': scans['openssl_ccs_injection']['result']['is_vulnerable_to_ccs_injection'],
        'ROBOT': not scans['robot']['result']['robot_result'].startswith('NOT_VULNERABLE'),
        'client renegotiation DoS': scans['session_renegotiation']['result'][
            'is_vulnerable_to_client_renegotiation_dos'
        ],
    }
    if tls12:
        checks['no secure renegotiation'] = not scans['session_renegotiation']['result'][
            'supports_secure_renegotiation'
        ]
    problems += [f'vulnerable or weak: {name}' for name, bad in checks.items() if bad]
    return problems


def main() -> int:
    if not SERVER_PYTHON.exists():
        raise SystemExit('.venv is missing: run `python3 tools/dev.py build` first')
    failed = False
    with tempfile.TemporaryDirectory() as directory:
        certificate = trustme.CA().issue_cert('127.0.0.1', 'localhost')
        cert, key = Path(directory) / 'cert.pem', Path(directory) / 'key.pem'
        certificate.cert_chain_pems[0].write_to_path(str(cert))
        certificate.private_key_pem.write_to_path(str(key))
        for protocol_min in ('tls1.2', 'tls1.3'):
            process, port = serve(cert, key, protocol_min)
            report = Path(directory) / f'sslyze-{protocol_min}.json'
            try:
                # Its own report (and the Mozilla-profile verdict on the throwaway test certificate) is noise here.
                subprocess.run(
                    [sys.executable, '-W', 'ignore', '-m', 'sslyze', f'127.0.0.1:{port}', f'--json_out={report}'],
                    check=False,
                    capture_output=True,
                    timeout=300,
                )
            finally:
                process.terminate()
                process.wait(15)
            results = json.loads(report.read_text())['server_scan_results']
            problems = [problem for result in results for problem in findings(result, protocol_min)] or (
                [] if results else ['sslyze reported no result']
            )
            scans = results[0]['scan_result'] if results else {}
            offered = [
                suite['cipher_suite']['name']
                for name in ('tls_1_2_cipher_suites', 'tls_1_3_cipher_suites')
                for suite in (scans.get(name, {}).get('result') or {}).get('accepted_cipher_suites', [])
            ]
            verdict = 'OK' if not problems else 'FAILED'
            print(f'--ssl-protocol-min {protocol_min}: {verdict}; suites: {", ".join(offered)}')
            for problem in problems:
                print(f'  {problem}')
            failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
