"""Watching the system calls of a running server process with strace, to see how it sends data."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing.Self is Python >= 3.11; annotations are not evaluated at run time
    from typing import Self

ATTACH_TIMEOUT = 10.0
#: How long the trace log must stay unchanged before strace is stopped, and the most to wait for that.
SETTLE_QUIET = 0.25
SETTLE_TIMEOUT = 3.0


class SyscallTrace:
    """strace attached to every thread of process `pid` for the duration of a `with` block.

    After the block, `results` holds the return value of each completed call of the traced names
    (negative for errors), in the order the process made them.
    """

    def __init__(self, pid: int, names: tuple[str, ...]) -> None:
        self.pid = pid
        self.names = names
        self.results: list[int] = []
        self._directory = tempfile.TemporaryDirectory(prefix='granian-strace-')
        self._log = Path(self._directory.name) / 'trace.txt'
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        command = ['strace', '-f', '-p', str(self.pid), '-e', f'trace={",".join(self.names)}', '-o', str(self._log)]
        self._proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        assert self._proc.stderr is not None
        deadline = time.monotonic() + ATTACH_TIMEOUT
        seen = ''
        # strace reports on stderr once it has attached to the process and all of its threads.
        while 'attached' not in seen:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._proc.stderr], [], [], max(remaining, 0))
            line = self._proc.stderr.readline() if ready else ''
            if not line:
                self._proc.kill()
                self._proc.wait()
                raise RuntimeError(f'strace did not attach to {self.pid}: {seen.strip() or "no output"}')
            seen += line
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._proc is not None
        self._settle()
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
        self.results = _results(self._log.read_text(), self.names)
        self._directory.cleanup()

    def _settle(self) -> None:
        """Waits until strace's log stops growing: a call the client has already seen the effect of
        (bytes a sendfile sent) is logged only when strace handles its exit, which lags on a busy
        machine, and an interrupt before that loses it."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        size = -1
        while time.monotonic() < deadline:
            current = self._log.stat().st_size if self._log.exists() else 0
            if current == size:
                return
            size = current
            time.sleep(SETTLE_QUIET)


def _results(trace: str, names: tuple[str, ...]) -> list[int]:
    """Return values of the completed calls in strace output (calls split by another thread's
    output appear as `<unfinished ...>` and `<... name resumed>`)."""
    call = re.compile(rf'(?:^|\s)(?:{"|".join(map(re.escape, names))})\(|<\.\.\. (?:{"|".join(names)}) resumed>')
    results = []
    for line in trace.splitlines():
        if call.search(line) and '<unfinished ...>' not in line:
            returned = re.search(r'\)\s+=\s+(-?\d+)', line)
            if returned:
                results.append(int(returned.group(1)))
    return results
