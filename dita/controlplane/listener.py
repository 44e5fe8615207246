"""A kernel's ear on `dita.control`: what operators write is validated and applied.

Entry events arrive on the Hazelcast client's I/O thread, which only files
them (the newest value per key) and wakes the listener's own thread. That
thread decides and applies: control is pure CPU work of microseconds, but a
HALT's kill switch goes through the kernel's venue adapter, which may wait
on a venue, and the client's I/O thread must never wait.

What the listener guarantees (docs/ARCHITECTURE.md, "Control protocol"):

- Only an entry that parses, is signed for its key (with a control key), is
  above the last rev applied for that key (across restarts too: the floor
  comes from the checkpoint and from this kernel's own signed report in
  `dita.kernels`) and is not older than `max_age_s` is applied.
- Nothing read from the map can raise out of the listener: a value that
  cannot be decoded or checked is that entry's refusal, nothing more.
- A removed entry, or a map that comes back empty (a restarted member, a new
  cluster), never changes control: the kernel holds what it applied and says
  so. Operators clear an entry on purpose by writing a clearing entry.
- Refusals are logged and written to the history at most once a second per key.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dita.cluster.backoff import Backoff
from dita.cluster.serialization import harden
from dita.control import KernelControlSnapshot
from dita.controlplane.entries import (
    CONTROL_VALUES,
    DEFAULT_MAX_AGE_S,
    GLOBAL_KEY,
    ControlEntry,
    ControlRefusal,
    effective_control,
    kernel_key,
    parse_entry,
)
from dita.controlplane.history import HISTORY_MAP, record_history
from dita.controlplane.signing import verify_signature
from dita.enums import KernelMode
from dita.projection.base import CONTROL_MAP, KERNELS_MAP
from dita.projection.documents import read_document

log = logging.getLogger("dita.control")

#: What `_check` says of a value that is the entry applied already.
_SAME = "same"

#: Refusals of one key logged and written to the history at most this often.
REFUSAL_LOG_INTERVAL_S = 1.0
#: A refusal is reported in `dita.kernels` within this (operators' `--wait`
#: names it); a burst of junk writes costs one report per interval, not one each.
REPORT_INTERVAL_S = 0.02
#: A flatten is an order, not a standing state: a kernel that first sees a
#: flatten entry issued longer ago than this (it started later, or was cut
#: off) does not flatten positions it may have opened since; it reports so.
FLATTEN_WITHIN_S = 60.0


class ControlTarget(Protocol):
    """What the listener steers: an `ExecutionKernel`."""

    @property
    def kernel_id(self) -> str: ...

    @property
    def control(self) -> KernelControlSnapshot: ...

    def apply_control(self, snapshot: KernelControlSnapshot) -> None: ...

    def report_control(self, report: dict[str, Any]) -> None: ...

    def record_control_event(self, kind: str, detail: dict[str, Any]) -> None: ...

    def cancel_working_orders(self, reason: str) -> dict[str, Any]: ...

    def flatten(self, reason: str) -> dict[str, Any]: ...


@dataclass
class _Refusals:
    """Per key: when a refusal was last logged, and how many went unlogged since."""

    logged_at: dict[str, float] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)

    def should_log(self, key: str, now: float) -> tuple[bool, int]:
        if now - self.logged_at.get(key, -1e18) < REFUSAL_LOG_INTERVAL_S:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return False, 0
        self.logged_at[key] = now
        return True, self.suppressed.pop(key, 0)


def prior_entries_from_report(
    status: Any, kernel_id: str, control_key: bytes | None
) -> dict[str, dict[str, Any]]:
    """The entries this kernel id last reported applying, from its `dita.kernels`
    entry, keeping only those whose signature proves them: a stray client could
    otherwise write a huge rev there (and have every genuine entry refused as
    stale) or an ACTIVE entry. Without a control key nothing can be proven."""
    if control_key is None:
        return {}
    doc = status if isinstance(status, dict) else read_document(status)
    report = doc.get("control_report") if isinstance(doc, dict) else None
    entries = report.get("entries") if isinstance(report, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {
        key: entry
        for key in (GLOBAL_KEY, kernel_key(kernel_id))
        if isinstance(entry := entries.get(key), dict) and verify_signature(entry, control_key, key)
    }


def read_prior_entries(
    client: Any, kernel_id: str, control_key: bytes | None, timeout: float
) -> dict[str, dict[str, Any]]:
    """`prior_entries_from_report` of the kernel's entry in the cluster; {} when it cannot be read."""
    if control_key is None:
        return {}
    done = threading.Event()
    try:
        future = harden(client).get_map(KERNELS_MAP).get(kernel_id)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            return {}
        return prior_entries_from_report(future.result(), kernel_id, control_key)
    except Exception as e:  # nothing proven beyond the checkpoint's: say so, go on
        log.warning(
            "control: cannot read %s's last report (%s); prior control from the checkpoint only", kernel_id, e
        )
        return {}


