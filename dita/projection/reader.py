"""A read-only view of dita's maps, for dashboards and other services.

Built on the projection contract (`projections/`): JSON documents keyed by
kernel. Reads go to the cluster; `subscribe` delivers changes through a
bounded queue so nothing waits on the client's I/O thread.

Anyone who can reach the cluster can write these maps: the reader hardens
its client (`dita.cluster.serialization.harden`), so no value runs code,
and leaves out whatever is not a document of the contract
(`dita.projection.documents`). A value the members cannot read either makes
them fail a whole filtered query; the reader then reads the map whole and
filters here, so one planted value hides nothing else.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dita.projection.base import ACCOUNTS_MAP, CONTROL_MAP, KERNELS_MAP, SLOTS_MAP
from dita.projection.documents import read_document, slot_document, store_document

LIVE_STAGES = (
    "ORDER_REQUESTED",
    "ORDER_SENT",
    "ENTRY_WORKING",
    "POSITION_OPEN",
    "EXIT_REQUESTED",
    "EXIT_WORKING",
)


#: How each map's values are read; None is a malformed (or absent) value.
_READERS: dict[str, Callable[[Any], dict[str, Any] | None]] = {
    SLOTS_MAP: slot_document,
    ACCOUNTS_MAP: store_document,
}


def _reader_of(map_name: str) -> Callable[[Any], dict[str, Any] | None]:
    return _READERS.get(map_name, read_document)


def _refused_query(error: BaseException | None) -> bool:
    """Whether a member failed a filtered query because of a value it cannot read
    (one not JSON, which anyone may have planted), rather than the cluster failing."""
    from hazelcast.errors import HazelcastSerializationError, QueryError

    return isinstance(error, HazelcastSerializationError | QueryError)


def _await(futures: list[Any], deadline: float, timeout: float) -> None:
    """Returns once every future is done, failed or not; TimeoutError at `deadline`
    (a `time.monotonic()` instant, `timeout` s after the read began)."""
    from hazelcast.future import combine_futures

    done = threading.Event()
    combine_futures(futures).add_done_callback(lambda _f: done.set())
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise TimeoutError(f"the cluster did not answer a read of dita's maps within {timeout:g} s")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _slot_order(doc: dict[str, Any]) -> tuple[str, int]:
    slot_id = doc.get("slot_id")
    return str(doc.get("kernel_id", "")), slot_id if isinstance(slot_id, int) else -1


@dataclass(frozen=True)
class ProjectionView:
    """Everything in dita's maps at one moment: the four maps read with their requests in flight
    at once, so the view is as near to one instant as the cluster gives.

    `unreadable` counts values left out as malformed: refused by the client,
    not JSON objects, slots and accounts without a sound `version`, and
    entries whose key is not text.
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
        #: changes left out because their key or document was malformed
        self.unreadable = 0
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
        doc = _reader_of(map_name)(event.value) if kind in ("ADDED", "UPDATED") else None
        if not isinstance(event.key, str) or (doc is None and kind in ("ADDED", "UPDATED")):
            with self._lock:
                self.unreadable += 1
            return
        key = event.key
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
    """Slots, accounts, kernel status and control of one kernel or all, read from the cluster.

    The client is hardened in place (it refuses to unpickle values from then
    on). Malformed values are left out.
    """

    def __init__(self, client: Any) -> None:
        from dita.cluster.serialization import harden

        self.client = harden(client)

    def _values(self, map_name: str, kernel_id: str | None = None) -> list[dict[str, Any]]:
        imap = self.client.get_map(map_name).blocking()
        read = _reader_of(map_name)
        if kernel_id is None:
            return [d for d in map(read, imap.values()) if d is not None]
        from hazelcast.predicate import equal

        try:
            values = imap.values(equal("kernel_id", kernel_id))
        except Exception as e:
            if not _refused_query(e):
                raise
            values = imap.values()
        return [d for d in map(read, values) if d is not None and d.get("kernel_id") == kernel_id]

    def slots(self, kernel_id: str | None = None) -> list[dict[str, Any]]:
        docs = self._values(SLOTS_MAP, kernel_id)
        return sorted(docs, key=_slot_order)

    def open_positions(self) -> list[dict[str, Any]]:
        return [d for d in self.slots() if d.get("fsm_state") in LIVE_STAGES and _positive(d.get("size"))]

    def account(self, kernel_id: str) -> dict[str, Any] | None:
        return store_document(self.client.get_map(ACCOUNTS_MAP).blocking().get(kernel_id))

    def accounts(self) -> dict[str, dict[str, Any]]:
        return {d["kernel_id"]: d for d in self._values(ACCOUNTS_MAP)}

    def kernel(self, kernel_id: str) -> dict[str, Any] | None:
        return read_document(self.client.get_map(KERNELS_MAP).blocking().get(kernel_id))

    def kernels(self) -> dict[str, dict[str, Any]]:
        return {d["kernel_id"]: d for d in self._values(KERNELS_MAP) if isinstance(d.get("kernel_id"), str)}

    def control(self) -> dict[str, dict[str, Any]]:
        entries = self.client.get_map(CONTROL_MAP).blocking().entry_set()
        return {k: d for k, v in entries if isinstance(k, str) and (d := read_document(v)) is not None}

    def read_all(self, timeout: float = 5.0, *, live_slots_only: bool = False) -> ProjectionView:
        """Kernels, slots, accounts and control in one go, waiting at most `timeout` seconds.

        A cluster that does not answer in time raises `TimeoutError`; any other
        failure of a read is raised as the client raised it. With
        `live_slots_only`, the cluster filters the slots to those working a
        trade (LIVE_STAGES), so closed and idle ones never cross the network;
        while a member cannot filter (a value it cannot read is in the map),
        every slot is read and filtered here.
        """
        from hazelcast.predicate import in_

        started = time.monotonic()
        slots_map = self.client.get_map(SLOTS_MAP)
        requests = [
            self.client.get_map(KERNELS_MAP).entry_set(),
            slots_map.values(in_("fsm_state", *LIVE_STAGES)) if live_slots_only else slots_map.values(),
            self.client.get_map(ACCOUNTS_MAP).entry_set(),
            self.client.get_map(CONTROL_MAP).entry_set(),
        ]
        deadline = started + timeout
        _await(requests, deadline, timeout)
        filter_live_here = False
        if live_slots_only and _refused_query(requests[1].exception()):
            requests[1] = slots_map.values()
            _await([requests[1]], deadline, timeout)
            filter_live_here = True
        kernel_entries, slot_values, account_entries, control_entries = (r.result() for r in requests)
        unreadable = 0

        def by_key(entries: list[tuple[Any, Any]], map_name: str) -> dict[str, dict[str, Any]]:
            nonlocal unreadable
            read = _reader_of(map_name)
            docs: dict[str, dict[str, Any]] = {}
            for key, value in entries:
                doc = read(value)
                if doc is None or not isinstance(key, str):
                    unreadable += 1
                else:
                    docs[key] = doc
            return docs

        slots = []
        for value in slot_values:
            doc = slot_document(value)
            if doc is None:
                unreadable += 1
            elif not filter_live_here or doc.get("fsm_state") in LIVE_STAGES:
                slots.append(doc)
        slots.sort(key=_slot_order)
        kernels = by_key(kernel_entries, KERNELS_MAP)
        accounts = by_key(account_entries, ACCOUNTS_MAP)
        control = by_key(control_entries, CONTROL_MAP)
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
