"""`dita.control.history`: who wrote what, and what every kernel applied or refused.

Every record expires (`HISTORY_TTL_S`): a stray client writing junk makes
kernels record refusals, and however often that happens (at most once a
second per key and kernel, see the listener) the map cannot grow without
bound. The members' configuration caps it as well (`dita/cluster/member.yaml`).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

HISTORY_MAP = "dita.control.history"
#: How long a history record lives: a week, long enough for any post-mortem.
HISTORY_TTL_S = 7 * 24 * 3600


def json_value(doc: dict[str, Any]) -> Any:
    """`doc` as the map value dita writes: a `HazelcastJsonValue`, never a pickle."""
    from hazelcast.core import HazelcastJsonValue

    return HazelcastJsonValue(json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False))


def record_history(history_map: Any, kind: str, key: str, doc: dict[str, Any]) -> Any:
    """Appends one audit record to the (async) history map proxy; returns the
    future (kernels never wait for it). The proxy must have been made off the
    client's I/O thread: making one there waits, which the client forbids."""
    at = time.time()
    record = {"kind": kind, "key": key, "at": at, **doc}
    hkey = f"{int(at * 1e6):020d}-{uuid.uuid4().hex[:8]}"
    return history_map.put(hkey, json_value(record), ttl=HISTORY_TTL_S)
