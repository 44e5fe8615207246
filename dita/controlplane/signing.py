"""Signed control entries: an HMAC-SHA256 over what an entry authorizes.

Hazelcast's open-source edition lets any client write any map. With a key that
operators and kernels share (never stored in Hazelcast), kernels apply only
entries whose signature matches, so a stray client cannot flip a kernel to
ACTIVE. The signature covers the map, the entry's key, every field and the
rev: an entry copied to another key (one kernel's override made global, or
another kernel's) no longer matches, and replaying an old entry under its own
key is refused by the rev check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

#: The map whose entries are signed; part of the signed content, so a signature
#: made for a control entry authorizes nothing anywhere else.
SIGNED_MAP = "dita.control"


def canonical_bytes(entry: Mapping[str, Any], key: str) -> bytes:
    """The bytes that are signed: the map, the key, and every field but the
    signature, keys sorted, no spaces."""
    content = {k: v for k, v in entry.items() if k != "signature"}
    return json.dumps(
        {"map": SIGNED_MAP, "key": key, "entry": content},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    ).encode()


def sign_entry(entry: Mapping[str, Any], control_key: bytes, key: str) -> str:
    """The signature of `entry` as the value of `key` in `dita.control`."""
    return hmac.new(control_key, canonical_bytes(entry, key), hashlib.sha256).hexdigest()


def verify_signature(entry: Mapping[str, Any], control_key: bytes, key: str) -> bool:
    """True when `entry` carries a signature made with `control_key` for `key`."""
    signature = entry.get("signature")
    if not isinstance(signature, str):
        return False
    try:
        expected = sign_entry(entry, control_key, key)
    except (TypeError, ValueError):  # content that has no canonical form was never signed
        return False
    return hmac.compare_digest(signature, expected)
