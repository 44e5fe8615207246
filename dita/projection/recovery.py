"""A restarted kernel meeting its own projections.

The checkpoint is what the kernel was when it was written; the projection is
what it last published, which is later when the process died between two
checkpoints. Key by key, the newer of the two wins: a slot or account whose
projected version is above the checkpoint's is taken from the projection
(slots through `reconcile_from_slots`, checked whole; the account's K and E
figures through `adopt_account`), everything else stays as checkpointed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dita._native import Kernel

#: What a store adds to a slot document; the kernel's slot has none of it.
_STORE_FIELDS = ("kernel_id", "key", "updated_at")


@dataclass
class Recovery:
    """What the projections changed in a restored kernel."""

    slots_from_projection: list[int] = field(default_factory=list)
    account_from_projection: bool = False
    projected_slots: int = 0

    def describe(self) -> str:
        if not self.projected_slots and not self.account_from_projection:
            return "no projected state found; the checkpoint stands"
        taken = ", ".join(map(str, self.slots_from_projection)) or "none"
        return (
            f"{self.projected_slots} projected slots read; newer than the checkpoint: slots {taken}"
            f"{', account' if self.account_from_projection else ''}"
        )


def slot_from_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """A `dita.slots` document as the kernel's slot fields."""
    return {k: v for k, v in document.items() if k not in _STORE_FIELDS}


def reconcile_with_projections(
    core: Kernel, slots: Sequence[Mapping[str, Any]], account: Mapping[str, Any] | None
) -> Recovery:
    """Brings `core` up to the newer of itself and the projected documents.

    Raises ValueError (and changes nothing) when the merged slot set is one the
    kernel refuses, or the projected account carries an invalid figure.
    """
    recovery = Recovery(projected_slots=len(slots))
    merged: dict[int, dict[str, Any]] = {}
    for i in range(core.max_slots):
        merged[i] = core.slot(i).to_dict()
    for document in slots:
        slot_id = int(document["slot_id"])
        if slot_id not in merged:
            raise ValueError(
                f"projected slot {document.get('key')}: slot_id {slot_id} is beyond this kernel's "
                f"{core.max_slots} slots"
            )
        if int(document["version"]) > int(merged[slot_id]["version"]):
            merged[slot_id] = slot_from_document(document)
            recovery.slots_from_projection.append(slot_id)
    adopt = account is not None and int(account["version"]) > int(core.account()["version"])
    # Tried on a copy first, so a refusal of either part leaves `core` untouched.
    for kernel in (Kernel.restore(core.checkpoint()), core):
        if recovery.slots_from_projection:
            outcome = kernel.reconcile_from_slots(list(merged.values()), None)
            if not outcome.accepted:
                raise ValueError(f"projected slots refused by the kernel: {outcome.details}")
        if adopt:
            kernel.adopt_account(dict(account or {}))
    recovery.account_from_projection = adopt
    return recovery
