#!/usr/bin/env python3
"""Write what is generated from the option registry (`granian.options`), or check that it is current.

    python tools/options.py           # rewrite the generated parts
    python tools/options.py --check   # exit 1 and name the stale files (CI runs this through a test)

Generated: the keyword arguments of `Granian(...)` (granian/server/supervisor.py) and of the embedded
server (granian/server/embed.py), the fields of the
`granian.http` settings dataclasses, and the option reference docs/options.md. Only the text between
`# BEGIN GENERATED: <part>` and `# END GENERATED` is rewritten in the Python files.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / 'packages' / 'granian-core' / 'python'
sys.path.insert(0, str(CORE))

from granian.options import GROUPS, OPTIONS, SECTIONS, section_options
from granian.server.embed import EMBEDDED_OPTIONS

SUPERVISOR = CORE / 'granian' / 'server' / 'supervisor.py'
EMBED = CORE / 'granian' / 'server' / 'embed.py'
HTTP_SETTINGS = CORE / 'granian' / 'http.py'
REFERENCE = ROOT / 'docs' / 'options.md'
REGISTRY = 'packages/granian-core/python/granian/options/_registry.py'


def _signature_lines(options=OPTIONS) -> list[str]:
    lines = []
    emitted_sections: set[str] = set()
    for option in options:
        if option.section is not None:
            if option.section not in emitted_sections:
                emitted_sections.add(option.section)
                spec = SECTIONS[option.section]
                lines.append(f'{spec.kwarg}: {spec.class_name} | None = None,')
            continue
        lines.append(f'{option.name}: {option.annotation} = {option.default!r},')
    return lines


def _field_lines(section: str) -> list[str]:
    lines = []
    for option in section_options(section):
        lines.append(f'{option.field}: {option.annotation} = {option.default!r}')
        lines.append(f'"""{option.help}"""')
    return lines


def _replace_block(text: str, part: str, lines: list[str], path: Path) -> str:
    pattern = re.compile(
        rf'^( *)# BEGIN GENERATED: {re.escape(part)} .*?\n.*?^ *# END GENERATED\n', re.MULTILINE | re.DOTALL
    )
    match = pattern.search(text)
    if match is None:
        raise SystemExit(f'{path}: no "# BEGIN GENERATED: {part}" block')
    indent = match.group(1)
    first_line = match.group(0).splitlines()[0]
    body = ''.join(f'{indent}{line}\n' for line in lines)
    return text[: match.start()] + f'{first_line}\n{body}{indent}# END GENERATED\n' + text[match.end() :]


def _markdown_cell(text: str) -> str:
    return text.replace('|', '\\|')


def render_reference() -> str:
    """The text of docs/options.md."""
    out = [
        '# Option reference',
        '',
        f'<!-- Generated from {REGISTRY} by `python tools/options.py`; do not edit by hand. -->',
        '',
        'Every option can be set three ways, and each way accepts and refuses the same values with the same',
        'message: a command line flag (`granian`, and `python -m granian.wsgi` for the options that apply to',
        'WSGI), an environment variable, or a keyword argument of `granian.Granian` (HTTP/1 and HTTP/2',
        'options are fields of `granian.http.HTTP1Settings` / `HTTP2Settings`, passed as `http1_settings=` /',
        '`http2_settings=`). A flag beats its environment variable; a value out of range is refused at',
        'startup with one line naming the flag, the variable and the keyword.',
        '',
        'Durations take seconds (`90`, `2.5`) or units (`1h30m`, `2d`); on/off variables take `1`/`0`,',
        '`true`/`false`, `yes`/`no` or `on`/`off`.',
        '',
    ]
    for group, title in GROUPS.items():
        members = [option for option in OPTIONS if option.group == group]
        if not members:
            continue
        out += [
            f'## {title}',
            '',
            '| flag | environment variable | Python | value | default | since |',
            '|---|---|---|---|---|---|',
        ]
        for option in members:
            flags = ' / '.join(f'`{switch}`' for switch in option.switches)
            python = f'`{option.python_form.replace("...", "")}`'
            out.append(
                f'| {flags} | `{option.env}` | {python} | {_markdown_cell(option.kind.describe())} '
                f'| {_markdown_cell(option.default_display())} | {option.since} |'
            )
        out.append('')
        for option in members:
            note = f' {option.note}' if option.note else ''
            if option.interfaces is not None:
                note += f' Interfaces: {", ".join(sorted(option.interfaces))}.'
            out.append(f'- `{option.switches[0]}`: {option.help}{note}')
        out.append('')
    return '\n'.join(out + _command_only_lines())


def _command_only_lines() -> list[str]:
    """The `granian` command's own options (granian-cli), which have no keyword argument."""
    from granian.cli import cli

    registered = {option.name for option in OPTIONS}
    out = [
        '## The `granian` command only',
        '',
        '| flag | environment variable | what it does |',
        '|---|---|---|',
    ]
    for param in cli.params:
        if param.param_type_name != 'option' or param.name in registered:
            continue
        flags = ' / '.join(f'`{flag}`' for flag in [*param.opts, *param.secondary_opts])
        env = f'`{param.envvar}`' if param.envvar else ''
        out.append(f'| {flags} | {env} | {_markdown_cell(param.help or "")} |')
    return [*out, '', '`--help` lists every option, grouped as on this page.', '']


def generated_files() -> dict[Path, str]:
    """Each generated file with the text it should have."""
    supervisor = _replace_block(SUPERVISOR.read_text(encoding='utf-8'), 'options', _signature_lines(), SUPERVISOR)
    http = HTTP_SETTINGS.read_text(encoding='utf-8')
    for section in SECTIONS:
        http = _replace_block(http, f'{section} fields', _field_lines(section), HTTP_SETTINGS)
    embedded = _replace_block(
        EMBED.read_text(encoding='utf-8'), 'embedded options', _signature_lines(EMBEDDED_OPTIONS), EMBED
    )
    return {SUPERVISOR: supervisor, EMBED: embedded, HTTP_SETTINGS: http, REFERENCE: render_reference()}


def main() -> int:
    check = '--check' in sys.argv[1:]
    stale = []
    for path, text in generated_files().items():
        current = path.read_text(encoding='utf-8') if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not check:
            path.write_text(text, encoding='utf-8')
    if check and stale:
        names = ', '.join(str(path) for path in stale)
        print(f'Generated option code is stale in {names}; run: python tools/options.py', file=sys.stderr)
        return 1
    for path in stale:
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
