"""The embedded default projection: dita's maps (docs/ARCHITECTURE.md, "Maps and
documents"), held in this process.

It pulls on read: reading a map (or calling `flush`) first drains what
attached kernels changed. Nothing runs in the background and the kernel
never calls it, so it costs the kernel nothing between reads.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dita.projection.base import (
    ProjectionSource,
    account_document,
    slot_document,
    slot_key,
)


class InMemoryProjection:
    """`dita.slots`, `dita.accounts`, `dita.kernels` and `dita.control` as dicts.

    Several kernels may share one instance, as they would share a cluster;
    keys carry the kernel id so they never collide.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, ProjectionSource] = {}
        self.slots: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.kernels: dict[str, dict[str, Any]] = {}
        self.control: dict[str, dict[str, Any]] = {}
        self._writes = 0

    def attach(self, source: ProjectionSource) -> None:
        with self._lock:
            self._sources[source.kernel_id] = source
        self.flush()

    def detach(self, kernel_id: str) -> None:
        self.flush()
        with self._lock:
            source = self._sources.pop(kernel_id, None)
            if source is not None:
                self.kernels[kernel_id] = {**source.status(), "state": "STOPPED", "updated_at": time.time()}

    def flush(self, timeout: float | None = None) -> None:
        with self._lock:
            for kernel_id, source in self._sources.items():
                changed, account = source.drain_changes()
                for slot in changed:
                    key = slot_key(kernel_id, slot.slot_id)
                    old = self.slots.get(key)
                    # A write never replaces a newer version with an older one.
                    if old is None or old["version"] <= slot.version:
                        self.slots[key] = slot_document(kernel_id, slot)
                        self._writes += 1
                if account is not None:
                    self.accounts[kernel_id] = account_document(kernel_id, account)
                    self._writes += 1
                self.kernels[kernel_id] = {**source.status(), "updated_at": time.time()}

    def close(self) -> None:
        for kernel_id in list(self._sources):
            self.detach(kernel_id)

    def stats(self) -> dict[str, Any]:
        return {"writes": self._writes, "errors": 0, "backlog": 0, "kernels": len(self._sources)}

    # ----- reading (what a dashboard would query) ------------------------------

    def slot(self, kernel_id: str, slot_id: int) -> dict[str, Any] | None:
        self.flush()
        return self.slots.get(slot_key(kernel_id, slot_id))

    def kernel_slots(self, kernel_id: str) -> list[dict[str, Any]]:
        self.flush()
        prefix = f"{kernel_id}:"
        docs = [doc for key, doc in self.slots.items() if key.startswith(prefix)]
        return sorted(docs, key=lambda d: int(d["slot_id"]))

    def account(self, kernel_id: str) -> dict[str, Any] | None:
        self.flush()
        return self.accounts.get(kernel_id)

    def status(self, kernel_id: str) -> dict[str, Any] | None:
        self.flush()
        return self.kernels.get(kernel_id)
