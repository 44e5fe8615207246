"""A restarted kernel meeting its own projections.

The checkpoint is what the kernel was when it was written; the maps hold what
it last published, which is later when the process died between two
checkpoints. The restored kernel is brought up to the newer of the two, but
anyone who can reach the cluster can write `dita.slots` and `dita.accounts`,
and a kernel killed mid-write leaves keys of two moments. So every document
is hostile input, and the maps are taken only when they prove themselves:

- **Signed.** A kernel with a document key ends every document it writes in
  `,"mac":"<64 hex>"}`: HMAC-SHA256 under the key over the document's exact
  bytes without that member (the canonical rule is in
  `native/kernel/src/documents.rs`). A document is checked as text, before
  anything in it is believed: one not JSON, not an object, without a sound
  `version` (an integer, 0 to 2**53), not of this kernel's id and key, with
  a slot_id beyond the kernel's slots, or without a valid signature is
  reported by key with the reason and ignored. Never a traceback.
- **Whole.** The account document carries the cut: a digest of every slot's
  version as of the kernel's drain that wrote it (`cut_digest` below). The
  map's slot versions (a slot without a document at its first version, 0; a
  slot whose document was refused at its checkpoint version) must give the
  same digest, or the set is torn.
- **All or nothing.** When the account or any slot document is newer than
  the checkpoint, the newer ones are adopted (slots through
  `reconcile_from_slots`, checked whole; the account's K and E figures through
  `adopt_account`) only if every one of them verifies and the cut matches.
  Otherwise nothing is, `Recovery.describe()` says why, and the kernel
  resumes from its checkpoint. Without a document key nothing is adopted.

`resume_from_projections` is what `dita run --resume` calls.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dita._native import Kernel
from dita.projection.base import ACCOUNTS_MAP, SLOTS_MAP
from dita.projection.documents import MAX_DOCUMENT_CHARS, MAX_VERSION, loads

#: What a store adds to a slot document; the kernel's slot has none of it.
_STORE_FIELDS = ("kernel_id", "key", "updated_at", "mac", "cut")

#: `,"mac":"` + 64 lowercase hex + `"}`: how a signed document ends.
_MAC = re.compile(r',"mac":"([0-9a-f]{64})"\}\Z')
_MAC_SUFFIX = len(',"mac":"') + 64 + len('"}')
_HEX16 = re.compile(r"[0-9a-f]{16}\Z")
_M64 = (1 << 64) - 1


def _fmix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def mix(slot_id: int, version: int) -> int:
    """The 64-bit mix of one slot's (id, version) a cut sums (as the kernel's `documents::mix`)."""
    return _fmix(_fmix((version + 0x9E3779B97F4A7C15) & _M64) ^ slot_id)


def cut_digest(versions: Sequence[int]) -> str:
    """The cut digest of slots 0.. at `versions`, spelled as documents carry it (16 hex digits)."""
    return f"{sum(mix(i, v) for i, v in enumerate(versions)) & _M64:016x}"


def mac_verifies(text: str, key: bytes) -> bool:
    """Whether `text` ends in a `mac` member that verifies under `key` (constant time)."""
    found = _MAC.search(text)
    if found is None:
        return False
    signed = (text[:-_MAC_SUFFIX] + "}").encode()
    return hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).hexdigest(), found.group(1))


@dataclass
class Recovery:
    """What the maps changed in a restored kernel, and what they could not."""

    slots_from_projection: list[int] = field(default_factory=list)
    account_from_projection: bool = False
    #: Slot documents read (whatever they held).
    projected_slots: int = 0
    #: Documents ignored, by map key: why.
    refused: dict[str, str] = field(default_factory=dict)
    #: Why nothing was adopted though the maps hold something newer than the checkpoint.
    not_adopted: str = ""
    #: Whether an account document was read (whatever it held).
    account_read: bool = False
    #: The kernel whose documents these were (its account's key).
    kernel_id: str | None = None

    @property
    def adopted(self) -> bool:
        return bool(self.slots_from_projection) or self.account_from_projection

    def describe(self) -> str:
        if not self.projected_slots and not self.account_read:
            return "no projected state found; the checkpoint stands"
        text = f"{self.projected_slots} projected slots read"
        if self.adopted:
            taken = ", ".join(map(str, self.slots_from_projection)) or "none"
            account = ", account" if self.account_from_projection else ""
            text += f"; newer than the checkpoint: slots {taken}{account}"
        elif self.not_adopted:
            text += f"; nothing adopted: {self.not_adopted}"
        else:
            text += "; newer than the checkpoint: slots none"
        if self.refused:
            text += "; refused: " + "; ".join(
                f"{'account' if key == self.kernel_id else 'slot'} {key}: {self.refused[key]}"
                for key in sorted(self.refused, key=self._order)
            )
        if not self.adopted:
            text += "; the checkpoint stands"
        return text

    def _order(self, key: str) -> tuple[int, int, str]:
        """Slots by id, then anything else, the account last."""
        if key == self.kernel_id:
            return 2, 0, key
        slot = key.rpartition(":")[2]
        return (0, int(slot), key) if slot.isdigit() else (1, 0, key)


def slot_from_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """A `dita.slots` document as the kernel's slot fields."""
    return {k: v for k, v in document.items() if k not in _STORE_FIELDS}


