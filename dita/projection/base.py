"""The interface every projection implements, and the document shapes."""

from __future__ import annotations

import time
from typing import Any, Protocol

from dita.contracts import TradeSlot

SLOTS_MAP = "dita.slots"
ACCOUNTS_MAP = "dita.accounts"
CONTROL_MAP = "dita.control"
KERNELS_MAP = "dita.kernels"


def slot_key(kernel_id: str, slot_id: int) -> str:
    return f"{kernel_id}:{slot_id}"


class ProjectionSource(Protocol):
    """What a projection reads from a kernel."""

    @property
    def kernel_id(self) -> str: ...

    def drain_changes(self) -> tuple[list[TradeSlot], dict[str, Any] | None]: ...

    def status(self) -> dict[str, Any]: ...


class KernelProjection(Protocol):
    """Mirrors kernels' slots, accounts, status and control somewhere readers can see them."""

    def attach(self, source: ProjectionSource) -> None:
        """Start projecting this kernel; everything it holds is written once."""

    def detach(self, kernel_id: str) -> None:
        """Stop projecting a kernel (after a final flush)."""

    def flush(self, timeout: float | None = None) -> None:
        """Write everything pending now; returns once written (or the timeout passed)."""

    def close(self) -> None:
        """Flush and release resources."""

    def stats(self) -> dict[str, Any]:
        """Counters: writes, errors, backlog, lag."""


def slot_document(kernel_id: str, slot: TradeSlot) -> dict[str, Any]:
    doc: dict[str, Any] = slot.to_dict()
    doc["kernel_id"] = kernel_id
    doc["updated_at"] = time.time()
    return doc


def account_document(kernel_id: str, account: dict[str, Any]) -> dict[str, Any]:
    doc = dict(account)
    doc["kernel_id"] = kernel_id
    doc["updated_at"] = time.time()
    return doc
