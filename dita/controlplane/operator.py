"""The operator's side of the control plane: show, set, clear, wait, history.

Writes use compare-and-set on the entry, so two operators writing at once
never silently overwrite each other: one wins, the other retries on top of it
with the next rev, and both end up in the history.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from dita.controlplane.entries import CONTROL_VALUES, GLOBAL_KEY, KERNEL_PREFIX, kernel_key, parse_entry
from dita.controlplane.signing import sign_entry
from dita.enums import KernelMode, KernelVerbosity
from dita.projection.base import CONTROL_MAP, KERNELS_MAP

HISTORY_MAP = "dita.control.history"
#: A kernel whose heartbeat is older than this is not waited for.
LIVE_WITHIN_S = 10.0


def next_rev(current: dict[str, Any] | None) -> int:
    """The rev of the next write: milliseconds since the epoch, and above the current entry's.

    Revs must only grow for kernels to tell new from replayed. Counting from the
    current entry alone restarts at 1 when a cluster loses its maps (a member
    restarted empty) or an override is cleared, and kernels that remember the
    old revs would refuse every new write as stale. A clock-based rev keeps
    growing across both; the floor keeps it growing when clocks disagree.
    """
    current_rev = current.get("rev", 0) if current else 0
    floor = current_rev if isinstance(current_rev, int) and not isinstance(current_rev, bool) else 0
    return max(floor + 1, time.time_ns() // 1_000_000)


def default_author() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _json_value(doc: dict[str, Any]) -> Any:
    from hazelcast.core import HazelcastJsonValue

    return HazelcastJsonValue(json.dumps(doc, sort_keys=True, separators=(",", ":")))


def _decode(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        doc = json.loads(value.to_string() if hasattr(value, "to_string") else value)
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


def record_history(history_map: Any, kind: str, key: str, doc: dict[str, Any]) -> Any:
    """Appends one audit record to the (async) history map proxy; returns the
    future (kernels never wait for it). The proxy must have been made off the
    client's I/O thread: making one there waits, which the client forbids."""
    at = time.time()
    record = {"kind": kind, "key": key, "at": at, **doc}
    hkey = f"{int(at * 1e6):020d}-{uuid.uuid4().hex[:8]}"
    return history_map.put(hkey, _json_value(record))


@dataclass
class SetResult:
    key: str
    rev: int
    entry: dict[str, Any]
    attempts: int
    applied: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    waited_s: float = 0.0
    #: from just before the entry was written to the last kernel reporting it applied
    propagation_s: float = 0.0


