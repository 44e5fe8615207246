"""Drill: the Hazelcast member is killed (SIGKILL) under steady load and started again.

The kernel trades on through the outage without waiting for the cluster
(every call is timed before, during and after it), and once a member
answers again (a new, empty one: a killed member keeps nothing) the maps
hold exactly the kernel's state, versions included. Some slots hold a
position nobody touches: their documents come back only because the
projection writes every key anew when it meets a new cluster.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

import pytest

from dita.cluster.local_member import LocalMember, find_free_port
from dita.kernel import ExecutionKernel
from dita.projection.base import KERNELS_MAP
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

TRADING = range(12)
STILL = [12, 13, 14, 15]


def test_a_member_killed_under_load_loses_nothing_once_it_is_back(tmp_path: Path) -> None:
    require_java()
    name = f"drill-kill-{uuid.uuid4().hex[:8]}"
    member = LocalMember(
        port=find_free_port(), cluster_name=name, log_file=tmp_path / "member.log", log=lambda _line: None,
    )  # fmt: skip
    with contextlib.ExitStack() as cleanup:
        member.start(timeout=180)
        cleanup.callback(member.stop)
        client = connect([member.address], name)
        cleanup.callback(client.shutdown)
        projection = HazelcastProjection(client)
        cleanup.callback(projection.close)
        kernel = ExecutionKernel(
            max_slots=len(TRADING) + len(STILL), kernel_id="drill-member-killed",
            venue=MockVenueAdapter(partial_fills=2), projection=projection,
        )  # fmt: skip
        kernel.set_seed_capital(10_000.0)
        kernel.set_exchange_config({"taker_rate": 0.0005, "maker_rate": 0.0002, "lot_step": 0.001})
        listener = kernel.control_listener  # the kernel listens by itself once attached
        cleanup.callback(kernel.close)
        assert listener.connected_at_start

        load = SteadyLoad(kernel, slot_ids=TRADING)
        load.hold(STILL)
        load.start()
        with contextlib.ExitStack() as running:
            running.callback(load.stop)
            load.wait_calls("before", 3_000)
            wait_until(lambda: projection.stats()["writes"] > 0, timeout=10)

            load.phase("outage")
            member.kill()
            wait_until(lambda: not projection.connected, timeout=30)
            load.wait_calls("outage", 3_000)
            assert projection.backlog() <= kernel.max_slots + 1, "at most one pending document per key"
            # Timed apart: the member's JVM starting takes CPU from the kernel too.
            load.phase("restarting")
            member.start(timeout=180)  # the same address, an empty member
            wait_until(lambda: projection.connected, timeout=60)

            load.phase("after")
            # The projection noticed a new cluster and wrote every key anew.
            wait_until(lambda: projection.stats()["resyncs"] == 1, timeout=30)
            load.wait_calls("after", 2_000)

        projection.flush(10.0)
        reader = connect([member.address], name)
        cleanup.callback(reader.shutdown)
        assert_maps_equal_kernel(reader, kernel)
        kernels = reader.get_map(KERNELS_MAP).blocking()
        # The kernel's dita.kernels entry is back too (it lives only while the kernel beats).
        wait_until(lambda: (kernels.get(kernel.kernel_id) or "") != "", timeout=10)
        assert json.loads(kernels.get(kernel.kernel_id).to_string())["state"] == "RUNNING"

        print()
        print(load.report("member killed under load"))
        print(f"  projection: {projection.stats_dict()}")
        for phase in ("before", "outage", "restarting", "after"):
            assert load.phases[phase].codes["OK"] > 0, f"the kernel traded in phase {phase}"
        phase, slowest = load.slowest()
        assert slowest < NEVER_BLOCKED_S, f"a kernel call took {slowest * 1e3:.0f} ms ({phase})"
