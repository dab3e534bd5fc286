"""granian: a Rust HTTP server for Python web applications (ASGI, RSGI and WSGI)."""

# Other distributions (granian-rsgi, granian-cli, ...) add sub-packages to this namespace.
__path__ = __import__('pkgutil').extend_path(__path__, __name__)

from ._loops import loops
from ._version import __version__
from .server import Server as Granian

__all__ = ['Granian', '__version__', 'loops']
