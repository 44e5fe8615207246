"""Signed control entries: an HMAC-SHA256 over an entry's canonical content.

Hazelcast's open-source edition lets any client write any map. With a key that
operators and kernels share (never stored in Hazelcast), kernels apply only
entries whose signature matches, so a stray client cannot flip a kernel to
ACTIVE. The rev is part of the signed content, so replaying an old signed
entry is refused by the rev check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any


def canonical_bytes(entry: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: every field but the signature, keys sorted, no spaces."""
    content = {k: v for k, v in entry.items() if k != "signature"}
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def sign_entry(entry: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical_bytes(entry), hashlib.sha256).hexdigest()


def verify_signature(entry: Mapping[str, Any], key: bytes) -> bool:
    signature = entry.get("signature")
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(signature, sign_entry(entry, key))
