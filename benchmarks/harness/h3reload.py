"""h3reload: what a reload (SIGHUP) costs HTTP/3 clients that are sending requests back to back.

    .venv/bin/python benchmarks/harness/h3reload.py [--connections 8] [--rounds 3] [--seconds 8]

Starts ours (RSGI, one worker, `--http3`, a throwaway certificate) and runs a steady round, then
`rounds` rounds with a SIGHUP 2 s in: each of `connections` aioquic connections sends one request at a
time; a request that fails is counted with its reason, and that client opens a new connection. Per
round it prints the requests served, the failures by reason, and the slowest request. The client is
aioquic's (tests_support/http3.py), which ignores GOAWAY: the requests it sends after the old worker's
GOAWAY are refused with H3_REQUEST_REJECTED (code 0x10b), which a client may retry; any other failure
is a request lost to the reload. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests_support.certs import server_pki
from tests_support.http3 import StreamFailed, h3_connection
from tests_support.server import free_port

APPS = ROOT / 'packages' / 'granian-core' / 'tests' / 'apps'
#: Seconds into a round at which the reload is asked for.
RELOAD_AT = 2.0


async def client(port: int, ca_file: Path, stop_at: float, round_: dict) -> None:
    """Requests back to back until `stop_at`, on a new connection after each failure."""
    while time.monotonic() < stop_at:
        try:
            async with h3_connection(port, ca_file) as connection:
                while time.monotonic() < stop_at:
                    started = time.monotonic()
                    try:
                        await asyncio.wait_for(connection.request('GET', '/info'), 10)
                    except (StreamFailed, asyncio.TimeoutError) as exc:
                        round_['failures'][str(exc) or 'timed out'] += 1
                        break
                    round_['served'] += 1
                    round_['slowest_s'] = max(round_['slowest_s'], time.monotonic() - started)
        except ConnectionError as exc:
            round_['failures'][f'connection not opened: {exc}'] += 1


async def one_round(server: subprocess.Popen, port: int, ca_file: Path, args: argparse.Namespace, reload: bool) -> dict:
    round_ = {'reload': reload, 'served': 0, 'failures': collections.Counter(), 'slowest_s': 0.0}
    stop_at = time.monotonic() + args.seconds
    clients = [asyncio.create_task(client(port, ca_file, stop_at, round_)) for _ in range(args.connections)]
    if reload:
        await asyncio.sleep(RELOAD_AT)
        server.send_signal(signal.SIGHUP)
    await asyncio.wait_for(asyncio.gather(*clients), args.seconds + 30)
    round_['slowest_s'] = round(round_['slowest_s'], 3)
    return round_


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--connections', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--seconds', type=float, default=8.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='h3reload-') as directory:
        pki = server_pki(Path(directory))
        port = free_port()
        command = [sys.executable, '-m', 'granian', '--interface', 'rsgi', '--host', '127.0.0.1', '--port', str(port),
                   '--workers', '1', '--log-level', 'warning', *pki.args('--http3'), 'http3_app:rsgi']  # fmt: skip
        server = subprocess.Popen(command, cwd=APPS, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            time.sleep(2)
            for reload in (False, *[True] * args.rounds):
                result = asyncio.run(one_round(server, port, pki.ca_file, args, reload))
                print(json.dumps(result))
                time.sleep(3)  # the old worker has drained and exited
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    return 0


if __name__ == '__main__':
    sys.exit(main())
