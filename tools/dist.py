#!/usr/bin/env python3
"""Build the five distributions, and keep their versions in lockstep.

    python tools/dist.py build [--out dist] [--only wheels|sdists]
        wheels and sdists of granian-core (maturin), granian-asgi, granian-rsgi, granian-wsgi and
        granian-cli (hatchling) into --out; prints what it wrote
    python tools/dist.py version            the version every distribution carries
    python tools/dist.py set-version X.Y.Z  write X.Y.Z everywhere a version or an exact pin is kept
    python tools/dist.py check              exit 1, naming each file, if any copy differs

The one source of the version is `version` in the workspace Cargo.toml (the Rust crate reports it as
`granian._core.__version__`). Python packaging needs literal versions and exact pins in each
pyproject.toml and `_version.py`; `set-version` writes them and `check` (also a test) catches a copy
edited by hand. Run from the development environment (`python3 tools/dev.py build` creates it): the
build uses its maturin and hatchling, and builds the core wheel for the interpreter running this script.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / 'packages'
CORE = 'granian-core'
THIN = ['granian-asgi', 'granian-rsgi', 'granian-wsgi', 'granian-cli']
DISTRIBUTIONS = [CORE, *THIN]
VERSION_RE = r'\d+\.\d+\.\d+(?:(?:a|b|rc)\d+|\.post\d+|\.dev\d+)?'


@dataclass(frozen=True)
class VersionSite:
    """One place that holds a copy of the version: a file and the pattern whose group 2 is the version."""

    path: Path
    pattern: str
    #: how many matches the file must have (exact pins: one per granian requirement)
    minimum: int = 1

    def found(self) -> list[str]:
        return [match.group(2) for match in re.finditer(self.pattern, self.path.read_text(), re.MULTILINE)]

    def write(self, version: str) -> None:
        text = self.path.read_text()
        self.path.write_text(
            re.sub(self.pattern, lambda m: m.group(1) + version + m.group(3), text, flags=re.MULTILINE)
        )


def _sites() -> list[VersionSite]:
    sites = [
        # the source: the workspace's [workspace.package] version
        VersionSite(ROOT / 'Cargo.toml', rf'(\[workspace\.package\]\nversion = ")({VERSION_RE})(")'),
        VersionSite(ROOT / 'Cargo.lock', rf'(name = "granian-core"\nversion = ")({VERSION_RE})(")'),
        VersionSite(PACKAGES / CORE / 'python/granian/_version.py', rf"(^__version__ = ')({VERSION_RE})(')"),
    ]
    for name in DISTRIBUTIONS:
        pyproject = PACKAGES / name / 'pyproject.toml'
        sites.append(VersionSite(pyproject, rf'(^version = ")({VERSION_RE})(")'))
        # exact pins on our own distributions, in dependencies and extras
        sites.append(VersionSite(pyproject, rf'("granian-[a-z]+(?:\[[a-z,]+\])?==)({VERSION_RE})(")', minimum=0))
    for name in THIN:
        module = name.removeprefix('granian-')
        sites.append(
            VersionSite(PACKAGES / name / 'granian' / module / '_version.py', rf"(^__version__ = ')({VERSION_RE})(')")
        )
    return sites


def source_version() -> str:
    return _sites()[0].found()[0]


def mismatches() -> list[str]:
    """One line per copy of the version that is missing or differs from Cargo.toml's."""
    expected = source_version()
    problems = []
    for site in _sites():
        found = site.found()
        where = site.path.relative_to(ROOT)
        if len(found) < site.minimum:
            problems.append(f'{where}: no version found (pattern {site.pattern!r})')
        problems += [f'{where}: {version}, expected {expected}' for version in found if version != expected]
    return problems


def set_version(version: str) -> None:
    if not re.fullmatch(VERSION_RE, version):
        sys.exit(f'error: {version!r} is not a version like 1.2.3, 1.2.3rc1 or 1.2.3.post1')
    for site in _sites():
        site.write(version)


def _run(argv: list[str | Path], cwd: Path = ROOT) -> None:
    print('+', ' '.join(str(arg) for arg in argv), flush=True)
    result = subprocess.run([str(arg) for arg in argv], cwd=cwd, check=False)
    if result.returncode != 0:
        sys.exit(f'error: {argv[0]} exited with {result.returncode}')


def _tool(name: str) -> str:
    """A console script from the environment running this script, or from PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        sys.exit(f'error: {name} is not installed; run python3 tools/dev.py build and use .venv/bin/python')
    return found


def build(out: Path, wheels: bool = True, sdists: bool = True) -> list[Path]:
    """Build the requested artifacts of every distribution into `out`; return the new files."""
    if problems := mismatches():
        sys.exit('error: versions differ, run tools/dist.py set-version:\n  ' + '\n  '.join(problems))
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    manifest = PACKAGES / CORE / 'Cargo.toml'
    steps: list[Callable[[], None]] = []
    if sdists:
        steps.append(lambda: _run([_tool('maturin'), 'sdist', '-m', manifest, '-o', out]))
    if wheels:
        # the core for this interpreter: maturin would otherwise pick the first Python it finds
        steps.append(
            lambda: _run([_tool('maturin'), 'build', '--release', '-i', sys.executable, '-m', manifest, '-o', out])
        )
    targets = [arg for target in ('sdist',) * sdists + ('wheel',) * wheels for arg in ('-t', target)]
    for name in THIN:
        steps.append(lambda name=name: _run([_tool('hatchling'), 'build', '-d', out, *targets], cwd=PACKAGES / name))
    for step in steps:
        step()
    return sorted(set(out.iterdir()) - before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    build_parser = commands.add_parser('build', help='build wheels and sdists of all five distributions')
    build_parser.add_argument('--out', type=Path, default=ROOT / 'dist', help='output directory (default: dist/)')
    build_parser.add_argument('--only', choices=['wheels', 'sdists'], help='build only wheels or only sdists')
    commands.add_parser('version', help='print the version')
    set_parser = commands.add_parser('set-version', help='write a new version everywhere')
    set_parser.add_argument('version')
    commands.add_parser('check', help='exit 1 if any copy of the version differs')
    args = parser.parse_args()

    if args.command == 'build':
        built = build(args.out, wheels=args.only != 'sdists', sdists=args.only != 'wheels')
        print('\n'.join(str(path) for path in built))
    elif args.command == 'version':
        print(source_version())
    elif args.command == 'set-version':
        set_version(args.version)
        print(f'version {args.version} written; check: {"ok" if not mismatches() else "FAILED"}')
    elif problems := mismatches():
        sys.exit('\n'.join(problems))
    else:
        print(f'every distribution is at {source_version()}')


if __name__ == '__main__':
    main()
