"""Named builders of asyncio event loops, used to pick the loop of each worker (``--loop``).

Applications may register their own builder, including a replacement for ``'auto'``::

    from granian import loops

    @loops.register('auto')
    def build_loop():
        return MyLoop()
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import sys
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

__all__ = ['BuilderRegistry', 'loops']

LoopBuilder = Callable[..., asyncio.AbstractEventLoop]


class BuilderRegistry:
    """Event loop builders by name; a builder is kept only when every package it needs can be imported."""

    def __init__(self) -> None:
        self._builders: dict[str, tuple[LoopBuilder, dict[str, ModuleType]]] = {}

    def register(self, key: str, packages: Iterable[str] | None = None) -> Callable[[LoopBuilder], LoopBuilder]:
        """Decorator registering a builder under ``key`` (replacing any previous one) if ``packages`` import.

        The builder receives each imported package as a keyword argument named after its last dotted component.
        """

        def decorator(builder: LoopBuilder) -> LoopBuilder:
            modules: dict[str, ModuleType] = {}
            for name in packages or ():
                try:
                    modules[name.rpartition('.')[2]] = importlib.import_module(name)
                except ImportError:
                    return builder
            self._builders[key] = (builder, modules)
            return builder

        return decorator

    def get(self, key: str) -> Callable[[], asyncio.AbstractEventLoop]:
        """Return a zero-argument callable creating a new loop of kind ``key``; RuntimeError if unavailable."""
        try:
            builder, modules = self._builders[key]
        except KeyError:
            raise RuntimeError(f"'{key}' implementation not available.") from None
        return functools.partial(builder, **modules) if modules else builder

    def keys(self) -> list[str]:
        """Names of the available builders, in registration order."""
        return list(self._builders)

    def __contains__(self, key: object) -> bool:
        return key in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.keys()!r})'


#: The registry granian workers use to create their event loop.
loops = BuilderRegistry()


@loops.register('asyncio')
def build_asyncio_loop() -> asyncio.AbstractEventLoop:
    """Create a standard library loop, ignoring any globally installed loop policy."""
    if sys.platform == 'win32':
        return asyncio.ProactorEventLoop()
    return asyncio.SelectorEventLoop()


@loops.register('uvloop', packages=['uvloop'])
def build_uvloop_loop(uvloop: Any) -> asyncio.AbstractEventLoop:
    """Create a uvloop loop."""
    return uvloop.new_event_loop()


@loops.register('winloop', packages=['winloop'])
def build_winloop_loop(winloop: Any) -> asyncio.AbstractEventLoop:
    """Create a winloop loop (the Windows port of uvloop)."""
    return winloop.new_event_loop()


@loops.register('rloop', packages=['rloop'])
def build_rloop_loop(rloop: Any) -> asyncio.AbstractEventLoop:
    """Create an rloop loop."""
    return rloop.new_event_loop()


@loops.register('auto')
def build_auto_loop() -> asyncio.AbstractEventLoop:
    """Create the fastest available loop: rloop, then uvloop, then winloop, then asyncio."""
    for key in ('rloop', 'uvloop', 'winloop'):
        if key in loops:
            return loops.get(key)()
    return loops.get('asyncio')()
