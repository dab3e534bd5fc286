"""The ``granian`` command line: options derived from the option registry, then a server for the app.

Every option (flags, environment variable, default, range, help, group) comes from `granian.options`;
values are read and checked by the registry, so the command refuses exactly what `Granian(...)`
refuses, with the same one-line message. Only the registry is imported up front: `granian --help`
loads no server machinery.
"""

from __future__ import annotations

from typing import Any, NoReturn

import click

from granian.errors import ConfigurationError, FatalError
from granian.options import GROUPS, OPTIONS, OPTIONS_BY_NAME, Option, OptionError

from ._version import __version__

__all__ = ['__version__', 'cli', 'entrypoint']


class OptionValueError(click.BadParameter):
    """A value the registry refused; shown as its one-line message, without click's usage lines."""

    def format_message(self) -> str:
        """The registry's message as it is."""
        return self.message

    def show(self, file: Any = None) -> None:
        """Print ``Error: <message>`` on stderr."""
        click.echo(f'Error: {self.message}', err=True, file=file)


def _convert(option: Option, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
    try:
        return option.parse(value) if isinstance(value, str) else option.check(value)
    except OptionError as exc:
        raise OptionValueError(str(exc), ctx=ctx, param=param) from None


class RegistryValue(click.ParamType):
    """A click type that reads and checks values with a registry option."""

    def __init__(self, option: Option) -> None:
        self.option = option
        self.name = option.kind.metavar.lower()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse text (command line, environment) or check a Python default."""
        return _convert(self.option, value, param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str | None:
        """The kind's placeholder: `[a|b|c]` for choices."""
        return self.option.kind.metavar


class RegistryFlag(click.types.BoolParamType):
    """The boolean type of `--x/--no-x` options; environment values go through the registry."""

    def __init__(self, option: Option) -> None:
        self.option = option

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Accept the flag's own True/False, or read an environment value with the registry."""
        return _convert(self.option, value, param, ctx)


def click_option(option: Option) -> click.Option:
    """The click option of a registry option."""
    common: dict[str, Any] = {
        'envvar': option.env,
        'show_envvar': True,
        # A plain default is shown as it is; computed and unset ones by their description.
        'show_default': True
        if option.default_text is None and option.default is not None
        else option.default_display(),
        'help': option.help,
        'default': option.default,
        'multiple': option.multiple,
    }
    if option.kind.is_flag:
        return click.Option([*option.flags, option.name], is_flag=True, type=RegistryFlag(option), **common)
    return click.Option([*option.flags, option.name], type=RegistryValue(option), **common)


class GroupedCommand(click.Command):
    """A command whose `--help` lists options by concern, in the registry's groups."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """One help section per option group, then the options outside the registry."""
        params = {param.name: param for param in self.get_params(ctx) if isinstance(param, click.Option)}
        for group, title in GROUPS.items():
            rows = [params[option.name].get_help_record(ctx) for option in OPTIONS if option.group == group]
            present = [row for row in rows if row is not None]
            if present:
                with formatter.section(title):
                    formatter.write_dl(present)
        others = [param.get_help_record(ctx) for name, param in params.items() if name not in OPTIONS_BY_NAME]
        with formatter.section('Other options'):
            formatter.write_dl([row for row in others if row is not None])


DISTRIBUTIONS = ['granian-core', 'granian-asgi', 'granian-rsgi', 'granian-wsgi', 'granian-cli']


def _versions() -> list[str]:
    """``granian <version>``, then one line per distribution with its installed version."""
    import platform
    from importlib import metadata

    from granian import __version__

    lines = [f'granian {__version__}']
    for distribution in DISTRIBUTIONS:
        try:
            installed = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            installed = 'not installed'
        lines.append(f'  {distribution} {installed}')
    lines.append(f'  {platform.python_implementation()} {platform.python_version()}')
    return lines


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo('\n'.join(_versions()))
    ctx.exit()


def _fail(ctx: click.Context, message: str, exit_code: int) -> NoReturn:
    """Print ``message`` as one line on stderr and leave with ``exit_code``."""
    if message:
        click.echo(f'Error: {message.splitlines()[0]}', err=True)
    ctx.exit(exit_code)


@click.pass_context
def _serve(ctx: click.Context, app: str, venv: str | None, **values: Any) -> None:
    """Run a granian server for APP with the given options."""
    from granian.options import kwargs_from_values

    # Imported here so that `granian --help` does not pay for loading the server machinery.
    from granian.server import Server

    from . import _venv

    try:
        project_venv = _venv.find(venv, values.get('working_dir'))
    except _venv.VenvError as exc:
        _fail(ctx, str(exc), 1)
    if project_venv is not None:
        _venv.activate(project_venv)
    try:
        Server(app, **kwargs_from_values(values)).serve()
    except FatalError as exc:
        # The server logs its own reason before raising; repeat only what it did not log.
        message = '' if exc.logged else str(exc)
        _fail(ctx, message, 2 if isinstance(exc, ConfigurationError) else 1)


cli = GroupedCommand(
    'granian',
    callback=_serve,
    context_settings={'max_content_width': 120},
    help='Serve APP, a Python import target such as "module:app" or "path/to/file.py:app" (attribute defaults to app).',
    params=[
        click.Argument(['app'], required=True),
        *(click_option(option) for option in OPTIONS),
        click.Option(
            ['--venv'],
            type=click.Path(file_okay=False),
            envvar='GRANIAN_VENV',
            show_envvar=True,
            help=(
                "The project's virtualenv, whose packages the app imports when granian is installed elsewhere "
                '(pipx). Default: an active $VIRTUAL_ENV, else .venv in the working directory.'
            ),
        ),
        click.Option(
            ['--version'],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_print_version,
            help='Show the granian version and exit.',
        ),
    ],
)


def entrypoint() -> None:
    """Console script entry point of the ``granian`` command."""
    cli()
