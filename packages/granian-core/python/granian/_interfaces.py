"""Finding the package that implements an interface; each ships separately."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import ConfigurationError

# The module (and distribution) behind each interface name.
INTERFACE_MODULES = {'asgi': 'asgi', 'asginl': 'asgi', 'rsgi': 'rsgi', 'wsgi': 'wsgi'}


def interface_package(interface: str) -> str:
    """The distribution a user installs to get `interface`."""
    return 'granian-' + INTERFACE_MODULES[str(interface)]


def interface_available(interface: str) -> bool:
    """Whether the package for `interface` is installed (without importing it)."""
    return importlib.util.find_spec('granian.' + INTERFACE_MODULES[str(interface)]) is not None


def load_interface(interface: str) -> ModuleType:
    """Import the glue module of `interface`, or explain which package is missing."""
    name = str(interface)
    if name not in INTERFACE_MODULES:
        raise ConfigurationError(f'unknown interface {name!r}; choose one of {", ".join(INTERFACE_MODULES)}')
    if not interface_available(name):
        package = interface_package(name)
        raise ConfigurationError(f"The '{name}' interface needs the {package} package: pip install {package}")
    return importlib.import_module('granian.' + INTERFACE_MODULES[name])
