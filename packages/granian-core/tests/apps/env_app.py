"""An RSGI app that answers the value of the environment variable named by the query string."""

from __future__ import annotations

import os


async def app(scope, proto):
    proto.response_str(200, [], os.environ.get(scope.query_string, '<unset>'))
