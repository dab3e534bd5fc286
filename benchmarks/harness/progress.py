"""What every runner of the harness prints and records as it goes: progress lines and notes."""

from __future__ import annotations

import time


class Progress:
    """Progress lines prefixed with the time since the run started, and notes kept in `results`."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.results: dict = {}

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        """One progress line, prefixed with the elapsed time."""
        minutes, seconds = divmod(int(self.elapsed()), 60)
        print(f'[{minutes:02d}:{seconds:02d}] {text}', flush=True)

    def note(self, text: str) -> None:
        """A remark that goes into the results (and the README)."""
        self.results['notes'].append(text)
        self.say(f'note: {text}')
