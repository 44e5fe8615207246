"""What a value read from dita's maps must be before a reader uses it.

Anyone who can reach the cluster can write its maps, so a value is taken
apart strictly: a JSON object of finite numbers or nothing, and a store
document's `version` a plain non-negative integer that JSON readers of every
language keep exactly. Whatever fails is malformed; readers leave it out
and count it rather than stop. No Hazelcast import here: the dashboard and
the command line load this without the client.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Readers of other languages keep integers exactly only up to here (IEEE doubles).
MAX_VERSION = 2**53

#: No dita document comes near this; a bigger value is not parsed at all.
MAX_DOCUMENT_CHARS = 1 << 20


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a document may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as infinity without NaN's spelling
        raise ValueError(f"{text} is beyond a double")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**64:  # nothing dita writes is wider than 64 bits
        raise ValueError(f"an integer of {len(text)} digits")
    return value


def loads(text: str) -> Any:
    """JSON as dita reads it from a map: NaN, infinities (1e400 too) and integers
    wider than 64 bits raise ValueError, nesting deeper than Python parses RecursionError."""
    return json.loads(
        text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
    )


def read_document(value: Any) -> dict[str, Any] | None:
    """The JSON object a map value holds; None when there is none or it is malformed.

    Malformed: a value the hardened client refused (its `to_string` raises
    TypeError), anything but a JSON document or text, text that is not JSON
    or not an object, NaN or infinite numbers, integers wider than 64 bits,
    nesting deeper than Python parses, more than a MiB.
    """
    if isinstance(value, str):
        text: Any = value
    else:
        to_string = getattr(value, "to_string", None)
        if to_string is None:
            return None
        try:
            text = to_string()
        except TypeError:
            return None
    if not isinstance(text, str) or len(text) > MAX_DOCUMENT_CHARS:
        return None
    try:
        doc = loads(text)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: for the parts of a document
    (a kernel's `control_report`, its `orders`) that a stray writer may have replaced."""
    return value if isinstance(value, dict) else {}


def document_version(doc: dict[str, Any]) -> int | None:
    """A store document's `version`; None when it is missing or absurd
    (not an integer, a boolean, negative, or above `MAX_VERSION`)."""
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    return version if 0 <= version <= MAX_VERSION else None


def store_document(value: Any) -> dict[str, Any] | None:
    """A `dita.slots` or `dita.accounts` document: a JSON object with a sound
    `version` and a text `kernel_id`; None when malformed."""
    doc = read_document(value)
    if doc is None or document_version(doc) is None or not isinstance(doc.get("kernel_id"), str):
        return None
    return doc


def slot_document(value: Any) -> dict[str, Any] | None:
    """A `dita.slots` document: a store document with a non-negative integer `slot_id`."""
    doc = store_document(value)
    slot_id = doc.get("slot_id") if doc is not None else None
    if not isinstance(slot_id, int) or isinstance(slot_id, bool) or slot_id < 0:
        return None
    return doc
