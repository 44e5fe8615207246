"""The control plane against a real member: operators flip kernels through map entries."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from dita.contracts import KernelDiagnosticCode, KernelIntent
from dita.control import KernelControlSnapshot
from dita.controlplane.listener import ControlListener
from dita.controlplane.operator import ControlOperator
from dita.enums import KernelMode
from dita.kernel import ExecutionKernel
from dita.projection.hazelcast import HazelcastProjection
from dita.venue import SilentVenue
from tests.conftest import Cluster, reset_control, wait_until

pytestmark = pytest.mark.hazelcast


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = cluster.client()
    reset_control(c)
    yield c
    reset_control(c)
    c.shutdown()


def refusals_reach(node: Node, count: int) -> bool:
    return node.listener.refusals == count


class Node:
    """A kernel wired as in production: projection and control listener on its own client."""

    def __init__(self, cluster: Cluster, kernel_id: str, control_key: bytes | None = None) -> None:
        self.client = cluster.client()
        self.projection = HazelcastProjection(self.client)
        self.kernel = ExecutionKernel(
            max_slots=2,
            kernel_id=kernel_id,
            venue=SilentVenue(),
            projection=self.projection,
            control_key=control_key,
        )
        self.listener: ControlListener = self.kernel.control_listener
        assert self.listener.connected_at_start

    def enter(self, slot: int = 0) -> Any:
        return self.kernel.process_intent(
            KernelIntent(
                action="ENTER",
                slot_id=slot,
                trade_id=f"t{time.time_ns()}",
                asset="BTC",
                side="LONG",
                target_size=1.0,
            )
        )

    def close(self) -> None:
        self.kernel.close()
        self.projection.close()
        self.client.shutdown()


def test_a_global_flip_reaches_every_kernel_and_overrides_fall_back(cluster: Cluster, client: Any) -> None:
    nodes = [Node(cluster, f"cp-{i}") for i in range(3)]
    try:
        operator = ControlOperator(client, author="test")
        result = operator.set(mode="HALTED", reason="global halt", wait=True, timeout=10)
        assert sorted(result.applied) == ["cp-0", "cp-1", "cp-2"] and not result.missing
        for node in nodes:
            assert node.kernel.control.mode == "HALTED"
            assert node.enter().diagnostic_code == KernelDiagnosticCode.MODE_BLOCKED
        operator.set(kernel_id="cp-1", mode="ACTIVE", reason="let one trade", wait=True)
        assert [n.kernel.control.mode for n in nodes] == ["HALTED", "ACTIVE", "HALTED"]
        assert nodes[1].enter().accepted
        operator.clear("cp-1", reason="done")
        wait_until(lambda: nodes[1].kernel.control.mode == "HALTED")
        shown = operator.show()
        assert shown["global"]["mode"] == "HALTED" and shown["overrides"] == {}
        kinds = [r["kind"] for r in operator.history()]
        assert "WRITE" in kinds and "CLEAR" in kinds and "APPLIED" in kinds
    finally:
        for node in nodes:
            node.close()


def test_malformed_entries_are_refused_reported_and_change_nothing(cluster: Cluster, client: Any) -> None:
    from hazelcast.core import HazelcastJsonValue

    node = Node(cluster, "cp-bad")
    try:
        operator = ControlOperator(client)
        operator.set(mode="REDUCE_ONLY", reason="baseline", wait=True)
        control = client.get_map("dita.control").blocking()
        for bad in [
            '{"mode": "PAUSED", "rev": 99}',
            '{"mode": "HALTED", "rev": 1}',
            "not json",
            '{"mode": "HALTED", "rev": 100, "colour": "red"}',
        ]:
            expected = node.listener.refusals + 1
            control.put("global", HazelcastJsonValue(bad) if bad.startswith("{") else bad)
            wait_until(partial(refusals_reach, node, expected))
        assert node.listener.refusals == 4
        assert node.kernel.control.mode == "REDUCE_ONLY"
        wait_until(
            lambda: (
                "colour"
                in json.dumps(
                    json.loads(client.get_map("dita.kernels").blocking().get("cp-bad").to_string())[
                        "control_report"
                    ]["last_refusal"]
                )
            )
        )
    finally:
        node.close()


def test_signed_control_refuses_unsigned_writes(cluster: Cluster, client: Any) -> None:
    key = b"shared-secret-for-tests"
    node = Node(cluster, "cp-signed", control_key=key)
    try:
        ControlOperator(client, author="intruder").set(mode="ACTIVE", reason="unsigned")
        wait_until(lambda: node.listener.refusals >= 1)
        assert "unsigned" in node.listener.last_refusal["reason"]  # type: ignore[index]
        result = ControlOperator(client, control_key=key).set(mode="HALTED", reason="signed", wait=True)
        assert result.applied == ["cp-signed"] and node.kernel.control.mode == "HALTED"
    finally:
        node.close()


def test_flips_made_while_the_member_is_down_are_applied_after_it_returns(cluster: Cluster) -> None:
    if cluster.member is None:
        pytest.skip("the cluster is not ours to stop")
    node = Node(cluster, "cp-outage")
    try:
        cluster.member.stop()
        wait_until(lambda: not node.projection.connected, timeout=30)
        cluster.member.start(timeout=180)
        operator_client = cluster.client()
        try:
            # The restarted member is empty and the kernel's client is still backing off:
            # these writes happen while the kernel is cut off, and no event of them reaches it.
            operator = ControlOperator(operator_client)
            operator.set(mode="REDUCE_ONLY", reason="first flip while cut off")
            operator.set(verbosity="TRACE", reason="second flip while cut off")
            operator.set(kernel_id="cp-outage", mode="HALTED", reason="third flip while cut off")
            wait_until(lambda: node.kernel.control.mode == "HALTED", timeout=60)
            wait_until(lambda: node.kernel.control.verbosity == "TRACE", timeout=10)
        finally:
            operator_client.shutdown()
    finally:
        node.close()


def test_a_kernel_that_cannot_reach_the_cluster_runs_in_its_start_mode() -> None:
    from dita.cluster.local_member import find_free_port
    from dita.projection.hazelcast import ProjectionError, connect

    with pytest.raises(ProjectionError):
        connect([f"127.0.0.1:{find_free_port()}"], "gone", connect_timeout=1.0)
    kernel = ExecutionKernel(
        max_slots=1,
        venue=SilentVenue(),
        control=KernelControlSnapshot(mode=KernelMode.REDUCE_ONLY, source="start"),
    )
    assert kernel.control.mode == "REDUCE_ONLY"


def test_two_operators_at_once_both_land_in_the_history_and_one_wins_whole(
    cluster: Cluster, client: Any
) -> None:
    import threading

    clients = [cluster.client(), cluster.client()]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def write(i: int, mode: str) -> None:
        operator = ControlOperator(clients[i], author=f"operator-{i}")
        barrier.wait()
        results[i] = operator.set(mode=mode, verbosity="VERBOSE" if i else "QUIET", reason=f"race {i}")

    threads = [
        threading.Thread(target=write, args=(0, "HALTED")),
        threading.Thread(target=write, args=(1, "ACTIVE")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        final = json.loads(client.get_map("dita.control").blocking().get("global").to_string())
        assert final in [r.entry for r in results], "the final entry is one operator's, whole"
        assert results[0].rev != results[1].rev
        writes = [
            h for h in ControlOperator(client).history(500) if h["kind"] == "WRITE" and "race" in h["reason"]
        ]
        assert {h["reason"] for h in writes} == {"race 0", "race 1"}
    finally:
        for c in clients:
            c.shutdown()


def test_kernel_processes_apply_a_flip_set_from_the_command_line(cluster: Cluster, client: Any) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "DITA_HAZELCAST": ",".join(cluster.members), "DITA_CLUSTER": cluster.cluster_name}
    kernels = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dita.cli",
                "run",
                "--kernel-id",
                f"proc-{i}",
                "--steps",
                "0",
                "--duration",
                "120",
                "--interval",
                "0.01",
                "--slots",
                "4",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(3)
    ]
    try:
        reader = client.get_map("dita.kernels").blocking()

        def running() -> set[str]:
            found = {
                str(k) for k, v in reader.entry_set() if json.loads(v.to_string()).get("state") == "RUNNING"
            }
            return found & {"proc-0", "proc-1", "proc-2"}

        wait_until(lambda: len(running()) == 3, timeout=60)
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "dita.cli",
                "control",
                "set",
                "--mode",
                "HALTED",
                "--reason",
                "cli drill",
                "--wait",
                "--timeout",
                "20",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "applied by" in cli.stdout and "NOT applied" not in cli.stdout
        shown = subprocess.run(
            [sys.executable, "-m", "dita.cli", "control", "show", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        table = json.loads(shown.stdout)
        assert all(table["kernels"][f"proc-{i}"]["control"]["mode"] == "HALTED" for i in range(3))
        bad = subprocess.run(
            [sys.executable, "-m", "dita.cli", "control", "set", "--mode", "PAUSED", "--reason", "typo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode != 0 and "PAUSED" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        for p in kernels:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=60)[0] for p in kernels]
    assert all(p.returncode == 0 for p in kernels), outputs
    stopped = {
        str(k): json.loads(v.to_string())["state"]
        for k, v in client.get_map("dita.kernels").blocking().entry_set()
    }
    assert all(stopped.get(f"proc-{i}") == "STOPPED" for i in range(3))
