"""WSGI (PEP 3333) for granian: serve Flask, Django and other WSGI applications.

`pip install granian-wsgi` is enough: `python -m granian.wsgi app:app` serves without the CLI.
"""

from __future__ import annotations

from ._file_wrapper import FileWrapper
from ._version import __version__
from ._worker import create_worker

__all__ = ['FileWrapper', '__version__', 'create_worker']
