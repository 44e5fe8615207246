"""A bounded in-memory journal: the newest entries, for tests and live inspection."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any


class MemoryJournal:
    """Keeps the newest `capacity` entries (None: all of them)."""

    def __init__(self, capacity: int | None = 100_000) -> None:
        self._entries: deque[Mapping[str, Any]] = deque(maxlen=capacity)

    def record(self, entry: Mapping[str, Any]) -> None:
        self._entries.append(entry)

    def entries(self) -> list[Mapping[str, Any]]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        """Nothing to release; entries stay readable."""
