"""The operator's side of the control plane: show, set, clear, restore, wait, history.

Writes use compare-and-set on the entry, so two operators writing at once
never silently overwrite each other: one wins, the other retries on top of it
with the next rev, and both end up in the history.

`--wait` tells the truth (docs/ARCHITECTURE.md, "Control protocol"): the
kernels it waits for are fixed before the write (every kernel beating now,
plus the one a `--kernel` names), and each ends in one verdict: APPLIED (its
effective control is what was asked, and with a HALT its working orders are
cancelled or their cancels sent), OVERRIDDEN (it applied the rev but another
entry decides a field), REFUSED (with the kernel's reason), STALE (it stopped
beating), GONE (it stopped or its entry went) or TIMEOUT.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dita.cluster.serialization import harden
from dita.controlplane.entries import (
    CONTROL_VALUES,
    GLOBAL_KEY,
    KERNEL_PREFIX,
    MAX_REV,
    kernel_key,
    parse_entry,
)
from dita.controlplane.history import HISTORY_MAP, json_value, record_history
from dita.controlplane.signing import sign_entry
from dita.enums import KernelMode, KernelVerbosity
from dita.projection.base import CONTROL_MAP, KERNELS_MAP
from dita.projection.documents import as_object
from dita.projection.documents import read_document as decode

__all__ = ["HISTORY_MAP", "LIVE_WITHIN_S", "ControlOperator", "KernelApply", "SetResult", "Verdict"]

#: A kernel whose heartbeat is older than this is not counted as running.
LIVE_WITHIN_S = 10.0
#: What a history record adds to the entry it records (see `history.record_history`).
HISTORY_FIELDS = frozenset({"kind", "key", "at", "restored_by", "why"})
#: Kernels beat every second: one silent for longer than this during a wait is STALE.
STALE_AFTER_S = 3.0


def next_rev(current: dict[str, Any] | None) -> int:
    """The rev of the next write: milliseconds since the epoch, and above the current entry's.

    Revs must only grow for kernels to tell new from replayed. Counting from the
    current entry alone restarts at 1 when a cluster loses its maps (a member
    restarted empty), and kernels that remember the old revs would refuse every
    new write as stale. A clock-based rev keeps growing across both; the floor
    keeps it growing when clocks disagree.
    """
    current_rev = current.get("rev", 0) if current else 0
    floor = current_rev if isinstance(current_rev, int) and not isinstance(current_rev, bool) else 0
    return max(floor + 1, time.time_ns() // 1_000_000)


def default_author() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


class Verdict(StrEnum):
    APPLIED = "APPLIED"
    OVERRIDDEN = "OVERRIDDEN"
    REFUSED = "REFUSED"
    STALE = "STALE"
    GONE = "GONE"
    TIMEOUT = "TIMEOUT"


#: Verdicts that no later report changes: the wait stops looking at such a kernel.
_FINAL = (Verdict.APPLIED, Verdict.OVERRIDDEN, Verdict.REFUSED, Verdict.GONE)


@dataclass
class KernelApply:
    """One kernel's answer to a write."""

    kernel_id: str
    verdict: Verdict
    detail: str = ""
    #: from the entry's issued_at to the kernel applying it (the kernel's clock)
    apply_ms: float | None = None


@dataclass
class SetResult:
    key: str
    rev: int
    entry: dict[str, Any]
    attempts: int
    kernels: list[KernelApply] = field(default_factory=list)
    waited_s: float = 0.0
    #: from just before the entry was written to the last verdict
    propagation_s: float = 0.0

    @property
    def applied(self) -> list[str]:
        return sorted(k.kernel_id for k in self.kernels if k.verdict is Verdict.APPLIED)

    @property
    def missing(self) -> list[str]:
        return sorted(k.kernel_id for k in self.kernels if k.verdict is not Verdict.APPLIED)

    @property
    def confirmed(self) -> bool:
        """Every kernel waited for applied it (and there was at least one)."""
        return bool(self.kernels) and not self.missing


class NoSuchKernel(ValueError):
    """A `--kernel` that names no kernel `dita.kernels` knows (a typo, usually)."""


