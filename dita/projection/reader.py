"""A read-only view of dita's maps, for dashboards and other services.

Built on the projection contract (`projections/`): JSON documents keyed by
kernel. Reads go to the cluster; `subscribe` delivers changes through a
bounded queue so nothing waits on the client's I/O thread.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dita.projection.base import ACCOUNTS_MAP, CONTROL_MAP, KERNELS_MAP, SLOTS_MAP

LIVE_STAGES = (
    "ORDER_REQUESTED",
    "ORDER_SENT",
    "ENTRY_WORKING",
    "POSITION_OPEN",
    "EXIT_REQUESTED",
    "EXIT_WORKING",
)


def _decode(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    text = value.to_string() if hasattr(value, "to_string") else value
    doc: dict[str, Any] = json.loads(text)
    return doc


def _decode_lenient(value: Any) -> dict[str, Any] | None:
    """A document, or None when it is not a JSON object (a stray writer must not stop a dashboard)."""
    try:
        doc = _decode(value)
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


def _slot_order(doc: dict[str, Any]) -> tuple[str, int]:
    slot_id = doc.get("slot_id")
    return str(doc.get("kernel_id", "")), slot_id if isinstance(slot_id, int) else -1


@dataclass(frozen=True)
class ProjectionView:
    """Everything in dita's maps at one moment: the four maps read with their requests in flight
    at once, so the view is as near to one instant as the cluster gives.

    `unreadable` counts values that were not JSON objects and were left out.
    """

    kernels: dict[str, dict[str, Any]]
    slots: list[dict[str, Any]]
    accounts: dict[str, dict[str, Any]]
    control: dict[str, dict[str, Any]]
    read_at: float
    unreadable: int = 0
    took_s: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Change:
    """One change seen by a subscription: which map and key, and the document (None when removed)."""

    map_name: str
    key: str
    event: str
    document: dict[str, Any] | None


class Subscription:
    """Changes of dita's maps, newest version per key only, in arrival order.

    Iterate it (blocks for the next change) or call `get(timeout)`. The queue
    is bounded: when a reader falls behind by `capacity` changes, the oldest
    are dropped and `dropped` counts them; read the maps again to catch up.
    """

    def __init__(self, reader: ProjectionReader, maps: tuple[str, ...], capacity: int) -> None:
        self._queue: queue.Queue[Change] = queue.Queue(maxsize=capacity)
        self._versions: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.dropped = 0
        self._registrations: list[tuple[Any, str]] = []
        for name in maps:
            imap = reader.client.get_map(name)
            reg = imap.add_entry_listener(
                include_value=True,
                added_func=lambda e, n=name: self._on(n, "ADDED", e),
                updated_func=lambda e, n=name: self._on(n, "UPDATED", e),
                removed_func=lambda e, n=name: self._on(n, "REMOVED", e),
                expired_func=lambda e, n=name: self._on(n, "EXPIRED", e),
            ).result()
            self._registrations.append((imap, reg))

    def _on(self, map_name: str, kind: str, event: Any) -> None:
        # Runs on the client's I/O thread: decode, filter stale, enqueue; never block.
        doc = _decode(event.value) if kind in ("ADDED", "UPDATED") else None
        key = str(event.key)
        version = doc.get("version") if doc else None
        with self._lock:
            if isinstance(version, int):
                last = self._versions.get((map_name, key), -1)
                if version < last:
                    return
                self._versions[(map_name, key)] = version
            change = Change(map_name, key, kind, doc)
            while True:
                try:
                    self._queue.put_nowait(change)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass

    def get(self, timeout: float | None = None) -> Change | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[Change]:
        while True:
            yield self._queue.get()

    def close(self) -> None:
        for imap, reg in self._registrations:
            imap.remove_entry_listener(reg).result()
        self._registrations.clear()


class ProjectionReader:
    """Slots, accounts, kernel status and control of one kernel or all, read from the cluster."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _values(self, map_name: str, kernel_id: str | None = None) -> list[dict[str, Any]]:
        imap = self.client.get_map(map_name).blocking()
        if kernel_id is None:
            values = imap.values()
        else:
            from hazelcast.predicate import equal

            values = imap.values(equal("kernel_id", kernel_id))
        return [d for d in (_decode(v) for v in values) if d is not None]

    def slots(self, kernel_id: str | None = None) -> list[dict[str, Any]]:
        docs = self._values(SLOTS_MAP, kernel_id)
        return sorted(docs, key=lambda d: (d["kernel_id"], d["slot_id"]))

    def open_positions(self) -> list[dict[str, Any]]:
        return [d for d in self.slots() if d["fsm_state"] in LIVE_STAGES and d["size"] > 0]

    def account(self, kernel_id: str) -> dict[str, Any] | None:
        return _decode(self.client.get_map(ACCOUNTS_MAP).blocking().get(kernel_id))

    def accounts(self) -> dict[str, dict[str, Any]]:
        return {d["kernel_id"]: d for d in self._values(ACCOUNTS_MAP)}

    def kernel(self, kernel_id: str) -> dict[str, Any] | None:
        return _decode(self.client.get_map(KERNELS_MAP).blocking().get(kernel_id))

    def kernels(self) -> dict[str, dict[str, Any]]:
        return {d["kernel_id"]: d for d in self._values(KERNELS_MAP)}

    def control(self) -> dict[str, dict[str, Any]]:
        entries = self.client.get_map(CONTROL_MAP).blocking().entry_set()
        return {str(k): d for k, v in entries if (d := _decode(v)) is not None}

    def read_all(self, timeout: float = 5.0, *, live_slots_only: bool = False) -> ProjectionView:
        """Kernels, slots, accounts and control in one go, waiting at most `timeout` seconds.

        A cluster that does not answer in time raises `TimeoutError`; any other
        failure of a read is raised as the client raised it. With
        `live_slots_only`, the cluster filters the slots to those working a
        trade (LIVE_STAGES), so closed and idle ones never cross the network.
        """
        from hazelcast.future import combine_futures
        from hazelcast.predicate import in_

        started = time.monotonic()
        slots_map = self.client.get_map(SLOTS_MAP)
        requests = [
            self.client.get_map(KERNELS_MAP).entry_set(),
            slots_map.values(in_("fsm_state", *LIVE_STAGES)) if live_slots_only else slots_map.values(),
            self.client.get_map(ACCOUNTS_MAP).entry_set(),
            self.client.get_map(CONTROL_MAP).entry_set(),
        ]
        combined = combine_futures(requests)
        done = threading.Event()
        combined.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"the cluster did not answer a read of dita's maps within {timeout:g} s")
        kernel_entries, slot_values, account_entries, control_entries = combined.result()
        unreadable = 0

        def by_key(entries: list[tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
            nonlocal unreadable
            docs: dict[str, dict[str, Any]] = {}
            for key, value in entries:
                doc = _decode_lenient(value)
                if doc is None:
                    unreadable += 1
                else:
                    docs[str(key)] = doc
            return docs

        slots = []
        for value in slot_values:
            doc = _decode_lenient(value)
            if doc is None:
                unreadable += 1
            else:
                slots.append(doc)
        slots.sort(key=_slot_order)
        kernels, accounts, control = by_key(kernel_entries), by_key(account_entries), by_key(control_entries)
        return ProjectionView(
            kernels=kernels,
            slots=slots,
            accounts=accounts,
            control=control,
            read_at=time.time(),
            unreadable=unreadable,
            took_s=time.monotonic() - started,
        )

    def subscribe(
        self, maps: tuple[str, ...] = (SLOTS_MAP, ACCOUNTS_MAP, KERNELS_MAP), capacity: int = 10_000
    ) -> Subscription:
        return Subscription(self, maps, capacity)
