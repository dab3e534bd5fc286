"""Building the distributions' wheels in tests: granian-core with maturin, the thin packages with pip."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parent.parent / 'packages'
#: Building the core links it in release mode (fat LTO): minutes on 2 busy cores.
MATURIN_TIMEOUT = 1800
PIP_TIMEOUT = 600


def _run(argv: list[str | Path], timeout: float, cwd: Path | None = None) -> None:
    result = subprocess.run(
        [str(arg) for arg in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f'{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}'


def build_wheels(out: Path, thin_packages: Iterable[str]) -> dict[str, Path]:
    """Build granian-core's wheel and those of `thin_packages` (e.g. 'granian-wsgi') into `out`.

    The core is built for the interpreter running the tests (`maturin -i`): maturin would otherwise
    pick the first Python it finds, and the wheel would not install into a venv of this version.
    Same profile and features as the development install, so cargo reuses its build.
    Returns distribution name -> wheel path.
    """
    maturin = shutil.which('maturin', path=str(Path(sys.executable).parent)) or shutil.which('maturin')
    if maturin is None:
        pytest.fail('maturin is needed to build the granian-core wheel (it is in the "build" dependency group)')
    core = PACKAGES / 'granian-core' / 'Cargo.toml'
    _run([maturin, 'build', '--release', '--quiet', '-i', sys.executable, '-m', core, '-o', out], MATURIN_TIMEOUT)
    for name in thin_packages:
        _run(
            [sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps', '--no-build-isolation', '-w', out, '.'],
            PIP_TIMEOUT,
            cwd=PACKAGES / name,
        )
    return {wheel.name.split('-')[0].replace('_', '-'): wheel for wheel in out.glob('*.whl')}
