"""A build of another commit of ours, measured beside ours as the `ours-ref` server (an A/B run).

`python benchmarks/run.py ref COMMIT` checks COMMIT out in a temporary git worktree, builds its
granian-core wheel (release profile, sharing the repository's cargo target directory so only the
crate itself is rebuilt) and installs it with that commit's interface packages into
benchmarks/.venv-ref. Then `python benchmarks/run.py run --servers ours,ours-ref` measures both in
the same sessions, alternating repeats.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from .servers import OURS_PYTHON, REF_PYTHON, REF_VENV, ROOT

#: The commit the reference build was made from (written by `build`).
REF_COMMIT = REF_VENV / 'commit.txt'
PACKAGES = ('granian-rsgi', 'granian-asgi', 'granian-wsgi', 'granian-cli')


def _run(argv: list[str], **kwargs: object) -> bool:
    print('$ ' + ' '.join(argv), flush=True)
    return subprocess.run(argv, check=False, **kwargs).returncode == 0  # type: ignore[call-overload]


def build(commit: str) -> int:
    """Build `commit` into benchmarks/.venv-ref; returns a process exit code."""
    sha = resolve(commit)
    if sha is None:
        print(f'not a commit of this repository: {commit}', file=sys.stderr)
        return 1
    maturin = shutil.which('maturin', path=str(OURS_PYTHON.parent)) or shutil.which('maturin')
    if maturin is None:
        print('maturin is needed: python3 tools/dev.py build installs it into .venv', file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix='granian-ref-') as scratch:
        tree, wheels = Path(scratch) / 'tree', Path(scratch) / 'wheels'
        if not _run(['git', 'worktree', 'add', '--detach', str(tree), sha], cwd=ROOT):
            return 1
        try:
            env = {**os.environ, 'CARGO_TARGET_DIR': str(ROOT / 'target')}
            manifest = tree / 'packages' / 'granian-core' / 'Cargo.toml'
            if not _run([maturin, 'build', '--release', '-m', str(manifest), '-o', str(wheels)], env=env):
                return 1
            if REF_VENV.exists():
                shutil.rmtree(REF_VENV)
            venv.create(REF_VENV, with_pip=True)
            packages = [str(wheel) for wheel in wheels.glob('*.whl')]
            packages += [str(tree / 'packages' / name) for name in PACKAGES]
            if not _run([str(REF_PYTHON), '-m', 'pip', 'install', '-q', 'uvloop', *packages]):
                return 1
        finally:
            _run(['git', 'worktree', 'remove', '--force', str(tree)], cwd=ROOT)
    REF_COMMIT.write_text(sha + '\n')
    print(f'benchmarks/.venv-ref serves {sha[:12]}: python benchmarks/run.py run --servers ours,ours-ref')
    return 0


def resolve(commit: str) -> str | None:
    """The full hash of `commit` (a hash, branch, tag or expression such as HEAD~1), if it names one."""
    resolved = subprocess.run(
        ['git', 'rev-parse', '--verify', f'{commit}^{{commit}}'], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return resolved.stdout.strip() if resolved.returncode == 0 else None


def built_commit() -> str | None:
    """The commit of the reference build, if there is one."""
    return REF_COMMIT.read_text().strip() if REF_COMMIT.exists() else None


def ensure_built(commit: str) -> str | None:
    """The full hash of `commit`, built into benchmarks/.venv-ref unless it is the build there
    already; None (with the reason printed) when it names no commit or does not build."""
    wanted = resolve(commit)
    if wanted is None:
        print(f'not a commit of this repository: {commit}', file=sys.stderr)
        return None
    if built_commit() != wanted and build(wanted) != 0:
        return None
    return wanted
