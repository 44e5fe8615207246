"""A kernel's ear on `dita.control`: what operators write is validated and applied.

Entry events arrive on the Hazelcast client's I/O thread. Validation and
applying control to the kernel are pure CPU work of microseconds, so they
run right there (the next intent is gated by the new mode); anything that
talks to the cluster (reading the whole map at startup and after a
reconnect, reporting) runs on a helper thread or as a future nobody waits
for, so the I/O thread never blocks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from dita.control import KernelControlSnapshot
from dita.controlplane.entries import (
    CONTROL_VALUES,
    GLOBAL_KEY,
    ControlEntry,
    ControlRefusal,
    effective_control,
    kernel_key,
    parse_entry,
)
from dita.controlplane.operator import HISTORY_MAP, record_history
from dita.projection.base import CONTROL_MAP

log = logging.getLogger("dita.control")


def _as_dict(raw: Any) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw.to_string() if hasattr(raw, "to_string") else raw)
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


class ControlTarget(Protocol):
    """What the listener steers: an `ExecutionKernel`."""

    @property
    def kernel_id(self) -> str: ...

    @property
    def control(self) -> KernelControlSnapshot: ...

    def apply_control(self, snapshot: KernelControlSnapshot) -> None: ...

    def report_control(self, report: dict[str, Any]) -> None: ...

    def record_control_event(self, kind: str, detail: dict[str, Any]) -> None: ...


class ControlListener:
    """Applies the effective control of `dita.control` to one kernel.

    Keyword arguments:
        default: the control used for fields no entry sets (default: the
            kernel's control when the listener starts).
        control_key: shared HMAC key; when set, unsigned or forged entries are refused.
        read_timeout: seconds to wait for the full read of the map at startup (default 10).
    """

    def __init__(
        self,
        client: Any,
        kernel: ControlTarget,
        *,
        default: KernelControlSnapshot | None = None,
        control_key: bytes | None = None,
        read_timeout: float = 10.0,
        on_change: Callable[[KernelControlSnapshot], None] | None = None,
    ) -> None:
        self.client = client
        self.kernel = kernel
        self.default = default or kernel.control
        self.control_key = control_key
        self.read_timeout = read_timeout
        self.on_change = on_change
        self.own_key = kernel_key(kernel.kernel_id)
        self._lock = threading.RLock()
        self._entries: dict[str, ControlEntry] = {}
        self._applied_docs: dict[str, dict[str, Any] | None] = {}
        self._last_rev: dict[str, int] = {}
        self.last_refusal: dict[str, Any] | None = None
        self.refusals = 0
        self.connected_at_start = False
        self._map = client.get_map(CONTROL_MAP)
        self._history = client.get_map(HISTORY_MAP)
        self._registration: Any = None
        self._was_disconnected = False

    # ----- lifecycle -------------------------------------------------------------

    def start(self) -> bool:
        """Listens, then reads the whole map before returning, so the first
        intent sees what operators want. Returns False (and keeps the default
        control) when the cluster cannot be read in time."""
        self.client.lifecycle_service.add_listener(self._on_lifecycle)
        try:
            self._registration = self._map.add_entry_listener(
                include_value=True,
                added_func=self._on_put,
                updated_func=self._on_put,
                removed_func=self._on_remove,
                expired_func=self._on_remove,
                evicted_func=self._on_remove,
            ).result()
            self._read_all(self.read_timeout)
            self.connected_at_start = True
        except Exception as e:
            log.warning(
                "control: cannot read %s (%s); running with the start control %s",
                CONTROL_MAP,
                e,
                self.default.as_dict(),
            )
            self._apply()
            return False
        return True

    def stop(self) -> None:
        if self._registration is not None:
            try:
                self._map.remove_entry_listener(self._registration)
            except Exception as e:  # the cluster may be gone; nothing to undo then
                log.debug("control: removing the listener failed: %s", e)
            self._registration = None

    def _on_lifecycle(self, state: str) -> None:
        if state == "DISCONNECTED":
            self._was_disconnected = True
        elif state == "CONNECTED" and self._was_disconnected:
            self._was_disconnected = False
            # Hazelcast does not replay events missed while away: read it all again,
            # on a thread of our own since reading waits for the cluster.
            threading.Thread(target=self._reread, name="dita-control-reread", daemon=True).start()

    def _reread(self) -> None:
        for attempt in range(20):
            try:
                self._read_all(self.read_timeout)
                return
            except Exception as e:
                log.warning("control: re-read after reconnect failed (attempt %d): %s", attempt + 1, e)
                time.sleep(min(0.1 * 2**attempt, 5.0))

    def _read_all(self, timeout: float) -> None:
        done = threading.Event()
        future = self._map.entry_set()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"reading {CONTROL_MAP} took more than {timeout:g} s")
        entries = dict(future.result())
        with self._lock:
            for key in (GLOBAL_KEY, self.own_key):
                if key in entries:
                    self._consider(key, entries[key], apply=False)
                else:
                    self._entries.pop(key, None)
            self._apply()

    # ----- entry events (the client's I/O thread) ----------------------------------

    def _on_put(self, event: Any) -> None:
        key = str(event.key)
        if key in (GLOBAL_KEY, self.own_key):
            with self._lock:
                self._consider(key, event.value)

    def _on_remove(self, event: Any) -> None:
        key = str(event.key)
        if key in (GLOBAL_KEY, self.own_key):
            with self._lock:
                self._entries.pop(key, None)
                self._applied_docs.pop(key, None)
                self._apply()

    def _consider(self, key: str, raw: Any, *, apply: bool = True) -> None:
        if self._applied_docs.get(key) is not None and self._applied_docs.get(key) == _as_dict(raw):
            return  # a full re-read sees the entry already applied: not a replay
        try:
            entry = parse_entry(key, raw, last_rev=self._last_rev.get(key, 0), control_key=self.control_key)
        except ControlRefusal as refusal:
            self.refusals += 1
            self.last_refusal = {**refusal.as_dict(), "at": time.time()}
            log.warning("control: %s", refusal)
            self._audit("REFUSED", key, self.last_refusal)
            self.kernel.record_control_event("REFUSED", self.last_refusal)
            self._report()
            return
        self._entries[key] = entry
        self._applied_docs[key] = _as_dict(raw)
        self._last_rev[key] = entry.rev
        if apply:
            self._apply()

    def _apply(self) -> None:
        default = {k: getattr(self.default, k) for k in CONTROL_VALUES}
        global_entry = self._entries.get(GLOBAL_KEY)
        own_entry = self._entries.get(self.own_key)
        eff = effective_control(default, global_entry, own_entry)
        newest = max(
            (e for e in (global_entry, own_entry) if e is not None), key=lambda e: e.issued_at, default=None
        )
        snapshot = KernelControlSnapshot(
            mode=eff.mode,
            verbosity=eff.verbosity,
            journal=eff.journal,
            rev=max((e.rev for e in (global_entry, own_entry) if e is not None), default=0),
            source=",".join(sorted({s for s in eff.sources.values()})),
            reason=newest.reason if newest else "",
            author=newest.author if newest else "",
        )
        if snapshot != self.kernel.control:
            self.kernel.apply_control(snapshot)
            log.info("control: applied %s", snapshot.as_dict())
            self._audit("APPLIED", self.own_key, {"control": snapshot.as_dict(), "revs": self.revs()})
            self.kernel.record_control_event("APPLIED", {"control": snapshot.as_dict(), "revs": self.revs()})
            if self.on_change is not None:
                self.on_change(snapshot)
        self._report()

    def _audit(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        # Fire and forget: the history is for people, the kernel never waits for it.
        try:
            record_history(self._history, kind, key, {"kernel_id": self.kernel.kernel_id, **doc})
        except Exception as e:
            log.debug("control: history write failed: %s", e)

    def revs(self) -> dict[str, int]:
        with self._lock:
            return {k: e.rev for k, e in self._entries.items()}

    def _report(self) -> None:
        self.kernel.report_control(
            {
                "revs": self.revs(),
                "sources": {k: v for k, v in self._sources().items()},
                "last_refusal": self.last_refusal,
                "refusals": self.refusals,
                "signed": self.control_key is not None,
                "connected_at_start": self.connected_at_start,
            }
        )

    def _sources(self) -> dict[str, str]:
        default = {k: getattr(self.default, k) for k in CONTROL_VALUES}
        return effective_control(
            default, self._entries.get(GLOBAL_KEY), self._entries.get(self.own_key)
        ).sources
