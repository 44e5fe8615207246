"""`projections/sql/queries/kernels_dead.sql` on a real member's SQL: which kernels it calls dead.

The member is this module's own: the documents written here are the cases the
query must tell apart, not kernels' documents other tests read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dita.cluster.local_member import LocalMember, find_free_port

pytestmark = pytest.mark.hazelcast

SQL = Path(__file__).resolve().parents[2] / "projections" / "sql"


def statements(path: Path) -> list[str]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from hazelcast.client import HazelcastClient

    member = LocalMember(port=find_free_port(), cluster_name="dead-query", log=lambda _line: None)
    member.start(timeout=180)
    try:
        c = HazelcastClient(cluster_members=[member.address], cluster_name="dead-query")
        for statement in statements(SQL / "mappings.sql"):
            c.sql.execute(statement).result()
        yield c
        c.shutdown()
    finally:
        member.stop()


def put(client: Any, map_name: str, key: str, doc: dict[str, Any]) -> None:
    from hazelcast.core import HazelcastJsonValue

    client.get_map(map_name).blocking().put(key, HazelcastJsonValue(json.dumps(doc)))


def dead(client: Any, now: float) -> list[str]:
    [sql] = statements(SQL / "queries" / "kernels_dead.sql")
    rows = client.sql.execute(sql, *[now] * sql.count("?")).result()
    return [row.get_object("kernel_id") for row in rows]


def test_kernels_holding_state_without_a_live_entry_are_dead_for_as_long_as_that_lasts(client: Any) -> None:
    now = time.time()
    entries: dict[str, dict[str, Any] | None] = {
        "live": {"state": "RUNNING", "heartbeat_at": now - 0.5},
        "stale": {"state": "RUNNING", "heartbeat_at": now - 10},
        "killed": {"state": "RUNNING", "heartbeat_at": now - 31},
        "killed-last-week": {"state": "RUNNING", "heartbeat_at": now - 7 * 86400},
        "no-heartbeat": {"state": "RUNNING"},
        "stopped": {"state": "STOPPED", "heartbeat_at": now - 3600},
        "no-entry": None,
    }
    for kid, entry in entries.items():
        put(client, "dita.accounts", kid, {"kernel_id": kid, "version": 3, "k_capital": 1000.0})
        if entry is not None:
            put(client, "dita.kernels", kid, {"kernel_id": kid, "host": "h", "pid": 7, **entry})
    # An entry of a kernel that holds no state is nobody's alert.
    put(
        client,
        "dita.kernels",
        "stateless",
        {"kernel_id": "stateless", "state": "RUNNING", "heartbeat_at": 1.0},
    )

    assert set(dead(client, now)) == {"killed-last-week", "killed", "no-heartbeat"}
    # Thirty seconds on, with nothing beating, the stale kernel has joined them; the live
    # one beats in real life, so it is left out here by a fresh beat.
    put(client, "dita.kernels", "live", {"kernel_id": "live", "state": "RUNNING", "heartbeat_at": now + 29})
    later = dead(client, now + 30)
    assert set(later) == {"killed-last-week", "killed", "no-heartbeat", "stale"}
    beating = [kid for kid in later if kid != "no-heartbeat"]
    assert beating == ["killed-last-week", "killed", "stale"], "longest silent first"

    rows = client.sql.execute(statements(SQL / "queries" / "kernels_dead.sql")[0], now, now).result()
    by_id = {row.get_object("kernel_id"): row for row in rows}
    killed = by_id["killed"]
    assert (killed.get_object("host"), killed.get_object("pid"), killed.get_object("state")) == (
        "h",
        7,
        "RUNNING",
    )
    assert killed.get_object("silent_for_s") == pytest.approx(31, abs=0.01)
