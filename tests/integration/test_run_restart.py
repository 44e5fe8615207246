"""`dita run` as an operator runs it: live against a real member, steered,
stopped cleanly, and started again from its checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dita._native import Kernel
from dita.checkpoint import RunCheckpoint
from dita.controlplane.operator import ControlOperator
from dita.projection.reader import ProjectionReader
from dita.projection.recovery import slot_from_document
from tests.conftest import Cluster, reset_control, wait_until

pytestmark = pytest.mark.hazelcast


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = cluster.client()
    # Other tests leave global entries behind; this kernel must start ACTIVE.
    reset_control(c)
    yield c
    c.shutdown()


def dita(cluster: Cluster, *args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "DITA_HAZELCAST": ",".join(cluster.members), "DITA_CLUSTER": cluster.cluster_name}
    return subprocess.Popen(
        [sys.executable, "-m", "dita.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def finish(process: subprocess.Popen[str], timeout: float = 90) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return out


def kernel_state(core: Kernel) -> dict[str, Any]:
    """What a trader would call the kernel's state: every slot and the account's figures.
    Versions are left out: a restart lifts them above what the store holds."""
    slots = []
    for i in range(core.max_slots):
        slot = core.slot(i).to_dict()
        slot.pop("version")
        slots.append(slot)
    account = {k: v for k, v in core.account().items() if k != "version"}
    return {"slots": slots, "account": account, "mode": core.mode.value}


def test_a_run_steered_live_stops_cleanly_and_resumes_in_the_state_it_stopped_in(
    cluster: Cluster, client: Any, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "k.checkpoint"
    kid = "run-restart-1"
    reader = ProjectionReader(client)
    first = dita(
        cluster,
        "run",
        "--kernel-id", kid, "--slots", "8", "--steps", "0", "--interval", "0.005",
        "--checkpoint", str(checkpoint), "--checkpoint-every", "0.5",
    )  # fmt: skip
    try:
        wait_until(lambda: (reader.kernel(kid) or {}).get("state") == "RUNNING", timeout=60)
        wait_until(lambda: (reader.account(kid) or {}).get("realized_pnl", 0) != 0, timeout=60)
        result = ControlOperator(client).set(
            kernel_id=kid, mode="REDUCE_ONLY", reason="restart test", wait=True, timeout=20
        )
        assert result.applied and not result.missing
        wait_until(checkpoint.exists, timeout=30)
    finally:
        first.send_signal(signal.SIGTERM)
    out = finish(first)
    assert "checkpoint: " in out

    stopped = RunCheckpoint.read(checkpoint)
    assert stopped.kernel_id == kid
    state = kernel_state(Kernel.restore(stopped.kernel))
    assert state["mode"] == "REDUCE_ONLY"
    assert (reader.kernel(kid) or {})["state"] == "STOPPED"
    projected = {d["slot_id"]: slot_from_document(d) for d in reader.slots(kid)}
    for slot in state["slots"]:
        shown = projected[slot["slot_id"]]
        shown.pop("version")
        assert shown == slot, "the flushed projection equals the final checkpoint"

    again = dita(
        cluster,
        "run", "--resume", "--checkpoint", str(checkpoint), "--steps", "0", "--duration", "0",
    )  # fmt: skip
    out = finish(again)
    assert f"resuming kernel {kid}" in out and "newer than the checkpoint: slots none" in out
    resumed = RunCheckpoint.read(checkpoint)
    assert resumed.session == stopped.session + 1
    assert kernel_state(Kernel.restore(resumed.kernel)) == state
    ControlOperator(client).clear(kid, reason="restart test done")


def test_resume_refuses_a_checkpoint_of_another_kernel_and_changes_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "k.checkpoint"
    finish(
        dita(cluster, "run", "--kernel-id", "run-restart-2", "--steps", "50", "--checkpoint", str(checkpoint))
    )
    before = checkpoint.read_bytes()
    wrong = dita(
        cluster, "run", "--resume", "--checkpoint", str(checkpoint), "--kernel-id", "someone-else",
    )  # fmt: skip
    out, _ = wrong.communicate(timeout=60)
    assert wrong.returncode == 2
    assert out.strip() == (
        f"dita: error: --kernel-id someone-else: the checkpoint at {checkpoint} is kernel run-restart-2"
    )
    assert checkpoint.read_bytes() == before
