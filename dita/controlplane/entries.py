"""Control entries: parsing, validation, and effective control field by field."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dita.controlplane.signing import verify_signature
from dita.enums import KernelMode, KernelVerbosity
from dita.projection.documents import loads

GLOBAL_KEY = "global"
KERNEL_PREFIX = "kernel:"
MAX_ENTRY_BYTES = 4_096
MAX_TEXT = 1_000
CONTROL_VALUES = ("mode", "verbosity", "journal")
#: What an entry asks a kernel to do besides setting control: `cancel_working`
#: (with mode HALTED: cancel every working order; true unless an entry says
#: false), `flatten` (close every open position at market, once per rev) and
#: `clear` (a tombstone: the key sets nothing, so its kernels fall back).
ACTION_FIELDS = ("cancel_working", "flatten", "clear")
ENTRY_FIELDS = frozenset(
    {*CONTROL_VALUES, *ACTION_FIELDS, "rev", "author", "reason", "issued_at", "signature"}
)
#: Entries issued longer ago than this are refused as replays (a signed entry
#: stays valid forever otherwise, and `dita.control.history` keeps copies).
#: Operators re-issue a standing entry with `dita control set` before then.
DEFAULT_MAX_AGE_S = 30 * 24 * 3600.0
#: An entry issued further in the future than this is refused: a clock that
#: far off would make every later write look like a replay.
MAX_CLOCK_AHEAD_S = 300.0
#: Revs are milliseconds since the epoch (see `operator.next_rev`); a rev past
#: this would stop every later genuine write as "stale".
MAX_REV = 2**63 - 1


def kernel_key(kernel_id: str) -> str:
    return f"{KERNEL_PREFIX}{kernel_id}"


class ControlRefusal(ValueError):
    """An entry that is not applied: which key, which rev, and exactly why."""

    def __init__(self, key: str, rev: object, reason: str) -> None:
        super().__init__(f"control entry {key!r} rev {rev!r} refused: {reason}")
        self.key = key
        self.rev = rev
        self.reason = reason

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "rev": self.rev if isinstance(self.rev, int) else None,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ControlEntry:
    """A valid entry of `dita.control`: the fields it sets (others fall through)."""

    key: str
    rev: int
    mode: KernelMode | None = None
    verbosity: KernelVerbosity | None = None
    journal: bool | None = None
    author: str = ""
    reason: str = ""
    issued_at: float = 0.0
    cancel_working: bool | None = None
    flatten: bool = False
    clear: bool = False

    def values(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CONTROL_VALUES if getattr(self, k) is not None}


def _text(raw: Any) -> str:
    if hasattr(raw, "to_string"):
        text = raw.to_string()
        if not isinstance(text, str):
            raise TypeError(type(raw).__name__)
        return text
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        return raw
    raise TypeError(type(raw).__name__)


def parse_entry(
    key: str,
    raw: Any,
    *,
    last_rev: int = 0,
    control_key: bytes | None = None,
    now: float | None = None,
    max_age_s: float | None = None,
) -> ControlEntry:
    """A `ControlEntry` from a map value, or `ControlRefusal` saying exactly why not.

    With `now` and `max_age_s`, an entry issued more than `max_age_s` before
    `now` (or over `MAX_CLOCK_AHEAD_S` after it) is refused as a replay.
    """
    if key != GLOBAL_KEY and not (key.startswith(KERNEL_PREFIX) and len(key) > len(KERNEL_PREFIX)):
        raise ControlRefusal(key, None, f"unknown key: use {GLOBAL_KEY!r} or '{KERNEL_PREFIX}<kernel_id>'")
    try:
        text = _text(raw)
    except TypeError as e:
        raise ControlRefusal(key, None, f"value is a {e}, not a JSON document") from None
    if len(text.encode()) > MAX_ENTRY_BYTES:
        raise ControlRefusal(key, None, f"entry is {len(text.encode())} bytes, more than {MAX_ENTRY_BYTES}")
    try:
        doc = loads(text)
    except (ValueError, RecursionError) as e:
        raise ControlRefusal(key, None, f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ControlRefusal(key, None, f"not a JSON object but {type(doc).__name__}")
    rev = doc.get("rev")
    unknown = sorted(set(doc) - ENTRY_FIELDS)
    if unknown:
        raise ControlRefusal(key, rev, f"unknown field(s) {', '.join(unknown)}")
    if not isinstance(rev, int) or isinstance(rev, bool) or not 1 <= rev <= MAX_REV:
        raise ControlRefusal(key, None, f"rev = {rev!r}: must be an integer from 1 to {MAX_REV}")
    if rev <= last_rev:
        raise ControlRefusal(
            key, rev, f"rev {rev} is not above the last applied rev {last_rev} (stale or replayed)"
        )
    clear = _flag(key, rev, doc, "clear")
    if clear and any(f in doc for f in (*CONTROL_VALUES, "cancel_working", "flatten")):
        raise ControlRefusal(key, rev, "clear = true: a clearing entry sets nothing else")
    if not clear and not any(f in doc for f in (*CONTROL_VALUES, "flatten")):
        raise ControlRefusal(key, rev, f"sets none of {', '.join(CONTROL_VALUES)} (nor flatten or clear)")
    mode = _enum(key, rev, doc, "mode", KernelMode)
    verbosity = _enum(key, rev, doc, "verbosity", KernelVerbosity)
    journal = doc.get("journal")
    if journal is not None and not isinstance(journal, bool):
        raise ControlRefusal(key, rev, f"journal = {journal!r}: must be true or false")
    for name in ("author", "reason"):
        value = doc.get(name, "")
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ControlRefusal(key, rev, f"{name} must be text of at most {MAX_TEXT} characters")
    issued_at = doc.get("issued_at", 0.0)
    if not isinstance(issued_at, int | float) or isinstance(issued_at, bool) or not math.isfinite(issued_at):
        raise ControlRefusal(key, rev, f"issued_at = {issued_at!r}: must be Unix seconds")
    cancel_working = doc.get("cancel_working")
    if cancel_working is not None and not isinstance(cancel_working, bool):
        raise ControlRefusal(key, rev, f"cancel_working = {cancel_working!r}: must be true or false")
    flatten = _flag(key, rev, doc, "flatten")
    if control_key is not None:
        if "signature" not in doc:
            raise ControlRefusal(key, rev, "unsigned: this kernel requires signed control entries")
        if not verify_signature(doc, control_key, key):
            raise ControlRefusal(
                key, rev, f"signature does not match the entry under key {key!r} (forged, altered or copied)"
            )
    if now is not None and max_age_s is not None:
        age = now - float(issued_at)
        if age > max_age_s:
            raise ControlRefusal(
                key, rev, f"issued {age / 86_400:.1f} days ago, more than {max_age_s / 86_400:g}: a replay?"
            )
        if -age > MAX_CLOCK_AHEAD_S:
            raise ControlRefusal(key, rev, f"issued {-age:.0f} s in the future: check the writer's clock")
    return ControlEntry(
        key=key,
        rev=rev,
        mode=mode,
        verbosity=verbosity,
        journal=journal,
        author=doc.get("author", ""),
        reason=doc.get("reason", ""),
        issued_at=float(issued_at),
        cancel_working=cancel_working,
        flatten=flatten,
        clear=clear,
    )


def _flag(key: str, rev: int, doc: dict[str, Any], name: str) -> bool:
    value = doc.get(name, False)
    if not isinstance(value, bool):
        raise ControlRefusal(key, rev, f"{name} = {value!r}: must be true or false")
    return value


_E = TypeVar("_E", KernelMode, KernelVerbosity)


def _enum(key: str, rev: int, doc: dict[str, Any], name: str, cls: type[_E]) -> _E | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in cls.__members__:
        choices = ", ".join(m.value for m in cls)
        raise ControlRefusal(key, rev, f"{name} = {value!r}: must be one of {choices}")
    return cls(value)


@dataclass(frozen=True)
class EffectiveControl:
    """Control field by field: the kernel's entry, else global, else the default; and where each came from."""

    mode: KernelMode
    verbosity: KernelVerbosity
    journal: bool
    sources: dict[str, str] = field(default_factory=dict)


def effective_control(
    default: dict[str, Any], global_entry: ControlEntry | None, kernel_entry: ControlEntry | None
) -> EffectiveControl:
    values = dict(default)
    sources = dict.fromkeys(CONTROL_VALUES, "default")
    for entry in (global_entry, kernel_entry):
        if entry is not None:
            for name, value in entry.values().items():
                values[name] = value
                sources[name] = entry.key
    return EffectiveControl(
        KernelMode(values["mode"]), KernelVerbosity(values["verbosity"]), bool(values["journal"]), sources
    )
