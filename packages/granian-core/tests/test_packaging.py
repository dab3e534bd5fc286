"""What tools/dist.py builds: a wheel and an sdist per distribution, each holding only its own files;
the core's sdist builds in a fresh environment; versions move in lockstep from one source."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests_support.freshvenv import DISTRIBUTIONS, Distributions, FreshVenv

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ROOT / 'packages'
THIN = ['granian-asgi', 'granian-rsgi', 'granian-wsgi', 'granian-cli']
# Building the distributions links the release core (fat LTO): minutes on 2 busy cores, not the default 120 s.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope='module')
def wheels(distributions: Distributions) -> dict[str, zipfile.ZipFile]:
    return {name: zipfile.ZipFile(distributions.wheel(name)) for name in DISTRIBUTIONS}


def test_the_build_command_writes_a_wheel_and_an_sdist_of_each(distributions: Distributions) -> None:
    names = sorted(path.name for path in distributions.directory.iterdir())
    assert len(names) == 10, names
    for name in DISTRIBUTIONS:
        assert distributions.wheel(name).name.startswith(name.replace('-', '_') + '-0.')
        assert distributions.sdist(name)


def test_only_core_ships_the_namespace_init(wheels: dict[str, zipfile.ZipFile]) -> None:
    assert 'granian/__init__.py' in wheels['granian-core'].namelist()
    for name in THIN:
        assert 'granian/__init__.py' not in wheels[name].namelist(), name


@pytest.mark.parametrize('name', THIN)
def test_each_wheel_holds_only_its_own_subpackage(wheels: dict[str, zipfile.ZipFile], name: str) -> None:
    subpackage = 'granian/' + name.removeprefix('granian-') + '/'
    files = [f for f in wheels[name].namelist() if not f.split('/')[0].endswith('.dist-info')]
    assert files, name
    assert all(f.startswith(subpackage) for f in files), (name, files)
    assert subpackage + 'py.typed' in files
    assert subpackage + '_version.py' in files


def test_core_wheel_has_the_native_module_and_typing(wheels: dict[str, zipfile.ZipFile]) -> None:
    names = wheels['granian-core'].namelist()
    assert any(n.startswith('granian/_core.') and n.endswith('.so') for n in names), names
    assert 'granian/py.typed' in names
    assert 'granian/_core.pyi' in names


def test_core_wheel_is_tagged_for_this_interpreter_and_manylinux(distributions: Distributions) -> None:
    tag = f'cp{sys.version_info.major}{sys.version_info.minor}'
    name = distributions.wheel('granian-core').name
    assert f'-{tag}-{tag}-' in name, name
    if sys.platform == 'linux':
        assert '-manylinux_' in name, name


@pytest.mark.parametrize('name', THIN)
def test_each_thin_sdist_holds_its_package_readme_and_changelog(distributions: Distributions, name: str) -> None:
    with tarfile.open(distributions.sdist(name)) as sdist:
        files = {member.name.split('/', 1)[1] for member in sdist.getmembers() if '/' in member.name}
    module = name.removeprefix('granian-')
    assert {'pyproject.toml', 'README.md', 'CHANGELOG.md', 'PKG-INFO', f'granian/{module}/__init__.py'} <= files
    assert 'granian/__init__.py' not in files


def test_core_sdist_holds_the_crate_the_lock_file_and_the_python_sources(distributions: Distributions) -> None:
    with tarfile.open(distributions.sdist('granian-core')) as sdist:
        files = {member.name.split('/', 1)[1] for member in sdist.getmembers() if '/' in member.name}
    assert {'Cargo.toml', 'Cargo.lock', 'pyproject.toml', 'python/granian/__init__.py'} <= files
    assert 'packages/granian-core/src/lib.rs' in files


def test_core_sdist_builds_with_only_python_and_a_rust_toolchain(distributions: Distributions, tmp_path: Path) -> None:
    """pip builds the sdist in an isolated build environment (maturin from PyPI) in a venv holding nothing else.

    CARGO_TARGET_DIR points at the workspace's target/ only as a compile cache for the crates.io
    dependencies; the crate itself is compiled from the unpacked sdist.
    """
    venv = FreshVenv(tmp_path)
    out = tmp_path / 'built'
    venv.run(
        'python',
        '-m',
        'pip',
        'wheel',
        '--quiet',
        '--no-deps',
        '-w',
        out,
        distributions.sdist('granian-core'),
        timeout=1800,
        env={'CARGO_TARGET_DIR': str(ROOT / 'target')},
    )
    (wheel,) = out.glob('granian_core-*.whl')
    venv.pip_install('--no-index', wheel)
    version = venv.run('python', '-c', 'import granian._core as c, granian; print(c.__version__, granian.__version__)')
    assert version.stdout.split() == [_version_of_the_source()] * 2


def _version_of_the_source() -> str:
    result = subprocess.run(
        [sys.executable, ROOT / 'tools' / 'dist.py', 'version'], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_every_copy_of_the_version_matches_the_source() -> None:
    result = subprocess.run(
        [sys.executable, ROOT / 'tools' / 'dist.py', 'check'], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    import granian
    import granian._core

    assert granian.__version__ == granian._core.__version__ == _version_of_the_source()


def _copy_version_sites(into: Path) -> Path:
    """The build script and every file holding a version, copied into a tree of the same shape."""
    paths = [Path('tools/dist.py'), Path('Cargo.toml'), Path('Cargo.lock')]
    paths += [p.relative_to(ROOT) for p in PACKAGES.glob('*/pyproject.toml')]
    paths += [p.relative_to(ROOT) for p in PACKAGES.glob('*/**/_version.py')]
    for path in paths:
        (into / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, into / path)
    return into / 'tools' / 'dist.py'


def test_set_version_writes_every_copy_and_check_catches_a_hand_edit(tmp_path: Path) -> None:
    script = _copy_version_sites(tmp_path)
    subprocess.run([sys.executable, script, 'set-version', '7.8.9rc1'], check=True, capture_output=True)
    check = subprocess.run([sys.executable, script, 'check'], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    assert 'granian-core[all]==7.8.9rc1' in (tmp_path / 'packages/granian-cli/pyproject.toml').read_text()
    assert "__version__ = '7.8.9rc1'" in (tmp_path / 'packages/granian-wsgi/granian/wsgi/_version.py').read_text()
    assert 'name = "granian-core"\nversion = "7.8.9rc1"' in (tmp_path / 'Cargo.lock').read_text()

    pyproject = tmp_path / 'packages/granian-rsgi/pyproject.toml'
    pyproject.write_text(pyproject.read_text().replace('granian-core==7.8.9rc1', 'granian-core==7.8.8'))
    check = subprocess.run([sys.executable, script, 'check'], capture_output=True, text=True, check=False)
    assert check.returncode == 1
    assert check.stderr.strip() == 'packages/granian-rsgi/pyproject.toml: 7.8.8, expected 7.8.9rc1'


def test_an_interface_package_refuses_a_core_of_another_version() -> None:
    from granian._version import require_same_core

    with pytest.raises(ImportError, match=r'^granian-wsgi 9\.9\.9 needs granian-core 9\.9\.9, but granian-core '):
        require_same_core('granian-wsgi', '9.9.9')


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


def _maturin_env(pyproject: Path) -> dict[str, str]:
    """The `env.NAME="value"` entries of a pyproject's `[tool.maturin] config` (cargo --config)."""
    import tomllib

    entries = tomllib.loads(pyproject.read_text())['tool']['maturin'].get('config', [])
    return {
        name.removeprefix('env.'): tomllib.loads(f'value = {value}')['value']
        for name, value in (entry.split('=', 1) for entry in entries)
        if name.startswith('env.')
    }


def test_checkout_and_sdist_builds_set_the_same_build_environment() -> None:
    """`.cargo/config.toml` serves builds from a checkout, `[tool.maturin] config` builds from the
    sdist (which has no workspace config): the same values, or the two rebuild AWS-LC in turn and
    the wheel differs from what the tests ran."""
    import tomllib

    checkout = tomllib.loads((ROOT / '.cargo' / 'config.toml').read_text())['env']
    sdist = _maturin_env(PACKAGES / 'granian-core' / 'pyproject.toml')
    assert checkout, '.cargo/config.toml sets no [env]'
    assert sdist == checkout