def newest_entries(*sources: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Per key, the entry of highest rev among `sources`."""
    merged: dict[str, dict[str, Any]] = {}
    for source in sources:
        for key, doc in (source or {}).items():
            rev = doc.get("rev") if isinstance(doc, Mapping) else None
            if not isinstance(rev, int) or isinstance(rev, bool):
                continue
            if key not in merged or rev > merged[key]["rev"]:
                merged[key] = dict(doc)
    return merged


class ControlListener:
    """Applies the effective control of `dita.control` to one kernel.

    Keyword arguments:
        default: the control used for fields no entry sets (default: the
            kernel's control when the listener starts).
        control_key: shared HMAC key; when set, unsigned, forged or copied entries are refused.
        read_timeout: seconds to wait for the full read of the map at startup (default 10).
        prior_entries: per key, the entry this kernel id applied last in an
            earlier life (from its checkpoint, or its own signed report in
            `dita.kernels`). It is in force until the map says otherwise:
            entries at or below its rev are refused as replays, and a map that
            lacks the key (a cluster that lost its data) changes nothing.
        max_age_s: entries issued longer ago are refused as replays (default 30 days).
        on_change: called with each new control after it is applied.
    """

    def __init__(
        self,
        client: Any,
        kernel: ControlTarget,
        *,
        default: KernelControlSnapshot | None = None,
        control_key: bytes | None = None,
        read_timeout: float = 10.0,
        prior_entries: Mapping[str, Mapping[str, Any]] | None = None,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        on_change: Callable[[KernelControlSnapshot], None] | None = None,
    ) -> None:
        # A client the caller made may still unpickle what a stray writer put.
        self.client = client = harden(client)
        self.kernel = kernel
        self.default = default or kernel.control
        self.control_key = control_key
        self.read_timeout = read_timeout
        self.max_age_s = max_age_s
        self.on_change = on_change
        self.own_key = kernel_key(kernel.kernel_id)
        self._keys = (GLOBAL_KEY, self.own_key)
        self._lock = threading.RLock()
        self._entries: dict[str, ControlEntry] = {}
        self._applied_docs: dict[str, dict[str, Any]] = {}
        self._applied_at: dict[str, float] = {}
        self._last_rev: dict[str, int] = {}
        self._held: dict[str, dict[str, Any]] = {}
        self._swept: set[tuple[str, int]] = set()
        self._flattened: set[tuple[str, int]] = set()
        self.kill_switch: dict[str, Any] | None = None
        self.last_flatten: dict[str, Any] | None = None
        self.last_refusal: dict[str, Any] | None = None
        self.refusals = 0
        self._refusal_log = _Refusals()
        self.connected_at_start = False
        self.control_read_at: float | None = None
        self._map = client.get_map(CONTROL_MAP)
        self._history = client.get_map(HISTORY_MAP)
        self._registration: Any = None
        self._was_disconnected = False
        # Filed by the client's I/O thread, taken by the listener's thread.
        # Valid entries (the newest per key), confirmations of the applied entry and
        # removals, filed by the client's I/O thread for the listener's thread.
        self._pending: dict[str, tuple[ControlEntry, dict[str, Any]]] = {}
        self._confirmed: set[str] = set()
        self._removed: dict[str, str] = {}
        self._pending_lock = threading.Lock()
        self._reread = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._report_due = 0.0
        self._last_report = 0.0
        self._thread: threading.Thread | None = None
        for key, doc in (prior_entries or {}).items():
            if key in self._keys:
                self._adopt_prior(key, doc)

    def _adopt_prior(self, key: str, doc: Mapping[str, Any]) -> None:
        try:
            entry = parse_entry(
                key,
                json.dumps(dict(doc)),
                control_key=self.control_key,
                now=time.time(),
                max_age_s=self.max_age_s,
            )
        except (ControlRefusal, TypeError, ValueError) as e:
            log.warning("control: the prior entry of %s is not taken: %s", key, e)
            return
        self._entries[key] = entry
        self._applied_docs[key] = dict(doc)
        self._last_rev[key] = entry.rev
        self._flattened.add((key, entry.rev))  # the earlier life acted on it
        if not entry.clear:
            self._held[key] = {
                "rev": entry.rev,
                "why": "applied in this kernel's previous life; not yet seen in the map",
                "since": time.time(),
                **entry.values(),
            }

    # ----- lifecycle -------------------------------------------------------------

    def start(self) -> bool:
        """Listens, then reads the whole map before returning, so the first
        intent sees what operators want. Returns False when the cluster cannot
        be read in time: the kernel keeps its start control and the listener
        goes on trying in the background, applying the map once it reads it."""
        self.client.lifecycle_service.add_listener(self._on_lifecycle)
        ok = True
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
            ok = False
            log.warning(
                "control: cannot read %s (%s); running with the start control %s until it can",
                CONTROL_MAP,
                e,
                self.default.as_dict(),
            )
            self._apply()
            self._reread = True
        self._thread = threading.Thread(target=self._run, name="dita-control", daemon=True)
        self._thread.start()
        return ok

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
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
            # Hazelcast does not replay events missed while away: read it all again.
            self._reread = True
            self._wake.set()

    # ----- the listener's thread ----------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            timeout = 1.0
            if self._report_due:
                timeout = max(0.0, self._report_due - time.monotonic())
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self._reread:
                    self._reread = False
                    try:
                        self._read_all(self.read_timeout)
                        backoff.reset()
                    except Exception as e:
                        self._reread = True
                        pause = backoff.next_pause()
                        log.warning("control: reading %s failed (%s); again in %.1f s", CONTROL_MAP, e, pause)
                        self._stop.wait(pause)
                        self._wake.set()
                        continue
                self._take_pending()
                if self._report_due and time.monotonic() >= self._report_due:
                    self._report()
            except Exception:  # the listener must outlive anything one entry does
                log.exception("control: unexpected failure; the listener goes on")

    def _read_all(self, timeout: float) -> None:
        done = threading.Event()
        future = self._map.get_all(list(self._keys))
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"reading {CONTROL_MAP} took more than {timeout:g} s")
        entries = {str(k): v for k, v in dict(future.result()).items()}
        checked = {key: self._check(key, entries[key]) for key in self._keys if key in entries}
        with self._lock:
            for key in self._keys:
                verdict = checked.get(key)
                if isinstance(verdict, tuple):
                    self._take(key, *verdict)
                elif verdict == _SAME:
                    self._held.pop(key, None)
                elif key not in entries and key in self._entries and not self._entries[key].clear:
                    self._hold(key, "control map has no entry (a restarted or new cluster, or a raw delete)")
            self.control_read_at = self.control_read_at or time.time()
        self._apply()

    def _take_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
            confirmed, self._confirmed = self._confirmed, set()
            removed, self._removed = self._removed, {}
        if not (pending or confirmed or removed):
            return
        with self._lock:
            for key, (entry, doc) in pending.items():
                self._take(key, entry, doc)
            for key in confirmed:
                self._held.pop(key, None)
            for key, kind in removed.items():
                if key in self._entries and not self._entries[key].clear:
                    self._hold(key, f"entry {kind} from {CONTROL_MAP} without a clearing entry")
        self._apply()

    # ----- entry events (the client's I/O thread) --------------------------------------
    #
    # Each value is checked here, as it arrives (CPU only: JSON and an HMAC, tens of
    # microseconds), and only valid entries are filed for the listener's thread: had
    # every value been filed and only the newest taken, a signed HALT followed by junk
    # before the thread came round would never have been considered.

    def _on_put(self, event: Any) -> None:
        try:
            key = str(event.key)
            if key not in self._keys:
                return
            verdict = self._check(key, event.value)
            if verdict is None:
                return
            with self._pending_lock:
                if isinstance(verdict, tuple):
                    filed = self._pending.get(key)
                    if filed is None or verdict[0].rev > filed[0].rev:  # revs only grow: the newest wins
                        self._pending[key] = verdict
                else:
                    self._confirmed.add(key)
                self._removed.pop(key, None)
            self._wake.set()
        except Exception:  # nothing one event holds may stop the client's I/O thread
            log.exception("control: an entry event could not be handled")

    def _on_remove(self, event: Any) -> None:
        try:
            key = str(event.key)
            if key in self._keys:
                with self._pending_lock:
                    self._removed[key] = "removed"
                self._wake.set()
        except Exception:
            log.exception("control: a removal event could not be handled")

    # ----- decisions ---------------------------------------------------------------------

    def _check(self, key: str, raw: Any) -> tuple[ControlEntry, dict[str, Any]] | str | None:
        """The entry `raw` holds if it may be applied, `_SAME` if it is the entry
        applied already (a re-read, a restore), or None once its refusal is recorded."""
        doc = read_document(raw)
        with self._lock:
            if doc is not None and self._applied_docs.get(key) == doc:
                return _SAME
            last_rev = self._last_rev.get(key, 0)
        try:
            entry = parse_entry(
                key,
                raw,
                last_rev=last_rev,
                control_key=self.control_key,
                now=time.time(),
                max_age_s=self.max_age_s,
            )
        except ControlRefusal as refusal:
            self._refuse(refusal)
            return None
        except Exception as e:  # whatever a hostile value does, it is this entry's refusal
            self._refuse(ControlRefusal(key, None, f"unreadable value ({type(e).__name__}: {e})"[:300]))
            return None
        return entry, doc or {}

    def _take(self, key: str, entry: ControlEntry, doc: dict[str, Any]) -> None:
        if entry.rev <= self._last_rev.get(key, 0):
            return  # a newer entry of the key was taken meanwhile
        self._entries[key] = entry
        self._applied_docs[key] = doc
        self._applied_at[key] = time.time()
        self._last_rev[key] = entry.rev
        self._held.pop(key, None)

    def _hold(self, key: str, why: str) -> None:
        if key in self._held:
            return
        entry = self._entries[key]
        self._held[key] = {"rev": entry.rev, "why": why, "since": time.time(), **entry.values()}
        log.warning("control: holding %s rev %d (%s): %s", key, entry.rev, _describe(entry), why)
        self._audit("HELD", key, {"rev": entry.rev, "why": why})

    def _refuse(self, refusal: ControlRefusal) -> None:
        with self._lock:
            self.refusals += 1
            now = time.time()
            self.last_refusal = {**refusal.as_dict(), "at": now}
            should_log, suppressed = self._refusal_log.should_log(refusal.key, time.monotonic())
            detail = dict(self.last_refusal)
        if should_log:
            more = f" ({suppressed} more refused since the last one logged)" if suppressed else ""
            log.warning("control: %s%s", refusal, more)
            self._audit("REFUSED", refusal.key, {**detail, "suppressed": suppressed})
            self.kernel.record_control_event("REFUSED", detail)
        self._report_soon()

    def _apply(self) -> None:
        """Puts the effective control into force, then what it asks the kernel to do
        (the kill switch, a flatten): decided under the lock, done outside it, so
        that the client's I/O thread never waits for a venue."""
        with self._lock:
            default = {k: getattr(self.default, k) for k in CONTROL_VALUES}
            global_entry, own_entry = self._entries.get(GLOBAL_KEY), self._entries.get(self.own_key)
            eff = effective_control(default, global_entry, own_entry)
            live = [e for e in (global_entry, own_entry) if e is not None]
            newest = max(live, key=lambda e: e.issued_at, default=None)
            snapshot = KernelControlSnapshot(
                mode=eff.mode,
                verbosity=eff.verbosity,
                journal=eff.journal,
                rev=max((e.rev for e in live), default=0),
                source=",".join(sorted(set(eff.sources.values()))),
                reason=newest.reason if newest else "",
                author=newest.author if newest else "",
            )
            kill = self._kill_switch_due(eff.mode, self._entries.get(eff.sources["mode"]))
            flattens = self._flattens_due()
            revs = self.revs()
        changed = snapshot != self.kernel.control
        if changed:
            self.kernel.apply_control(snapshot)
        # Orders are pulled before anything is written down about it: the cancels are
        # what a HALT is for, the history and the log can wait a millisecond.
        if kill is not None:
            self._cancel_working(kill)
        if changed:
            log.info("control: applied %s", snapshot.as_dict())
            self._audit("APPLIED", self.own_key, {"control": snapshot.as_dict(), "revs": revs})
            self.kernel.record_control_event("APPLIED", {"control": snapshot.as_dict(), "revs": revs})
            if self.on_change is not None:
                self.on_change(snapshot)
        for entry in flattens:
            self._flatten(entry)
        self._report()

    def _kill_switch_due(self, mode: KernelMode, deciding: ControlEntry | None) -> ControlEntry | None:
        """A HALT from an entry cancels every working order, once per rev."""
        if mode is not KernelMode.HALTED or deciding is None or deciding.cancel_working is False:
            return None
        if (deciding.key, deciding.rev) in self._swept:
            return None
        self._swept.add((deciding.key, deciding.rev))
        return deciding

    def _cancel_working(self, deciding: ControlEntry) -> None:
        reason = f"kill switch: {deciding.key} rev {deciding.rev} HALTED" + (
            f" ({deciding.reason})" if deciding.reason else ""
        )
        result = self.kernel.cancel_working_orders(reason)
        self.kill_switch = {"key": deciding.key, "rev": deciding.rev, "at": time.time(), **result}
        self._audit("CANCELLED", self.own_key, self.kill_switch)
        self.kernel.record_control_event("CANCELLED", self.kill_switch)

    def _flattens_due(self) -> list[ControlEntry]:
        due = []
        for entry in (self._entries.get(GLOBAL_KEY), self._entries.get(self.own_key)):
            if entry is None or not entry.flatten or (entry.key, entry.rev) in self._flattened:
                continue
            self._flattened.add((entry.key, entry.rev))
            age = time.time() - entry.issued_at
            if age > FLATTEN_WITHIN_S:
                self.last_flatten = {
                    "key": entry.key,
                    "rev": entry.rev,
                    "at": time.time(),
                    "skipped": f"issued {age:.0f} s ago, more than {FLATTEN_WITHIN_S:g}: not flattened",
                }
                continue
            due.append(entry)
        return due

    def _flatten(self, entry: ControlEntry) -> None:
        reason = f"flatten: {entry.key} rev {entry.rev}" + (f" ({entry.reason})" if entry.reason else "")
        result = self.kernel.flatten(reason)
        self.last_flatten = {"key": entry.key, "rev": entry.rev, "at": time.time(), **result}
        self._audit("FLATTENED", self.own_key, self.last_flatten)
        self.kernel.record_control_event("FLATTENED", self.last_flatten)

    def _audit(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        # Fire and forget: the history is for people, the kernel never waits for it.
        try:
            record_history(self._history, kind, key, {"kernel_id": self.kernel.kernel_id, **doc})
        except Exception as e:
            log.debug("control: history write failed: %s", e)

    # ----- reporting ---------------------------------------------------------------------

    def revs(self) -> dict[str, int]:
        with self._lock:
            return {k: e.rev for k, e in self._entries.items()}

    def applied_revs(self) -> dict[str, int]:
        """Per key, the highest rev applied in this life or an earlier one (for the checkpoint)."""
        with self._lock:
            return dict(self._last_rev)

    def _report_soon(self) -> None:
        now = time.monotonic()
        if now - self._last_report >= REPORT_INTERVAL_S:
            self._report()
        elif not self._report_due:
            self._report_due = self._last_report + REPORT_INTERVAL_S
            self._wake.set()

    def _report(self) -> None:
        self._last_report = time.monotonic()
        self._report_due = 0.0
        self.kernel.report_control(self.report())

    def report(self) -> dict[str, Any]:
        """What `dita.kernels` carries of this kernel's control: the revs it applied
        (and the signed entries themselves, which `dita control restore` puts back
        after a cluster loses its maps), where each field came from, what it holds
        without an entry, the last refusal and the last kill switch."""
        with self._lock:
            default = {k: getattr(self.default, k) for k in CONTROL_VALUES}
            sources = effective_control(
                default, self._entries.get(GLOBAL_KEY), self._entries.get(self.own_key)
            ).sources
            return {
                "revs": self.revs(),
                "applied_at": dict(self._applied_at),
                "entries": dict(self._applied_docs),
                "sources": sources,
                "held": {k: dict(v) for k, v in self._held.items()},
                "last_refusal": self.last_refusal,
                "refusals": self.refusals,
                "kill_switch": self.kill_switch,
                "flatten": self.last_flatten,
                "signed": self.control_key is not None,
                "connected_at_start": self.connected_at_start,
                "control_read_at": self.control_read_at,
            }


def _describe(entry: ControlEntry) -> str:
    return " ".join(f"{k}={v}" for k, v in entry.values().items()) or "nothing"