def _text(value: Any) -> tuple[str | None, str]:
    """The JSON text a map value holds, or why there is none. A plain string
    counts as text: the signature, not the value's type, proves a document."""
    if isinstance(value, str):
        return value, ""
    to_string = getattr(value, "to_string", None)
    if to_string is None:
        return None, f"not a JSON document (a {type(value).__name__} value)"
    try:
        text = to_string()
    except TypeError as e:  # a value the hardened client refused to read
        return None, f"not a JSON document ({e})"
    if not isinstance(text, str):
        return None, "not a JSON document"
    return text, ""


def _parsed(value: Any) -> tuple[str | None, dict[str, Any] | None, str]:
    """(exact text or None when the value came parsed, the object, why not)."""
    if isinstance(value, Mapping):
        return None, dict(value), ""
    text, why = _text(value)
    if text is None:
        return None, None, why
    if len(text) > MAX_DOCUMENT_CHARS:
        return None, None, f"not a document: {len(text)} characters, over {MAX_DOCUMENT_CHARS}"
    try:
        doc = loads(text)
    except (ValueError, RecursionError) as e:
        return None, None, f"not JSON ({str(e)[:80]})"
    if not isinstance(doc, dict):
        return None, None, f"not a JSON object (a {type(doc).__name__})"
    return text, doc, ""


def _version(doc: Mapping[str, Any]) -> tuple[int | None, str]:
    if "version" not in doc:
        return None, "no version"
    v = doc["version"]
    if isinstance(v, bool) or not isinstance(v, int):
        return None, f"version {v!r} is not an integer"
    if not 0 <= v <= MAX_VERSION:
        return None, f"version {v} is absurd (a kernel's is 0 to 2**53)"
    return v, ""


@dataclass
class _Checked:
    """One map value, taken apart: `doc` when it passed every structural check,
    `why` when it did not (or its signature failed), `proven` when it verified."""

    key: str
    doc: dict[str, Any] | None = None
    version: int | None = None
    why: str = ""
    proven: bool = False


