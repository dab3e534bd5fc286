"""Version of granian-wsgi, which must equal granian-core's."""

from granian import __version__ as _core_version

__version__ = '0.1.0'

if _core_version != __version__:
    raise ImportError(
        f'granian-wsgi {__version__} needs granian-core {__version__}, but granian-core {_core_version} is installed; '
        f'install matching versions: pip install "granian-core=={__version__}"'
    )
