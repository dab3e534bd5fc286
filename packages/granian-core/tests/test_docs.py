"""The documentation site builds strictly, its getting-started pages work as written, and the flags its
migration tables name exist.

Each getting-started page is followed the way a new user would: in a fresh virtualenv, its `pip
install` line (plus `--find-links` to the artifacts `tools/dist.py build` made, as the page's note
says), its files written as shown, its serving command started, and its `curl` commands compared with
the output the page prints.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests_support.freshvenv import CommandServer, Distributions, FreshVenv
from tests_support.server import free_port

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / 'docs'
# The getting-started pages install from PyPI (Flask, FastAPI, click) into fresh virtualenvs.
pytestmark = pytest.mark.timeout(1800)

CODE_BLOCK = re.compile(r'^```(\w+)([^\n]*)\n(.*?)^```', re.MULTILINE | re.DOTALL)
VENV_PRELUDE = 'python3 -m venv .venv && . .venv/bin/activate'


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / 'mkdocs'
    result = subprocess.run(
        [str(mkdocs), 'build', '--strict', '--site-dir', str(tmp_path / 'site')],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={'NO_MKDOCS_2_WARNING': '1', 'PATH': str(Path(sys.executable).parent)},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / 'site'
    for page in ['getting-started/wsgi', 'migrate/gunicorn', 'deploy/kubernetes', 'spec/rsgi', 'benchmarks', 'options']:
        assert (site / page / 'index.html').is_file(), page
    # snippets pulled the deployment files in; the hook published the charts next to their page
    assert 'terminationGracePeriodSeconds' in (site / 'deploy/kubernetes/index.html').read_text()
    assert list((site / 'benchmarks/results').glob('*.png'))


# Migration tables


def _known_flags() -> set[str]:
    from granian.options import OPTIONS

    known = {'--venv', '--version', '--help'}
    for option in OPTIONS:
        for spelling in option.flags:
            first, _, negative = spelling.partition('/')
            known |= {first, negative} - {''}
    return known


@pytest.mark.parametrize('page', ['gunicorn', 'uvicorn', 'granian'])
def test_every_flag_a_migration_page_names_exists(page: str) -> None:
    text = (DOCS / 'migrate' / f'{page}.md').read_text()
    rows = [line.split('|') for line in text.splitlines() if line.startswith('| ') and not line.startswith('|---')]
    granian_column = ' '.join(row[2] for row in rows[1:] if len(row) > 3)
    spans = re.findall(r'`([^`]+)`', granian_column)
    named = {flag for span in spans for flag in re.findall(r'(?<![\w-])(--[a-z0-9][a-z0-9-]*)', span)}
    assert named, f'no flags found in the tables of {page}.md'
    assert named - _known_flags() == set()


# Getting started


@dataclass
class Walkthrough:
    """What a getting-started page tells the reader to do, in order."""

    installs: list[list[str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    serve: list[str] = field(default_factory=list)
    #: (curl arguments, the output the page shows)
    requests: list[tuple[list[str], str]] = field(default_factory=list)


def _walkthrough(page: Path, port: int) -> Walkthrough:
    steps = Walkthrough()
    text = page.read_text().replace('8000', str(port))
    for language, attributes, body in CODE_BLOCK.findall(text):
        title = re.search(r'title="([^"]+)"', attributes)
        if title:
            steps.files[title.group(1)] = body
        elif language == 'bash':
            for line in body.strip().splitlines():
                if line == VENV_PRELUDE:
                    continue
                argv = shlex.split(line.split('  #')[0])
                if argv[:2] == ['pip', 'install']:
                    steps.installs.append(argv[2:])
                else:
                    assert not steps.serve, f'{page.name}: two serving commands'
                    steps.serve = argv
        elif language == 'console':
            for chunk in re.split(r'^\$ ', body, flags=re.MULTILINE)[1:]:
                command, _, output = chunk.partition('\n')
                argv = shlex.split(command)
                assert argv[0] == 'curl', f'{page.name}: only curl commands are followed: {command}'
                steps.requests.append((argv[1:], output.strip()))
    return steps


@pytest.mark.parametrize('interface', ['wsgi', 'asgi', 'rsgi'])
def test_getting_started_works_as_written(
    interface: str, distributions: Distributions, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = free_port()
    steps = _walkthrough(DOCS / 'getting-started' / f'{interface}.md', port)
    assert steps.installs and steps.files and steps.serve and steps.requests, steps

    venv = FreshVenv(tmp_path_factory.mktemp(f'getting-started-{interface}'))
    for packages in steps.installs:
        venv.pip_install('--find-links', distributions.directory, *packages)
    for name, body in steps.files.items():
        venv.write(name, body)
    program = venv.bin / steps.serve[0]
    argv = [program if program.exists() else steps.serve[0], *steps.serve[1:]]
    with CommandServer(argv, working_dir=venv.workdir, port=port) as server:
        for curl_args, expected in steps.requests:
            result = subprocess.run(
                ['curl', '--silent', '--show-error', '--max-time', '30', *curl_args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr + server.output
            assert result.stdout.strip() == expected, server.output
