"""Drill: operators flip control while one kernel's client is cut off from the cluster.

A TCP forwarder of the drill's own carries the kernel's client to a real
member; the operators' client reaches the member directly. Cutting the
forwarder (connections reset, reconnects refused) cuts the kernel off and
nobody else. Hazelcast never replays the entry events a client missed, so
the flips written meanwhile reach the kernel only through its listener
reading the whole control map again on reconnect: after the path is
restored the kernel must run the latest entry of every key and report
their revs in `dita.kernels`, having traded on throughout.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dita.cluster.local_member import LocalMember, find_free_port
from dita.controlplane.entries import GLOBAL_KEY, kernel_key
from dita.controlplane.operator import ControlOperator
from dita.journal import MemoryJournal
from dita.kernel import ExecutionKernel
from dita.projection.base import KERNELS_MAP
from dita.projection.hazelcast import HazelcastProjection, connect
from dita.venue import MockVenueAdapter
from tests.conftest import wait_until
from tests.drills.faults import (
    NEVER_BLOCKED_S,
    SteadyLoad,
    TcpForwarder,
    assert_maps_equal_kernel,
    require_java,
)

pytestmark = pytest.mark.hazelcast


def test_flips_made_while_a_kernel_is_cut_off_are_applied_when_it_reconnects(tmp_path: Path) -> None:
    require_java()
    name = f"drill-cut-{uuid.uuid4().hex[:8]}"
    kid = "drill-cut-off"
    with contextlib.ExitStack() as cleanup:
        port = find_free_port()
        forwarder = TcpForwarder(f"127.0.0.1:{port}").start()
        cleanup.callback(forwarder.close)
        member = LocalMember(
            port=port, cluster_name=name, log_file=tmp_path / "member.log", log=lambda _line: None,
            # A member tells clients where to reach it, and a client that lost its
            # connection tries that address first: this one names the forwarder,
            # as a member behind NAT names its public address, so the kernel's
            # client cannot go round the cut.
            jvm_options=[f"-Dhz.network.public-address={forwarder.address}"],
        )  # fmt: skip
        member.start(timeout=180)
        cleanup.callback(member.stop)

        client = connect([forwarder.address], name)
        cleanup.callback(client.shutdown)
        projection = HazelcastProjection(client)
        cleanup.callback(projection.close)
        journal = MemoryJournal()
        kernel = ExecutionKernel(
            max_slots=16, kernel_id=kid, venue=MockVenueAdapter(partial_fills=2), projection=projection,
            journal=journal,
        )  # fmt: skip
        listener = kernel.control_listener  # the kernel listens by itself once attached
        cleanup.callback(kernel.close)
        assert listener.connected_at_start
        operator_client = connect([member.address], name)
        cleanup.callback(operator_client.shutdown)
        operator = ControlOperator(operator_client, author="drill")

        load = SteadyLoad(kernel).start()
        with contextlib.ExitStack() as running:
            running.callback(load.stop)
            load.wait_calls("before", 3_000)
            baseline = operator.set(verbosity="QUIET", reason="drill: the path works", wait=True)
            assert baseline.applied == [kid], baseline

            load.phase("cut off")
            forwarder.sever()
            wait_until(lambda: not projection.connected, timeout=10)
            before_cut = kernel.control
            accepted = forwarder.accepted
            flips = [
                operator.set(mode="HALTED", reason="drill: cut off 1"),
                operator.set(kernel_id=kid, verbosity="VERBOSE", reason="drill: cut off 2"),
                operator.set(journal=True, reason="drill: cut off 3"),
                operator.set(mode="REDUCE_ONLY", reason="drill: cut off 4"),
                operator.set(kernel_id=kid, verbosity="TRACE", reason="drill: cut off 5"),
            ]
            load.wait_calls("cut off", 3_000)
            assert kernel.control == before_cut, "no flip reached the kernel while it was cut off"
            assert forwarder.accepted == accepted and not projection.connected, "the cut held"

            load.phase("restored")
            restored_at = time.monotonic()
            forwarder.restore()
            wait_until(lambda: projection.connected, timeout=60)
            reconnected_s = time.monotonic() - restored_at
            wait_until(lambda: kernel.control.mode == "REDUCE_ONLY", timeout=30)
            wait_until(lambda: kernel.control.verbosity == "TRACE" and kernel.control.journal, timeout=10)
            applied_s = time.monotonic() - restored_at
            load.phase("applied")
            load.wait_calls("applied", 2_000)

        latest = {GLOBAL_KEY: flips[3].rev, kernel_key(kid): flips[4].rev}
        assert listener.revs() == latest
        kernels = operator_client.get_map(KERNELS_MAP).blocking()

        def reported() -> dict[str, Any]:
            doc: dict[str, Any] = json.loads(kernels.get(kid).to_string())
            return doc

        wait_until(lambda: reported()["control_report"]["revs"] == latest, timeout=10)
        control = reported()["control"]
        assert (control["mode"], control["verbosity"], control["journal"]) == ("REDUCE_ONLY", "TRACE", True)
        applied = load.phases["applied"].codes
        assert applied["MODE_BLOCKED"] > 0, "ENTER refused once REDUCE_ONLY applied"
        journaled = [e for e in journal.entries() if "transition" in e]
        assert journaled and all(e["control"]["verbosity"] == "TRACE" for e in journaled)
        projection.flush(10.0)
        assert_maps_equal_kernel(operator_client, kernel)

        print()
        print(
            f"cut off: {len(flips)} flips written; path restored: client back after {reconnected_s:.2f} s, "
            f"latest flips applied after {applied_s:.2f} s; {forwarder.accepted} connections relayed"
        )
        print(load.report("operators flipping while a kernel is cut off"))
        print(f"  projection: {projection.stats_dict()}")
        for phase in ("before", "cut off"):
            assert load.phases[phase].codes["OK"] > 0, f"the kernel traded in phase {phase}"
        phase, slowest = load.slowest()
        assert slowest < NEVER_BLOCKED_S, f"a kernel call took {slowest * 1e3:.0f} ms ({phase})"
