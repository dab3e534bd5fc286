"""Version of granian-wsgi, which must equal granian-core's."""

from granian._version import require_same_core

__version__ = '0.1.0'

require_same_core('granian-wsgi', __version__)
