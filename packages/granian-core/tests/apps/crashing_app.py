"""An RSGI app whose worker dies (exit code 1) $CRASH_AFTER_SECONDS after it starts serving, every time:
a crash loop for the supervisor's respawn logic."""

from __future__ import annotations

import os


class CrashingApp:
    def __rsgi_init__(self, loop) -> None:
        loop.call_later(float(os.environ.get('CRASH_AFTER_SECONDS', '0.3')), os._exit, 1)

    async def __rsgi__(self, scope, proto) -> None:
        proto.response_str(200, [], str(os.getpid()))


app = CrashingApp()
