"""Pauses between attempts to reach something that did not answer."""

from __future__ import annotations


class Backoff:
    """Pauses that double from `first` up to `cap`, and start again after a success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.attempts = 0

    def next_pause(self) -> float:
        pause = min(self.first * 2.0**self.attempts, self.cap)
        self.attempts = min(self.attempts + 1, 32)
        return pause

    def reset(self) -> None:
        self.attempts = 0
