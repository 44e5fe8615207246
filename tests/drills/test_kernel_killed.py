"""Drill: the kernel process is killed (SIGKILL) mid-run and started again.

Between two checkpoints the kernel goes on trading and publishing, so when
it dies the cluster holds a later state than its checkpoint. When that state
is whole, the restart must come back with everything the cluster saw (no
fill lost); when the kill tore it (a batch in flight), exactly with its
checkpoint, saying so. Either way it counts nothing twice and trades on
without reusing an id its dead predecessor minted.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dita._native import Kernel
from dita.checkpoint import RunCheckpoint
from dita.projection.reader import ProjectionReader
from dita.projection.recovery import slot_from_document
from tests.conftest import Cluster, reset_control, wait_until
from tests.integration.test_run_restart import dita, finish

pytestmark = pytest.mark.hazelcast

K_FIGURES = ("k_realized_pnl", "k_fees_paid", "k_funding_net", "k_capital", "event_seq")


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = cluster.client()
    reset_control(c)
    yield c
    c.shutdown()


def test_a_killed_kernel_restarts_with_every_projected_fill_once(
    cluster: Cluster, client: Any, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "k.checkpoint"
    kid = "killed-1"
    reader = ProjectionReader(client)
    victim = dita(
        cluster,
        "run",
        "--kernel-id", kid, "--slots", "8", "--steps", "0", "--interval", "0.002",
        "--checkpoint", str(checkpoint), "--checkpoint-every", "3",
    )  # fmt: skip
    try:
        wait_until(checkpoint.exists, timeout=90)
        # Killed well inside the next checkpoint interval: the cluster is ahead.
        written = checkpoint.stat().st_mtime
        time.sleep(1.0)
        assert checkpoint.stat().st_mtime == written, "no checkpoint between the two reads"
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    before = RunCheckpoint.read(checkpoint)
    core = Kernel.restore(before.kernel)
    seen = {d["slot_id"]: d for d in reader.slots(kid)}
    seen_account = reader.account(kid)
    assert seen_account is not None and len(seen) == 8
    ahead = [i for i, d in seen.items() if d["version"] > core.slot(i).to_dict()["version"]]
    assert ahead, "the drill needs a cluster ahead of the checkpoint"

    resume = ("run", "--resume", "--checkpoint", str(checkpoint))
    out = finish(dita(cluster, *resume, "--steps", "0", "--duration", "0"))
    assert f"resuming kernel {kid}" in out
    restored = Kernel.restore(RunCheckpoint.read(checkpoint).kernel)
    # The kill may land while the writer has a batch in flight: then the maps hold a torn
    # set (slots of one moment, the account of another), which the resume must refuse
    # whole and say so, resuming from the checkpoint; a whole set it must take whole.
    torn = "torn" in out
    if torn:
        assert "nothing adopted" in out and "the checkpoint stands" in out, out
        ahead = []
        seen_account = core.account()
    else:
        assert "newer than the checkpoint: slots" in out, out

    for i in range(8):
        now = restored.slot(i).to_dict()
        assert now["version"] >= seen[i]["version"], "versions readers saw only grow"
        expected = slot_from_document(seen[i]) if i in ahead else core.slot(i).to_dict()
        for field in ("trade_id", "fsm_state", "size", "initial_size", "entry_price", "realized_pnl"):
            assert now[field] == expected[field], (i, field)
        # Every fill event the cluster saw is on the slot, once.
        assert sorted(now["seen_event_ids"]) == sorted(expected["seen_event_ids"])
        assert len(set(now["seen_event_ids"])) == len(now["seen_event_ids"])
    account = restored.account()
    source = seen_account if seen_account["version"] > core.account()["version"] else core.account()
    assert {k: account[k] for k in K_FIGURES} == {k: source[k] for k in K_FIGURES}

    # Trading on: the venue and strategy of the new life mint ids the old one never did.
    out = finish(dita(cluster, *resume, "--steps", "300", "--json"))
    codes = json.loads(out.strip().splitlines()[-1])["codes"]
    assert codes.get("OK", 0) > 0
    assert not {"DUPLICATE_EVENT", "UNKNOWN_ORDER", "OVERFILL", "INVALID_TRANSITION", "SLOT_BUSY"} & set(
        codes
    )