class ControlOperator:
    """Reads and writes `dita.control` for an operator.

    Keyword arguments:
        control_key: HMAC key shared with kernels; entries are signed when given.
        author: recorded with every write (default user@host).
    """

    def __init__(self, client: Any, *, control_key: bytes | None = None, author: str | None = None) -> None:
        self.client = client
        self.control_key = control_key
        self.author = author or default_author()
        self._control = client.get_map(CONTROL_MAP).blocking()
        self._kernels = client.get_map(KERNELS_MAP).blocking()
        self._history = client.get_map(HISTORY_MAP)

    def show(self) -> dict[str, Any]:
        entries = {str(k): _decode(v) for k, v in self._control.entry_set()}
        now = time.time()
        kernels = {}
        for k, v in self._kernels.entry_set():
            doc = _decode(v) or {}
            doc["live"] = (
                doc.get("state") == "RUNNING" and now - float(doc.get("heartbeat_at", 0)) < LIVE_WITHIN_S
            )
            kernels[str(k)] = doc
        return {
            "global": entries.get(GLOBAL_KEY),
            "overrides": {
                k[len(KERNEL_PREFIX) :]: v for k, v in entries.items() if k.startswith(KERNEL_PREFIX)
            },
            "kernels": kernels,
        }

    def set(
        self,
        *,
        kernel_id: str | None = None,
        mode: KernelMode | str | None = None,
        verbosity: KernelVerbosity | str | None = None,
        journal: bool | None = None,
        reason: str = "",
        wait: bool = False,
        timeout: float = 10.0,
    ) -> SetResult:
        """Writes the next rev of the global entry (or one kernel's); with `wait`,
        returns once every live kernel concerned reports it applied."""
        key = GLOBAL_KEY if kernel_id is None else kernel_key(kernel_id)
        values: dict[str, Any] = {}
        if mode is not None:
            values["mode"] = KernelMode(mode).value if isinstance(mode, str) else mode.value
        if verbosity is not None:
            values["verbosity"] = (
                KernelVerbosity(verbosity).value if isinstance(verbosity, str) else verbosity.value
            )
        if journal is not None:
            values["journal"] = bool(journal)
        if not values:
            raise ValueError(f"nothing to set: give at least one of {', '.join(CONTROL_VALUES)}")
        waiter = _ApplyWaiter(self.client, key) if wait else None
        try:
            for attempt in range(1, 51):
                current_raw = self._control.get(key)
                current = _decode(current_raw)
                rev = next_rev(current)
                # Unchanged fields of the current entry carry over: a set changes what it names.
                doc = {k: current[k] for k in CONTROL_VALUES if current and k in current}
                doc.update(values)
                doc.update({"rev": rev, "author": self.author, "reason": reason, "issued_at": time.time()})
                if self.control_key is not None:
                    doc["signature"] = sign_entry(doc, self.control_key)
                parse_entry(key, json.dumps(doc), control_key=self.control_key)  # refuse our own bad entry
                value = _json_value(doc)
                written = time.monotonic()
                if current_raw is None:
                    won = self._control.put_if_absent(key, value) is None
                else:
                    won = bool(self._control.replace_if_same(key, current_raw, value))
                if won:
                    record_history(self._history, "WRITE", key, doc).result()
                    result = SetResult(key, doc["rev"], doc, attempt)
                    if waiter is not None:
                        started = time.monotonic()
                        result.applied, result.missing = waiter.wait(doc["rev"], kernel_id, timeout)
                        result.waited_s = time.monotonic() - started
                        result.propagation_s = time.monotonic() - written
                    return result
            raise RuntimeError(f"could not write {key}: 50 other writes won in a row")
        finally:
            if waiter is not None:
                waiter.close()

    def clear(self, kernel_id: str, reason: str = "") -> bool:
        """Removes one kernel's override; it falls back to the global entry."""
        key = kernel_key(kernel_id)
        old = _decode(self._control.remove(key))
        record_history(
            self._history,
            "CLEAR",
            key,
            {"author": self.author, "reason": reason, "rev": (old or {}).get("rev")},
        ).result()
        return old is not None

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        entries = sorted(self.client.get_map(HISTORY_MAP).blocking().entry_set(), key=lambda kv: str(kv[0]))
        return [d for _, v in entries[-limit:] if (d := _decode(v)) is not None]


class _ApplyWaiter:
    """Watches `dita.kernels` for kernels reporting a rev of one control key.

    The kernels' entries are read once, then kept current from the entry
    events' values, so waiting costs no round trip per report.
    """

    def __init__(self, client: Any, key: str) -> None:
        self._map = client.get_map(KERNELS_MAP)
        self._key = key
        self._cond = threading.Condition()
        self._docs: dict[str, dict[str, Any]] = {}
        self._reg = self._map.add_entry_listener(
            include_value=True, added_func=self._on_event, updated_func=self._on_event
        ).result()
        for k, v in self._map.blocking().entry_set():
            with self._cond:
                self._docs.setdefault(str(k), _decode(v) or {})

    def _on_event(self, event: Any) -> None:
        # The client's I/O thread: decode and notify, nothing that waits.
        doc = _decode(event.value) or {}
        with self._cond:
            self._docs[str(event.key)] = doc
            self._cond.notify_all()

    def _live(self, kernel_id: str | None) -> dict[str, dict[str, Any]]:
        now = time.time()
        return {
            k: d
            for k, d in self._docs.items()
            if (kernel_id is None or k == kernel_id)
            and d.get("state") == "RUNNING"
            and now - float(d.get("heartbeat_at", 0)) < LIVE_WITHIN_S
        }

    def wait(self, rev: int, kernel_id: str | None, timeout: float) -> tuple[list[str], list[str]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                kernels = self._live(kernel_id)
                applied = sorted(
                    k
                    for k, d in kernels.items()
                    if int(((d.get("control_report") or {}).get("revs") or {}).get(self._key, 0)) >= rev
                )
                missing = sorted(set(kernels) - set(applied))
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return applied, missing
                self._cond.wait(min(left, 0.05))

    def close(self) -> None:
        # The cluster may be gone; then there is nothing to undo.
        with contextlib.suppress(Exception):
            self._map.remove_entry_listener(self._reg).result()