def _check(
    key: str,
    value: Any,
    *,
    kernel_id: str | None,
    document_key: bytes | None,
    max_slots: int | None,
) -> _Checked:
    """Checks one document of kernel `kernel_id` stored under `key`; a slot's when
    `max_slots` is given, else the account's."""
    text, doc, why = _parsed(value)
    if doc is None:
        return _Checked(key, why=why)
    version, why = _version(doc)
    if version is None:
        return _Checked(key, why=why)
    checked = _Checked(key, doc=doc, version=version)
    if kernel_id is not None and doc.get("kernel_id") != kernel_id:
        checked.why = f"kernel_id {doc.get('kernel_id')!r} is not this kernel's"
    elif doc.get("key") != key:
        checked.why = f"its key field {doc.get('key')!r} is not the key it is stored under"
    elif max_slots is not None:
        slot_id = doc.get("slot_id")
        if isinstance(slot_id, bool) or not isinstance(slot_id, int) or not 0 <= slot_id < max_slots:
            checked.why = f"slot_id {slot_id!r} is not one of this kernel's {max_slots} slots"
        elif kernel_id is not None and key != f"{kernel_id}:{slot_id}":
            checked.why = f"slot_id {slot_id} is not the slot of its key"
    if checked.why or document_key is None:
        return checked
    if text is None:
        checked.why = "no valid signature (read already parsed: its exact text is needed to check it)"
    elif not mac_verifies(text, document_key):
        checked.why = "no valid signature" + (
            " (it does not verify under this kernel's document key)" if "mac" in doc else " (it carries none)"
        )
    else:
        checked.proven = True
    return checked


def _cut(account: Mapping[str, Any]) -> tuple[int, str] | None:
    cut = account.get("cut")
    if not isinstance(cut, Mapping):
        return None
    slots, digest = cut.get("slots"), cut.get("digest")
    if isinstance(slots, bool) or not isinstance(slots, int) or not isinstance(digest, str):
        return None
    return (slots, digest) if _HEX16.match(digest) else None


def reconcile_with_projections(
    core: Kernel,
    slots: Mapping[str, Any] | Sequence[Any],
    account: Any,
    *,
    kernel_id: str | None = None,
    document_key: bytes | None = None,
) -> Recovery:
    """Brings `core` up to the newer of itself and the maps' documents, taking
    from the maps only a set it can prove whole (see the module doc).

    `slots`: the values of `dita.slots` for this kernel by key, as the client
    read them (exact texts: `HazelcastJsonValue`s); a sequence is taken with
    each document's own `key` (already parsed documents prove nothing).
    `account`: the value of `dita.accounts` for it, or None. `kernel_id` is
    needed to check signatures. Changes `core` only when it adopts, and then
    the whole set; never raises for what a document holds.
    """
    if document_key is not None and kernel_id is None:
        raise TypeError("reconcile_with_projections: kernel_id is needed to check signatures")
    n = core.max_slots
    if isinstance(slots, Mapping):
        items = list(slots.items())
    else:
        items = [(_key_of(v, k), v) for k, v in enumerate(slots)]
    recovery = Recovery(projected_slots=len(items), account_read=account is not None, kernel_id=kernel_id)
    at_checkpoint = [core.slot(i).version for i in range(n)]
    account_at_checkpoint = int(core.account()["version"])

    by_slot: dict[int, _Checked] = {}
    claims_newer = False
    for key, value in items:
        checked = _check(str(key), value, kernel_id=kernel_id, document_key=document_key, max_slots=n)
        slot_id = checked.doc.get("slot_id") if checked.doc is not None else None
        if not checked.why and isinstance(slot_id, int) and slot_id in by_slot:
            checked.why = f"a second document for slot {slot_id}"
        if checked.why:
            recovery.refused[checked.key] = checked.why
        elif isinstance(slot_id, int):
            by_slot[slot_id] = checked
        if isinstance(slot_id, int) and 0 <= slot_id < n and checked.version is not None:
            claims_newer |= checked.version > at_checkpoint[slot_id]
    account_checked: _Checked | None = None
    if account is not None:
        account_key = kernel_id if kernel_id is not None else _key_of(account, -1)
        recovery.kernel_id = account_key
        account_checked = _check(
            account_key, account, kernel_id=kernel_id, document_key=document_key, max_slots=None
        )
        if account_checked.why:
            recovery.refused[account_key] = account_checked.why
        if account_checked.version is not None:
            claims_newer |= account_checked.version > account_at_checkpoint

    newer = sorted(i for i, c in by_slot.items() if c.proven and (c.version or 0) > at_checkpoint[i])
    account_newer = (
        account_checked is not None
        and account_checked.proven
        and (account_checked.version or 0) > account_at_checkpoint
    )
    if not claims_newer:
        return recovery  # nothing in the maps is ahead of the checkpoint, genuine or not
    if document_key is None:
        recovery.not_adopted = "no document key, so nothing in the maps can be proven this kernel's"
        return recovery
    if account_checked is None or not account_checked.proven or account_checked.doc is None:
        recovery.not_adopted = (
            "no valid account document, so nothing names the slot versions the maps should hold"
        )
        return recovery
    cut = _cut(account_checked.doc)
    if cut is None:
        recovery.not_adopted = "the account document carries no valid cut"
        return recovery
    # A slot without a document is at its first version; one whose document was
    # refused is taken at its checkpoint version (the account's cut then says
    # whether the kernel had moved it on).
    refused_slots = {i for i in range(n) if f"{kernel_id}:{i}" in recovery.refused}
    versions = [
        (by_slot[i].version or 0) if i in by_slot else at_checkpoint[i] if i in refused_slots else 0
        for i in range(n)
    ]
    if cut[0] != n or cut[1] != cut_digest(versions):
        ahead = ", ".join(map(str, newer)) or "none"
        counted = f" (it counts {cut[0]} slots, this kernel has {n})" if cut[0] != n else ""
        recovery.not_adopted = (
            f"torn: the account's cut does not match the slot versions in the map{counted} "
            f"(slots newer than the checkpoint: {ahead})"
        )
        return recovery
    if not newer and not account_newer:
        return recovery
    merged = [core.slot(i).to_dict() for i in range(n)]
    for i in newer:
        merged[i] = slot_from_document(by_slot[i].doc or {})
    adopted_account = dict(account_checked.doc) if account_newer else None
    # Tried on a copy first, so a refusal of either part leaves `core` untouched.
    try:
        for kernel in (Kernel.restore(core.checkpoint()), core):
            if newer:
                outcome = kernel.reconcile_from_slots(merged, None)
                if not outcome.accepted:
                    raise ValueError(f"slots refused: {outcome.details}")
            if adopted_account is not None:
                kernel.adopt_account(adopted_account)
    except (ValueError, TypeError, OverflowError) as e:
        recovery.not_adopted = f"the kernel refused the projected set ({e})"
        return recovery
    recovery.slots_from_projection = newer
    recovery.account_from_projection = account_newer
    return recovery


