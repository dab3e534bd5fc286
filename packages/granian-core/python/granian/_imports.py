"""Loading the application target (`module:attr` or `path/to/file.py:attr`)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from typing import Any

from .errors import ConfigurationError

# A colon followed by a path separator is part of a Windows path, not the attribute separator.
_TARGET_SPLIT = re.compile(r':(?![\\/])')


class TargetLoadError(Exception):
    """The application target could not be imported or resolved."""


def prepare_import_path(working_dir: str | os.PathLike | None) -> None:
    """Make modules in `working_dir` (or the current directory) importable, as a shell user expects."""
    directory = os.path.abspath(working_dir) if working_dir else os.getcwd()
    if working_dir:
        if not os.path.isdir(directory):
            raise ConfigurationError(f'working_dir {directory!r} is not a directory')
        os.chdir(directory)
    if directory not in sys.path:
        sys.path.insert(0, directory)


def _split_target(target: str) -> tuple[str, str]:
    """The module (or file) and the attribute path of `target`."""
    parts = _TARGET_SPLIT.split(target, maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], 'app')


def _is_file(location: str) -> bool:
    return location.endswith('.py') or os.sep in location


def _file_module_name(path: str) -> str:
    """The module name a file target is imported under."""
    return os.path.splitext(os.path.basename(path))[0]


def target_package(target: str) -> str:
    """The top-level name `target`'s module is imported under (a file target: the file's stem)."""
    location = _split_target(target)[0]
    return _file_module_name(location) if _is_file(location) else location.split('.')[0]


def load_target(target: str, factory: bool = False) -> Any:
    """Import `target` and return the object it names (called first when `factory` is set)."""
    location, attr_path = _split_target(target)
    if not location or not attr_path:
        raise TargetLoadError(f'{target!r} is not a valid target; use "module:attribute"')
    try:
        if _is_file(location):
            module = _import_file(location)
        else:
            module = importlib.import_module(location)
    except TargetLoadError:
        raise
    except BaseException as exc:
        raise TargetLoadError(f'{type(exc).__name__}: {exc}') from exc
    obj: Any = module
    for name in attr_path.split('.'):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise TargetLoadError(f'module {module.__name__!r} has no attribute {attr_path!r}') from None
    if factory:
        try:
            obj = obj()
        except BaseException as exc:
            raise TargetLoadError(f'the factory raised {type(exc).__name__}: {exc}') from exc
    return obj


def _import_file(path: str) -> Any:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise TargetLoadError(f'no such file: {path}')
    name = _file_module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetLoadError(f'cannot import {path}')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