@dataclass(frozen=True)
class _Expectation:
    key: str
    rev: int
    values: dict[str, Any]
    issued_at: float
    cancels: bool


class ControlOperator:
    """Reads and writes `dita.control` for an operator.

    Keyword arguments:
        control_key: HMAC key shared with kernels; entries are signed when given.
        author: recorded with every write (default user@host).
    """

    def __init__(self, client: Any, *, control_key: bytes | None = None, author: str | None = None) -> None:
        # A client the caller made may still unpickle what a stray writer put.
        self.client = client = harden(client)
        self.control_key = control_key
        self.author = author or default_author()
        self._control = client.get_map(CONTROL_MAP).blocking()
        self._kernels = client.get_map(KERNELS_MAP).blocking()
        self._history = client.get_map(HISTORY_MAP)

    # ----- reading ----------------------------------------------------------------------

    def show(self) -> dict[str, Any]:
        """The global entry, the overrides, and every kernel's entry (with `live`);
        values that are not dita's JSON are counted in `unreadable`, not shown."""
        unreadable: list[str] = []
        entries: dict[str, dict[str, Any]] = {}
        for k, v in self._control.entry_set():
            doc = decode(v)
            if doc is None:
                unreadable.append(f"{CONTROL_MAP}:{k}")
            else:
                entries[str(k)] = doc
        kernels = {}
        now = time.time()
        for k, v in self._kernels.entry_set():
            doc = decode(v)
            if doc is None:
                unreadable.append(f"{KERNELS_MAP}:{k}")
                continue
            doc["live"] = (
                doc.get("state") == "RUNNING" and now - _number(doc.get("heartbeat_at")) < LIVE_WITHIN_S
            )
            kernels[str(k)] = doc
        standing = {k: v for k, v in entries.items() if not v.get("clear")}
        return {
            "global": standing.get(GLOBAL_KEY),
            "overrides": {
                k[len(KERNEL_PREFIX) :]: v for k, v in standing.items() if k.startswith(KERNEL_PREFIX)
            },
            # Clearing entries: kept, so that the rev (and a kernel's refusal of replays) goes on.
            "cleared": {k: v for k, v in entries.items() if v.get("clear")},
            "kernels": kernels,
            "unreadable": sorted(unreadable),
        }

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` records, oldest first."""
        entries = sorted(self._history.blocking().entry_set(), key=lambda kv: str(kv[0]))
        records = [d for _, v in entries if (d := decode(v)) is not None]
        return records[-limit:] if limit else []

    def known_kernels(self) -> dict[str, dict[str, Any]]:
        return {str(k): d for k, v in self._kernels.entry_set() if (d := decode(v)) is not None}

    # ----- writing ----------------------------------------------------------------------

    def set(
        self,
        *,
        kernel_id: str | None = None,
        mode: KernelMode | str | None = None,
        verbosity: KernelVerbosity | str | None = None,
        journal: bool | None = None,
        cancel_working: bool | None = None,
        flatten: bool = False,
        reason: str = "",
        wait: bool = False,
        timeout: float = 10.0,
        allow_none: bool = False,
    ) -> SetResult:
        """Writes the next rev of the global entry (or one kernel's); with `wait`,
        returns once every kernel concerned answered (see `SetResult.kernels`).

        A `kernel_id` that `dita.kernels` does not know raises `NoSuchKernel`
        before anything is written, unless `allow_none`."""
        values: dict[str, Any] = {}
        if mode is not None:
            values["mode"] = KernelMode(mode).value
        if verbosity is not None:
            values["verbosity"] = KernelVerbosity(verbosity).value
        if journal is not None:
            values["journal"] = bool(journal)
        if not values and not flatten:
            raise ValueError(f"nothing to set: give at least one of {', '.join(CONTROL_VALUES)}")
        actions: dict[str, Any] = {}
        if cancel_working is not None:
            actions["cancel_working"] = bool(cancel_working)
        if flatten:
            actions["flatten"] = True
        return self._write(kernel_id, values, actions, reason, wait, timeout, allow_none)

    def clear(
        self,
        kernel_id: str | None,
        reason: str = "",
        *,
        wait: bool = False,
        timeout: float = 10.0,
        allow_none: bool = False,
    ) -> SetResult:
        """Writes a clearing entry for one kernel's override (it falls back to the
        global entry) or, with `kernel_id` None, for the global entry (kernels
        fall back to their start control). A raw delete would change nothing:
        kernels hold what they applied until a clearing entry says otherwise."""
        return self._write(kernel_id, {}, {"clear": True}, reason, wait, timeout, allow_none)

    def _write(
        self,
        kernel_id: str | None,
        values: dict[str, Any],
        actions: dict[str, Any],
        reason: str,
        wait: bool,
        timeout: float,
        allow_none: bool,
    ) -> SetResult:
        if not timeout >= 0:
            raise ValueError(f"timeout = {timeout!r}: must be 0 or more seconds")
        key = GLOBAL_KEY if kernel_id is None else kernel_key(kernel_id)
        known = self.known_kernels()
        if kernel_id is not None and kernel_id not in known and not allow_none:
            listed = ", ".join(sorted(known)) or "none"
            raise NoSuchKernel(
                f"--kernel {kernel_id}: no such kernel in {KERNELS_MAP} (known: {listed}); "
                "nothing was written (--allow-none writes it anyway)"
            )
        waiter = _ApplyWaiter(self.client, known) if wait else None
        try:
            watched = waiter.watched(kernel_id) if waiter is not None else []
            for attempt in range(1, 51):
                current_raw = self._control.get(key)
                standing = self._standing_entry(key, current_raw, known)
                rev = next_rev(standing)
                if rev > MAX_REV:
                    raise ValueError(
                        f"{key}: the entry in force has rev {standing and standing.get('rev')}, the highest "
                        "there is: no later write can be told from it (written by a stray client?)"
                    )
                # Unchanged fields of the entry in force carry over: a set changes what it
                # names. Actions (flatten, a kill switch opt-out, clear) do not.
                doc: dict[str, Any] = {}
                if "clear" not in actions and standing and not standing.get("clear"):
                    doc = {k: standing[k] for k in CONTROL_VALUES if k in standing}
                doc.update(values)
                doc.update(actions)
                doc.update({"rev": rev, "author": self.author, "reason": reason, "issued_at": time.time()})
                if self.control_key is not None:
                    doc["signature"] = sign_entry(doc, self.control_key, key)
                # Our own entry must pass the kernels' checks before it goes anywhere.
                parse_entry(key, json.dumps(doc), control_key=self.control_key)
                value = json_value(doc)
                written = time.monotonic()
                if current_raw is None:
                    won = self._control.put_if_absent(key, value) is None
                else:
                    won = bool(self._control.replace_if_same(key, current_raw, value))
                if not won:
                    continue
                record_history(self._history, "CLEAR" if "clear" in actions else "WRITE", key, doc).result()
                result = SetResult(key, rev, doc, attempt)
                if waiter is not None:
                    expect = _Expectation(
                        key,
                        rev,
                        doc if "clear" in actions else values,
                        doc["issued_at"],
                        cancels=values.get("mode") == KernelMode.HALTED.value
                        and actions.get("cancel_working") is not False,
                    )
                    started = time.monotonic()
                    result.kernels = waiter.wait(watched, expect, timeout)
                    result.waited_s = time.monotonic() - started
                    result.propagation_s = time.monotonic() - written
                return result
            raise RuntimeError(f"could not write {key}: 50 other writes won in a row")
        finally:
            if waiter is not None:
                waiter.close()

    def _standing_entry(
        self, key: str, current_raw: Any, known: dict[str, dict[str, Any]]
    ) -> dict[str, Any] | None:
        """The entry a write builds on: of the map's current value and the entries
        running kernels report applying for `key`, the newest that kernels would accept
        (signed for the key, with a control key), or that operators wrote (the
        history). A stray client's value lends the write neither a field nor its
        rev, and a raw delete takes none away."""
        candidates = [decode(current_raw)]
        now = time.time()
        for status in known.values():
            if status.get("state") != "RUNNING" or now - _number(status.get("heartbeat_at")) >= LIVE_WITHIN_S:
                continue  # what a stopped or dead kernel held is history, not control in force
            entries = as_object(as_object(status.get("control_report")).get("entries"))
            candidates.append(as_object(entries.get(key)) or None)
        candidates += self._written_entries(key)
        valid: list[dict[str, Any]] = []
        for doc in candidates:
            if doc is None:
                continue
            try:
                parse_entry(key, json.dumps(doc), control_key=self.control_key)
            except (ValueError, TypeError):  # ControlRefusal is a ValueError
                continue
            valid.append(doc)
        return max(valid, key=lambda d: int(d["rev"]), default=None)

    def _written_entries(self, key: str) -> list[dict[str, Any] | None]:
        """The entries operators wrote for `key`, from the history: a stray client that
        puts an older signed entry back and overwrites the kernels' reports cannot make
        a write build on the older one while the history holds the newer."""
        from hazelcast.predicate import and_, equal, in_

        wanted = and_(equal("key", key), in_("kind", "WRITE", "CLEAR", "RESTORE"))
        history = self._history.blocking()
        try:
            records = list(history.values(wanted))
        except Exception:  # the member cannot query past a value it cannot read: scan instead
            records = list(history.values())
        entries: list[dict[str, Any] | None] = []
        for value in records:
            record = decode(value)
            if (
                record is None
                or record.get("key") != key
                or record.get("kind") not in ("WRITE", "CLEAR", "RESTORE")
            ):
                continue
            entries.append({k: v for k, v in record.items() if k not in HISTORY_FIELDS})
        return entries

    def restore(self, *, reason: str = "") -> list[tuple[str, int, str]]:
        """Puts back the entries kernels hold after the map lost them (a restarted
        member, a new cluster): for each key, the newest entry a kernel reports
        applying, exactly as it was signed, where the map has nothing newer.
        Returns (key, rev, what happened) per key considered."""
        held: dict[str, dict[str, Any]] = {}
        for doc in self.known_kernels().values():
            report = doc.get("control_report")
            entries = report.get("entries") if isinstance(report, dict) else None
            if not isinstance(entries, dict):
                continue
            for key, entry in entries.items():
                if not isinstance(entry, dict) or not isinstance(entry.get("rev"), int):
                    continue
                if key not in held or entry["rev"] > held[key]["rev"]:
                    held[key] = entry
        done: list[tuple[str, int, str]] = []
        for key, entry in sorted(held.items()):
            current = decode(self._control.get(key))
            current_rev = current.get("rev") if current else None
            if isinstance(current_rev, int) and current_rev >= entry["rev"]:
                done.append((key, entry["rev"], f"kept: the map holds rev {current_rev}"))
                continue
            try:
                parse_entry(key, json.dumps(entry), control_key=self.control_key)
            except ValueError as e:
                done.append((key, entry["rev"], f"not restored: {e}"))
                continue
            if self._control.put_if_absent(key, json_value(entry)) is not None:
                done.append((key, entry["rev"], "not restored: another write came first"))
                continue
            record_history(
                self._history, "RESTORE", key, {**entry, "restored_by": self.author, "why": reason}
            )
            done.append((key, entry["rev"], "restored"))
        return done


class _ApplyWaiter:
    """Watches `dita.kernels` for the verdict of each kernel on one write.

    The kernels' entries are read once, then kept current from the entry
    events' values, so waiting costs no round trip per report.
    """

    def __init__(self, client: Any, known: dict[str, dict[str, Any]]) -> None:
        self._map = client.get_map(KERNELS_MAP)
        self._cond = threading.Condition()
        self._docs: dict[str, dict[str, Any] | None] = dict(known)
        self._reg = self._map.add_entry_listener(
            include_value=True,
            added_func=self._on_event,
            updated_func=self._on_event,
            removed_func=self._on_gone,
            expired_func=self._on_gone,
        ).result()

    def _on_event(self, event: Any) -> None:
        # The client's I/O thread: decode and notify, nothing that waits.
        doc = decode(event.value)
        if doc is None:
            return
        with self._cond:
            self._docs[str(event.key)] = doc
            self._cond.notify_all()

    def _on_gone(self, event: Any) -> None:
        with self._cond:
            self._docs[str(event.key)] = None
            self._cond.notify_all()

    def watched(self, kernel_id: str | None) -> list[str]:
        """The kernels a write waits for, fixed before it is made."""
        now = time.time()
        with self._cond:
            if kernel_id is not None:
                return [kernel_id]
            return sorted(
                k
                for k, d in self._docs.items()
                if d is not None
                and d.get("state") == "RUNNING"
                and now - _number(d.get("heartbeat_at")) < LIVE_WITHIN_S
            )

    def wait(self, kernels: Sequence[str], expect: _Expectation, timeout: float) -> list[KernelApply]:
        deadline = time.monotonic() + timeout
        verdicts: dict[str, KernelApply] = {}
        with self._cond:
            while True:
                now = time.time()
                for kid in kernels:
                    if kid not in verdicts or verdicts[kid].verdict not in _FINAL:
                        verdicts[kid] = _verdict(kid, self._docs.get(kid), expect, now)
                left = deadline - time.monotonic()
                if all(v.verdict in _FINAL for v in verdicts.values()) or left <= 0:
                    break
                self._cond.wait(min(left, 0.05))
        for v in verdicts.values():
            if v.verdict is Verdict.STALE:
                continue
            if v.verdict not in _FINAL:
                v.verdict, v.detail = Verdict.TIMEOUT, v.detail or f"not applied within {timeout:g} s"
        return [verdicts[k] for k in kernels]

    def close(self) -> None:
        # The cluster may be gone; then there is nothing to undo.
        with contextlib.suppress(Exception):
            self._map.remove_entry_listener(self._reg).result()


def _verdict(kid: str, doc: dict[str, Any] | None, expect: _Expectation, now: float) -> KernelApply:
    """Where one kernel stands on the write, from its `dita.kernels` entry."""
    if doc is None:
        return KernelApply(kid, Verdict.GONE, "its dita.kernels entry is gone")
    if doc.get("state") != "RUNNING":
        return KernelApply(kid, Verdict.GONE, f"state {doc.get('state')}")
    report = as_object(doc.get("control_report"))
    refusal = report.get("last_refusal")
    if (
        isinstance(refusal, dict)
        and refusal.get("key") == expect.key
        and (
            refusal.get("rev") == expect.rev
            or (refusal.get("rev") is None and _number(refusal.get("at")) >= expect.issued_at)
        )
    ):
        return KernelApply(kid, Verdict.REFUSED, str(refusal.get("reason", "")))
    revs = as_object(report.get("revs"))
    rev = revs.get(expect.key)
    silent_for = now - _number(doc.get("heartbeat_at"))
    if not isinstance(rev, int) or rev < expect.rev:
        if silent_for > STALE_AFTER_S:
            return KernelApply(kid, Verdict.STALE, f"no heartbeat for {silent_for:.1f} s")
        return KernelApply(kid, Verdict.TIMEOUT)
    applied_at = _number(as_object(report.get("applied_at")).get(expect.key), 0.0)
    apply_ms = (applied_at - expect.issued_at) * 1e3 if applied_at else None
    control = as_object(doc.get("control"))
    sources = as_object(report.get("sources"))
    if expect.values.get("clear"):
        falls_back = ", ".join(f"{k}={control.get(k)} (from {sources.get(k, '?')})" for k in CONTROL_VALUES)
        return KernelApply(kid, Verdict.APPLIED, f"falls back to {falls_back}", apply_ms)
    differs = [
        f"{k}={control.get(k)} from {sources.get(k, '?')}"
        for k, v in expect.values.items()
        if k in CONTROL_VALUES and control.get(k) != v
    ]
    if differs:
        return KernelApply(kid, Verdict.OVERRIDDEN, "applied, but " + ", ".join(differs), apply_ms)
    if expect.cancels:
        orders = as_object(doc.get("orders"))
        uncancelled = int(_number(orders.get("working"))) - int(_number(orders.get("cancelling")))
        if uncancelled > 0:
            return KernelApply(
                kid, Verdict.TIMEOUT, f"{uncancelled} working order(s) not yet cancelled", apply_ms
            )
        killed = as_object(report.get("kill_switch"))
        sent = int(_number(killed.get("cancels_sent")))
        return KernelApply(kid, Verdict.APPLIED, f"{sent} cancel(s) sent", apply_ms)
    return KernelApply(kid, Verdict.APPLIED, "", apply_ms)
