"""The defaults of every server option, read from `Server`'s signature: the one place they live.

The CLI (granian-cli) and the click-free runners (`python -m granian.wsgi`) take their defaults from
here, so `Granian(...)`, `granian ...` and `python -m granian.wsgi ...` always agree.
"""

from __future__ import annotations

import inspect
from typing import Any

from .supervisor import Server

SERVER_DEFAULTS: dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(Server.__init__).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}
