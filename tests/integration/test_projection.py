"""The Hazelcast projection against a real member."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dita.contracts import KernelIntent
from dita.kernel import ExecutionKernel
from dita.projection.hazelcast import HazelcastProjection, ProjectionError, connect
from dita.venue import MockVenueAdapter
from tests.conftest import Cluster, wait_until

pytestmark = pytest.mark.hazelcast


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = cluster.client()
    yield c
    c.shutdown()


def run_trades(kernel: ExecutionKernel, n: int, prefix: str) -> None:
    for i in range(n):
        slot = i % kernel.max_slots
        kernel.process_intent(
            KernelIntent(
                action="ENTER",
                slot_id=slot,
                trade_id=f"{prefix}{i}",
                asset="BTC",
                side="LONG",
                target_size=1.0,
                reference_price=100.0 + i,
            )
        )
        kernel.mark_price("BTC", 101.0 + i)
        kernel.process_intent(KernelIntent(action="EXIT", slot_id=slot, reference_price=102.0 + i))


def documents(client: Any, map_name: str, kernel_id: str) -> dict[str, dict[str, Any]]:
    from hazelcast.predicate import equal

    values = client.get_map(map_name).blocking().entry_set(equal("kernel_id", kernel_id))
    return {k: json.loads(v.to_string()) for k, v in values}


def assert_matches_kernel(client: Any, kernel: ExecutionKernel) -> None:
    slots = documents(client, "dita.slots", kernel.kernel_id)
    snapshot = kernel.snapshot()
    assert len(slots) == kernel.max_slots
    for slot in snapshot["slots"]:
        doc = slots[f"{kernel.kernel_id}:{slot['slot_id']}"]
        for field in ("fsm_state", "trade_id", "size", "realized_pnl", "unrealized_pnl", "version"):
            assert doc[field] == slot[field], (field, doc[field], slot[field])
    account = documents(client, "dita.accounts", kernel.kernel_id)[kernel.kernel_id]
    assert account["k_realized_pnl"] == pytest.approx(snapshot["account"]["k_realized_pnl"])
    assert account["version"] == snapshot["account"]["version"]


def test_projection_matches_the_kernel_and_kernels_keep_apart(cluster: Cluster, client: Any) -> None:
    projection = HazelcastProjection(client)
    a = ExecutionKernel(
        max_slots=4, kernel_id="proj-a", venue=MockVenueAdapter(partial_fills=2), projection=projection
    )
    b = ExecutionKernel(max_slots=3, kernel_id="proj-b", venue=MockVenueAdapter(), projection=projection)
    run_trades(a, 10, "a")
    run_trades(b, 5, "b")
    a.process_intent(
        KernelIntent(
            action="ENTER",
            slot_id=1,
            trade_id="open-a",
            asset="BTC",
            side="SHORT",
            target_size=2.0,
            reference_price=100.0,
        )
    )
    projection.flush(5.0)
    assert_matches_kernel(client, a)
    assert_matches_kernel(client, b)
    status = json.loads(client.get_map("dita.kernels").blocking().get("proj-a").to_string())
    assert status["state"] == "RUNNING" and status["pid"] > 0 and "backlog" in status["projection"]
    projection.close()
    stopped = json.loads(client.get_map("dita.kernels").blocking().get("proj-a").to_string())
    assert stopped["state"] == "STOPPED"


def test_changes_stream_without_a_flush_and_a_detached_kernel_is_no_longer_written(
    cluster: Cluster, client: Any
) -> None:
    """The writer's feed takes each change as it happens: a kernel that goes
    quiet after one call still has that call in the map, with nobody flushing;
    after detach, the kernel's later changes stay out of the map."""
    # An idle feed sleeps for an hour unless a kernel call wakes it: only the
    # call's own wake-up can bring its change to the map in time.
    projection = HazelcastProjection(client, idle_interval=3600.0)
    kernel = ExecutionKernel(max_slots=2, kernel_id="feed-a", venue=MockVenueAdapter(), projection=projection)
    slots = client.get_map("dita.slots").blocking()

    def version_in_map(key: str) -> int:
        doc = slots.get(key)
        return -1 if doc is None else int(json.loads(doc.to_string())["version"])

    def reaches(version: int) -> None:
        wait_until(lambda: version_in_map("feed-a:0") == version)

    for step in range(3):
        run_trades(kernel, 1, f"quiet{step}-")
        reaches(kernel.slot(0).version)
    projection.detach("feed-a")
    detached_at = kernel.slot(0).version
    run_trades(kernel, 1, "after-detach-")
    assert kernel.slot(0).version > detached_at
    projection.flush(10)  # everything the projection still writes is written
    assert version_in_map("feed-a:0") == detached_at
    projection.close()


def test_every_document_is_found_by_its_key_from_another_client(cluster: Cluster, client: Any) -> None:
    # The writer sends pre-encoded entries to the partitions it computes itself;
    # a reader asking by key finds them only where its own client looks.
    projection = HazelcastProjection(client)
    kernel = ExecutionKernel(
        max_slots=300, kernel_id="by-key", venue=MockVenueAdapter(), projection=projection
    )
    run_trades(kernel, 300, "k")
    projection.flush(5.0)
    reader = cluster.client()
    try:
        keys = [f"by-key:{i}" for i in range(kernel.max_slots)]
        found = reader.get_map("dita.slots").blocking().get_all(keys)
        versions = {k: json.loads(v.to_string())["version"] for k, v in found.items()}
        assert versions == {f"by-key:{s.slot_id}": s.version for s in kernel.slots()}
        account = reader.get_map("dita.accounts").blocking().get("by-key")
        assert json.loads(account.to_string())["version"] == kernel.account["version"]
    finally:
        reader.shutdown()
        projection.close()


