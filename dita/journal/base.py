"""Where transitions are recorded when control's journal flag is on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class KernelJournal(Protocol):
    """Takes journal entries: plain dicts (msgpack- and JSON-able) that the kernel builds
    with kernel_id, seq, transition, slot, event, intent, outcome, control, recorded_at."""

    def record(self, entry: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class CompositeJournal:
    """Records every entry into several journals."""

    def __init__(self, *journals: KernelJournal) -> None:
        self.journals = journals

    def record(self, entry: Mapping[str, Any]) -> None:
        for journal in self.journals:
            journal.record(entry)

    def close(self) -> None:
        for journal in self.journals:
            journal.close()
