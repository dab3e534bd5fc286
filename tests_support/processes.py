"""The processes of a running server, read from /proc: its worker, and a process's memory and descriptors."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from .server import RunningServer

MIB = 1024 * 1024


def worker_pid(server: RunningServer, timeout: float = 10.0) -> int:
    """The pid of the first worker of a running server: the supervisor's child titled `... worker-1`
    (multiprocessing also gives the supervisor a resource-tracker child)."""
    assert server.proc is not None, 'the server is not running'
    supervisor = server.proc.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in Path(f'/proc/{supervisor}/task/{supervisor}/children').read_text().split():
            try:
                title = Path(f'/proc/{child}/cmdline').read_bytes()
            except OSError:
                continue
            if b'worker-1' in title:
                return int(child)
        time.sleep(0.05)
    raise AssertionError(f'the server (pid {supervisor}) has no worker-1 after {timeout} s')


def rss_bytes(pid: int) -> int:
    """The resident set of process `pid`, in bytes."""
    match = re.search(r'VmRSS:\s+(\d+) kB', Path(f'/proc/{pid}/status').read_text())
    assert match, f'no VmRSS for pid {pid}'
    return int(match.group(1)) * 1024


def rss_mib(pid: int) -> float:
    """The resident set of process `pid`, in MiB."""
    return rss_bytes(pid) / MIB


def open_fds(pid: int) -> int:
    """How many descriptors process `pid` has open."""
    return len(list(Path(f'/proc/{pid}/fd').iterdir()))


def shared_dirty_kib(pid: int) -> int:
    """KiB of written pages process `pid` shares with another process (a forked child shares its parent's)."""
    match = re.search(r'^Shared_Dirty:\s+(\d+) kB', Path(f'/proc/{pid}/smaps_rollup').read_text(), re.MULTILINE)
    assert match, f'no Shared_Dirty for pid {pid}'
    return int(match.group(1))


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` has open."""
    inodes = set()
    for fd in Path(f'/proc/{pid}/fd').iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith('socket:['):
            inodes.add(int(target[len('socket:[') : -1]))
    return inodes


def listening_socket_inode(port: int) -> int:
    """The inode of the IPv4 TCP socket listening on `port` (from /proc/net/tcp)."""
    for line in Path('/proc/net/tcp').read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(':')[1], 16) == port and fields[3] == '0A':
            return int(fields[9])
    raise AssertionError(f'nothing listens on port {port}')
