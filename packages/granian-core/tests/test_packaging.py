"""Every distribution builds a wheel; only granian-core ships granian/__init__.py; versions move in lockstep."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from tests_support.wheels import build_wheels

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ROOT / 'packages'
THIN = ['granian-asgi', 'granian-rsgi', 'granian-wsgi', 'granian-cli']
# Building the wheels links the release core (fat LTO): minutes on 2 busy cores, not the default 120 s.
pytestmark = pytest.mark.timeout(900)


def _version(manifest: Path) -> str:
    # tomllib is 3.11+; the first `version = "..."` line of these manifests is the package's own.
    match = re.search(r'^version = "([^"]+)"', manifest.read_text(), re.MULTILINE)
    assert match, manifest
    return match.group(1)


def _granian_requirements(name: str) -> list[str]:
    text = (PACKAGES / name / 'pyproject.toml').read_text()
    block = re.search(r'^dependencies = \[(.*?)\]', text, re.MULTILINE | re.DOTALL)
    return re.findall(r'"(granian-[^"]+)"', block.group(1)) if block else []


@pytest.fixture(scope='module')
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipfile.ZipFile]:
    built = build_wheels(tmp_path_factory.mktemp('wheels'), THIN)
    return {distribution: zipfile.ZipFile(wheel) for distribution, wheel in built.items()}


def test_every_package_builds_a_wheel(wheels: dict[str, zipfile.ZipFile]) -> None:
    assert sorted(wheels) == ['granian-asgi', 'granian-cli', 'granian-core', 'granian-rsgi', 'granian-wsgi']


def test_only_core_ships_the_namespace_init(wheels: dict[str, zipfile.ZipFile]) -> None:
    assert 'granian/__init__.py' in wheels['granian-core'].namelist()
    for name in THIN:
        assert 'granian/__init__.py' not in wheels[name].namelist(), name


def test_each_wheel_holds_only_its_own_subpackage(wheels: dict[str, zipfile.ZipFile]) -> None:
    for name, subpackage in [
        ('granian-asgi', 'granian/asgi/'),
        ('granian-rsgi', 'granian/rsgi/'),
        ('granian-cli', 'granian/cli/'),
    ]:
        files = [f for f in wheels[name].namelist() if not f.split('/')[0].endswith('.dist-info')]
        assert files, name
        assert all(f.startswith(subpackage) for f in files), (name, files)
        assert subpackage + 'py.typed' in files


def test_core_wheel_has_the_native_module_and_typing(wheels: dict[str, zipfile.ZipFile]) -> None:
    names = wheels['granian-core'].namelist()
    assert any(re.fullmatch(r'granian/_core\..*\.so', n) for n in names), names
    assert 'granian/py.typed' in names
    assert 'granian/_core.pyi' in names


def test_versions_are_in_lockstep_with_exact_pins() -> None:
    import granian
    import granian._core

    cargo = _version(ROOT / 'Cargo.toml')
    assert granian.__version__ == cargo == granian._core.__version__
    for name in ['granian-core', *THIN]:
        assert _version(PACKAGES / name / 'pyproject.toml') == cargo, name
        for requirement in _granian_requirements(name):
            assert requirement.endswith('==' + cargo), (name, requirement)


# Crates whose older releases have published fixes the server relies on, and the lowest release we
# accept: h2 0.4.16 (later than the HTTP/2 flood fixes RUSTSEC-2024-0003, reset streams, and
# RUSTSEC-2024-0332, CONTINUATION frames); rustls 0.23.18 (RUSTSEC-2024-0399, a panic on a
# fragmented ClientHello).
LOCKED_MINIMUMS = {'h2': (0, 4, 16), 'rustls': (0, 23, 18)}


def _locked_versions(lock: Path) -> dict[str, list[tuple[int, ...]]]:
    found: dict[str, list[tuple[int, ...]]] = {}
    for name, version in re.findall(r'^name = "([^"]+)"\nversion = "([^"]+)"', lock.read_text(), re.MULTILINE):
        numbers = tuple(int(part) for part in re.findall(r'\d+', version.split('-')[0])[:3])
        found.setdefault(name, []).append(numbers)
    return found


def test_the_lock_file_keeps_crates_at_their_fixed_releases() -> None:
    locked = _locked_versions(ROOT / 'Cargo.lock')
    for name, minimum in LOCKED_MINIMUMS.items():
        assert name in locked, f'{name} is not in Cargo.lock'
        for version in locked[name]:
            assert version >= minimum, f'Cargo.lock has {name} {version}, below {minimum} (known security fixes)'
