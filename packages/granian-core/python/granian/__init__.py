"""granian: a Rust HTTP server for Python web applications (ASGI, RSGI and WSGI)."""

# Other distributions (granian-rsgi, granian-cli, ...) add sub-packages to this namespace.
__path__ = __import__('pkgutil').extend_path(__path__, __name__)

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._loops import loops
    from .server import Server as Granian

__all__ = ['Granian', '__version__', 'loops']


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `granian --help` and the option registry load no server machinery.
    if name == 'Granian':
        from .server import Server

        return Server
    if name == 'loops':
        from ._loops import loops

        return loops
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
