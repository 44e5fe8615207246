"""Drill: one member of a three-member cluster is killed (SIGKILL) under load.

Each map entry has one synchronous backup on another member (member.yaml),
so the loss of one member loses no entry. The member killed is one the
kernel's client is not connected to, so the client never notices and never
writes everything anew: an entry lost with the member would stay lost, and
the drill would see it. Some slots hold a position nobody touches after the
kill, so their documents are only ever in the cluster from before it. The
control listener's registration survives the kill too: an operator's flip
written afterwards is applied and reported.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dita.cluster.local_member import LocalCluster
from dita.controlplane.operator import ControlOperator
from dita.kernel import ExecutionKernel
from dita.projection.base import KERNELS_MAP, SLOTS_MAP
from dita.projection.hazelcast import HazelcastProjection, connect
from dita.venue import MockVenueAdapter
from tests.conftest import wait_until
from tests.drills.faults import (
    NEVER_BLOCKED_S,
    SteadyLoad,
    assert_maps_equal_kernel,
    require_java,
)

pytestmark = pytest.mark.hazelcast

TRADING = range(16)
#: Slots holding a position nobody touches: enough of them that the member
#: holding the most of their primaries holds at least one (all on the
#: kernel's own member has odds of 3**-12).
STILL = list(range(16, 28))


def primaries(client: Any, keys: list[str]) -> dict[str, int]:
    """The port of the member holding each key's primary copy, by the client's partition table."""
    ports = {m.uuid: m.address.port for m in client.cluster_service.get_members()}
    partitions = client.partition_service

    def owners() -> dict[str, int | None]:
        return {k: ports.get(partitions.get_partition_owner(partitions.get_partition_id(k))) for k in keys}

    wait_until(lambda: None not in owners().values(), timeout=30)  # the table arrives after connecting
    return {k: port for k, port in owners().items() if port is not None}


def versions(client: Any, keys: set[str]) -> dict[str, int]:
    found = client.get_map(SLOTS_MAP).blocking().get_all(list(keys))
    return {str(k): int(json.loads(v.to_string())["version"]) for k, v in found.items()}


def test_one_member_of_three_killed_under_load_loses_no_entry(tmp_path: Path) -> None:
    require_java()
    name = f"drill-trio-{uuid.uuid4().hex[:8]}"
    cluster = LocalCluster(
        3, cluster_name=name, log_dir=tmp_path, log=lambda _line: None
    )
    kid = "drill-trio"
    with contextlib.ExitStack() as cleanup:
        began = time.monotonic()
        cluster.start(timeout=180)
        cleanup.callback(cluster.stop)
        formed_s = time.monotonic() - began
        home, *others = cluster.members
        # The kernel's client knows one member only and stays on it (not smart-routed).
        client = connect([home.address], name)
        cleanup.callback(client.shutdown)
        states: list[str] = []
        client.lifecycle_service.add_listener(states.append)
        projection = HazelcastProjection(client)
        cleanup.callback(projection.close)
        kernel = ExecutionKernel(
            max_slots=len(TRADING) + len(STILL), kernel_id=kid, venue=MockVenueAdapter(partial_fills=2),
            projection=projection,
        )  # fmt: skip
        kernel.set_seed_capital(10_000.0)
        kernel.set_exchange_config({"taker_rate": 0.0005, "maker_rate": 0.0002, "lot_step": 0.001})
        listener = kernel.control_listener  # the kernel listens by itself once attached
        cleanup.callback(kernel.close)
        assert listener.connected_at_start

        keys = [f"{kid}:{i}" for i in range(kernel.max_slots)] + [kid]
        still_keys = {f"{kid}:{i}" for i in STILL}
        owner = primaries(client, keys)
        victim = max(others, key=lambda m: sum(owner[k] == m.port for k in still_keys))
        survivor = next(m for m in others if m is not victim)
        lost_primaries = [k for k in keys if owner[k] == victim.port]
        lost_still = sorted(still_keys.intersection(lost_primaries))
        assert lost_still, "the member killed must hold the primary of an entry nobody writes again"
        operator_client = connect([survivor.address], name)
        cleanup.callback(operator_client.shutdown)
        operator = ControlOperator(operator_client, author="drill")

        load = SteadyLoad(kernel, slot_ids=TRADING)
        load.hold(STILL)
        load.start()
        with contextlib.ExitStack() as running:
            running.callback(load.stop)
            load.wait_calls("before", 3_000)
            projection.flush(10.0)
            expected = {f"{kid}:{i}": kernel.slot(i).version for i in STILL}
            wait_until(lambda: versions(operator_client, still_keys) == expected, timeout=10)

            load.phase("kill")
            writes_before = projection.stats()["writes"]
            killed_at = time.monotonic()
            victim.kill()
            cluster.wait_size(2, timeout=60)
            noticed_s = time.monotonic() - killed_at
            load.wait_calls("kill", 2_000)
            wait_until(lambda: projection.stats()["writes"] > writes_before + 100, timeout=30)

            load.phase("reduce only")
            flip = operator.set(mode="REDUCE_ONLY", reason="drill: a member died", wait=True, timeout=30)
            assert flip.applied == [kid] and not flip.missing, flip
            assert kernel.control.mode == "REDUCE_ONLY"
            load.wait_calls("reduce only", 1_000)

        projection.flush(10.0)
        assert "DISCONNECTED" not in states, "the kernel's client stayed on its member throughout"
        assert_maps_equal_kernel(operator_client, kernel)
        status = json.loads(operator_client.get_map(KERNELS_MAP).blocking().get(kid).to_string())
        assert status["control"]["mode"] == "REDUCE_ONLY"
        assert status["control_report"]["revs"] == {"global": flip.rev}
        assert load.phases["reduce only"].codes["MODE_BLOCKED"] > 0, "ENTER refused once the flip applied"

        print()
        print(f"three members formed in {formed_s:.1f} s; the killed one was noticed after {noticed_s:.2f} s")
        print(
            f"  the killed member held the primary of {len(lost_primaries)} of {len(keys)} entries, "
            f"{len(lost_still)} of them never written again"
        )
        print(f"  flip after the kill applied and reported in {flip.propagation_s * 1e3:.1f} ms")
        print(load.report("one of three members killed under load"))
        print(f"  projection: {projection.stats_dict()}")
        for phase in ("before", "kill"):
            assert load.phases[phase].codes["OK"] > 0, f"the kernel traded in phase {phase}"
        phase, slowest = load.slowest()
        assert slowest < NEVER_BLOCKED_S, f"a kernel call took {slowest * 1e3:.0f} ms ({phase})"