def _key_of(value: Any, index: int) -> str:
    """The key a document names for itself (for values given without their keys)."""
    _, doc, _ = _parsed(value)
    key = doc.get("key") if doc is not None else None
    return key if isinstance(key, str) else f"#{index}"


def read_projections(client: Any, kernel_id: str, max_slots: int) -> tuple[dict[str, Any], Any]:
    """The values `dita.slots` and `dita.accounts` hold for `kernel_id`, unparsed:
    ({"<kernel_id>:<slot_id>": value}, account value or None). The client is
    hardened first (`dita.cluster.serialization.harden`): no value runs code."""
    from dita.cluster.serialization import harden

    harden(client)
    keys = [f"{kernel_id}:{i}" for i in range(max_slots)]
    found = client.get_map(SLOTS_MAP).blocking().get_all(keys) if keys else {}
    account = client.get_map(ACCOUNTS_MAP).blocking().get(kernel_id)
    return {str(k): v for k, v in found.items()}, account


def resume_from_projections(
    core: Kernel, client: Any, kernel_id: str, document_key: bytes | None
) -> Recovery:
    """What `dita run --resume` does with a restored kernel: reads the kernel's
    documents from the cluster and reconciles `core` with them (see
    `reconcile_with_projections`). A cluster that cannot be read raises as
    the client raised; what the documents hold never does."""
    slots, account = read_projections(client, kernel_id, core.max_slots)
    return reconcile_with_projections(core, slots, account, kernel_id=kernel_id, document_key=document_key)
