"""The hand-written stubs of granian._core match the native module."""

from __future__ import annotations

import subprocess
import sys


def test_core_stubs_match_the_native_module() -> None:
    result = subprocess.run(
        [sys.executable, '-m', 'mypy.stubtest', 'granian._core'],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