def test_documents_are_queryable_with_sql(cluster: Cluster, client: Any) -> None:
    projection = HazelcastProjection(client)
    kernel = ExecutionKernel(max_slots=2, kernel_id="sql-k", venue=MockVenueAdapter(), projection=projection)
    kernel.process_intent(
        KernelIntent(
            action="ENTER",
            slot_id=0,
            trade_id="q1",
            asset="ETH",
            side="LONG",
            target_size=3.0,
            reference_price=10.0,
        )
    )
    projection.flush(5.0)
    client.sql.execute(
        """CREATE OR REPLACE MAPPING "dita.slots" (
             __key VARCHAR, kernel_id VARCHAR, trade_id VARCHAR, fsm_state VARCHAR, size DOUBLE,
             version BIGINT)
           TYPE IMap OPTIONS ('keyFormat' = 'varchar', 'valueFormat' = 'json-flat')"""
    ).result()
    rows = list(
        client.sql.execute(
            "SELECT trade_id, size FROM \"dita.slots\" WHERE kernel_id = ? AND fsm_state = 'POSITION_OPEN'",
            "sql-k",
        ).result()
    )
    assert [(r["trade_id"], r["size"]) for r in rows] == [("q1", 3.0)]
    projection.close()


def test_the_kernel_keeps_trading_while_the_member_is_down_and_the_maps_converge(cluster: Cluster) -> None:
    if cluster.member is None:
        pytest.skip("the cluster is not ours to stop (DITA_HAZELCAST or a container)")
    projection = HazelcastProjection(members=cluster.members, cluster_name=cluster.cluster_name)
    kernel = ExecutionKernel(
        max_slots=5, kernel_id="outage-k", venue=MockVenueAdapter(), projection=projection
    )
    run_trades(kernel, 5, "before")
    projection.flush(5.0)
    cluster.member.stop()
    wait_until(lambda: not projection.connected, timeout=30)
    run_trades(kernel, 20, "during")
    assert projection.backlog() <= kernel.max_slots + 1, "at most one pending document per key"
    cluster.member.start(timeout=180)
    wait_until(lambda: projection.connected, timeout=60)
    projection.flush(10.0)
    reader = cluster.client()
    try:
        wait_until(lambda: len(documents(reader, "dita.slots", "outage-k")) == 5, timeout=30)
        assert_matches_kernel(reader, kernel)
    finally:
        reader.shutdown()
        projection.close()


def test_an_unreachable_cluster_fails_fast_with_a_clear_message() -> None:
    from dita.cluster.local_member import find_free_port

    started = time.monotonic()
    with pytest.raises(ProjectionError, match=r"cannot reach Hazelcast cluster 'nowhere'.*within 2 s"):
        connect([f"127.0.0.1:{find_free_port()}"], "nowhere", connect_timeout=2.0)
    assert time.monotonic() - started < 30


def test_a_restarted_kernel_never_writes_versions_below_what_readers_saw(
    cluster: Cluster, client: Any
) -> None:
    from dita.projection.reader import ProjectionReader

    projection = HazelcastProjection(client)
    first = ExecutionKernel(
        max_slots=2, kernel_id="restart-k", venue=MockVenueAdapter(), projection=projection
    )
    run_trades(first, 6, "first")
    projection.flush(5.0)
    seen = {k: d["version"] for k, d in documents(client, "dita.slots", "restart-k").items()}
    subscription = ProjectionReader(client).subscribe(("dita.slots",))
    projection.detach("restart-k")
    # The same kernel id comes back with a fresh kernel (say, from an old checkpoint).
    second = ExecutionKernel(
        max_slots=2, kernel_id="restart-k", venue=MockVenueAdapter(), projection=projection
    )
    projection.flush(5.0)
    now = {k: d["version"] for k, d in documents(client, "dita.slots", "restart-k").items()}
    assert all(now[k] > seen[k] for k in seen), (seen, now)
    assert all(second.slot(int(k.split(":")[1])).version == v for k, v in now.items())
    assert all(d["fsm_state"] == "IDLE" for d in documents(client, "dita.slots", "restart-k").values())
    changes = []
    while (change := subscription.get(timeout=0.5)) is not None:
        changes.append(change)
    subscription.close()
    assert changes and all(c.document and c.document["version"] > seen[c.key] for c in changes)
    projection.close()


def test_the_journal_streams_into_a_ringbuffer_per_kernel(cluster: Cluster, client: Any) -> None:
    from dita.control import KernelControlSnapshot
    from dita.journal import RingbufferJournal, read_ring_journal

    journal = RingbufferJournal(client, "ring-k")
    kernel = ExecutionKernel(
        max_slots=2,
        kernel_id="ring-k",
        venue=MockVenueAdapter(),
        journal=journal,
        control=KernelControlSnapshot(journal=True),
    )
    run_trades(kernel, 3, "j")
    assert journal.flush(10)
    records = read_ring_journal(client, "ring-k")
    triggers = [r["transition"]["trigger"] for r in records]
    assert triggers[:4] == ["ENTER", "SUBMITTED", "ORDER_ACK", "FILL"]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert all(r["kernel_id"] == "ring-k" for r in records)
    journal.close()
