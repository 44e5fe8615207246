"""Scenario files and run checkpoints: what `dita run --scenario/--checkpoint/--resume` reads."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from dita._native import Kernel
from dita.checkpoint import RunCheckpoint
from dita.demo import DemoStats, run_demo
from dita.kernel import ExecutionKernel
from dita.projection.recovery import cut_digest, reconcile_with_projections
from dita.scenario import ScenarioDriver, load_scenario, rehearse
from dita.venue import MockVenueAdapter, SilentVenue

SCENARIO = [
    {"seed_capital": 10_000},
    {"exchange_config": {"taker_rate": 0.0005}},
    {"intent": {"action": "ENTER", "slot_id": 0, "trade_id": "t1", "asset": "BTC", "side": "LONG",
                "target_size": 2.0, "reference_price": 100.0, "exit_leg_ratios": [1.0]}},
    {"venue_event": {"event_id": "e1", "kind": "ORDER_ACK", "venue_client_id": "t1-E1",
                     "venue_order_id": "V1"}},
    {"venue_event": {"event_id": "e2", "kind": "PARTIAL_FILL", "venue_client_id": "t1-E1", "price": 100.0,
                     "size": 1.0}},
    {"venue_event": {"event_id": "e2", "kind": "PARTIAL_FILL", "venue_client_id": "t1-E1", "price": 100.0,
                     "size": 1.0}},
    {"mark": {"asset": "BTC", "price": 110.0}},
]  # fmt: skip


def write(path: Path, records: Sequence[object], extra: str = "") -> Path:
    path.write_text("# a scenario\n" + "\n".join(json.dumps(r) for r in records) + "\n" + extra)
    return path


def entered(kernel: ExecutionKernel) -> str:
    """The client id the kernel gave the entry order (scenarios must use it)."""
    order = kernel.slot(0).snapshot().active_entry_order
    assert order is not None
    return order.venue_client_id


def test_a_scenario_replays_intents_events_and_marks(tmp_path: Path) -> None:
    probe = ExecutionKernel(max_slots=2, venue=SilentVenue())
    lines = load_scenario(write(tmp_path / "s.jsonl", SCENARIO[:3]))
    ScenarioDriver(probe, lines).step(DemoStats())
    for _ in range(2):
        ScenarioDriver(probe, lines[2:]).step(DemoStats())
    client_id = entered(probe)
    records = [json.loads(json.dumps(r).replace("t1-E1", client_id)) for r in SCENARIO]

    kernel = ExecutionKernel(max_slots=2, venue=SilentVenue())
    lines = load_scenario(write(tmp_path / "s.jsonl", records))
    stats = run_demo(kernel, steps=None, driver=ScenarioDriver(kernel, lines))
    slot = kernel.slot(0)
    assert (slot.size, slot.unrealized_pnl) == (1.0, 10.0)
    assert stats.codes["DUPLICATE_EVENT"] == 1, "the repeated event id changes nothing"
    assert kernel.account["seed_capital"] == 10_000


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 3: not JSON"),
        ('{"intent": {"action": "ENTER", "slot_id": "zero"}}', "slot_id"),
        ('{"intent": {"action": "JUMP", "slot_id": 0}}', "JUMP"),
        ('{"mark": {"asset": "BTC", "price": "high"}}', "mark.price = 'high'"),
        ('{"fill": {}}', "exactly one of intent, venue_event"),
        ('{"intent": {}, "mark": {}}', "exactly one of"),
        ('{"venue_event": {"event_id": "x", "kind": "TELEPORT"}}', "TELEPORT"),
    ],
)
def test_a_bad_scenario_line_is_named_and_nothing_runs(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(SCENARIO[0]) + "\n\n" + line + "\n")
    with pytest.raises(ValueError, match="line 3") as error:
        load_scenario(path)
    assert message in str(error.value)


def test_a_line_the_kernel_cannot_take_is_caught_before_the_real_kernel_sees_any(tmp_path: Path) -> None:
    kernel = ExecutionKernel(max_slots=2, venue=SilentVenue())
    before = kernel.checkpoint()
    path = write(
        tmp_path / "s.jsonl", [SCENARIO[0], {"account_event": {"kind": "WINDFALL", "event_id": "a"}}]
    )
    with pytest.raises(ValueError, match=r"scenario line 3 \(account_event\).*WINDFALL"):
        rehearse(kernel, load_scenario(path))
    assert kernel.checkpoint() == before


def test_the_cli_reports_a_bad_scenario_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"mark": {"asset": "BTC", "price": -1}}\n')
    run = subprocess.run(
        [sys.executable, "-m", "dita.cli", "run", "--no-local-member", "--scenario", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.strip() == (
        f"dita: error: scenario {path} line 1: mark.price = -1: must be a finite number greater than 0"
    )


def test_a_checkpoint_file_round_trips_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    kernel = ExecutionKernel(max_slots=3)
    run_demo(kernel, steps=20)
    path = tmp_path / "cp"
    RunCheckpoint("k", kernel.checkpoint(), session=4, strategy={"trades": 9}).write(path)
    back = RunCheckpoint.read(path)
    assert (back.kernel_id, back.session, back.strategy) == ("k", 4, {"trades": 9})
    assert Kernel.restore(back.kernel).checkpoint() == kernel.checkpoint()
    assert not (tmp_path / "cp.tmp").exists()
    (tmp_path / "other").write_bytes(kernel.checkpoint())
    with pytest.raises(ValueError, match="expected 'dita-run/1'"):
        RunCheckpoint.read(tmp_path / "other")
    (tmp_path / "junk").write_bytes(b"\xc1\xc1")
    with pytest.raises(ValueError, match="not a dita run checkpoint"):
        RunCheckpoint.read(tmp_path / "junk")


#: The key the kernels of these tests sign their documents with.
KEY = b"a test document key of 32 bytes."


def documents(kernel: ExecutionKernel) -> tuple[dict[str, str], str]:
    """Every slot and the account as the store gets them: exact texts, by key."""
    kernel.mark_all_changed()
    slots, account = kernel.drain_documents()
    assert account is not None
    return {key: doc for key, _, doc in slots}, account[1]


def signed(document: dict[str, Any]) -> str:
    """`document` as a kernel holding KEY would write it (see native/kernel/src/documents.rs)."""
    text = json.dumps({k: v for k, v in document.items() if k != "mac"}, separators=(",", ":"))
    mac = hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()
    return text[:-1] + f',"mac":"{mac}"}}'


def test_a_projection_newer_than_the_checkpoint_wins_key_by_key() -> None:
    kernel = ExecutionKernel(max_slots=4, venue=MockVenueAdapter(seed=3, partial_fills=2), document_key=KEY)
    run_demo(kernel, steps=20, seed=3)
    checkpointed = kernel.checkpoint()
    run_demo(kernel, steps=20, seed=4)
    slots, account = documents(kernel)

    core = Kernel.restore(checkpointed)
    recovery = reconcile_with_projections(core, slots, account, kernel_id=kernel.kernel_id, document_key=KEY)
    assert recovery.account_from_projection
    assert recovery.slots_from_projection
    assert core.account()["k_realized_pnl"] == kernel.account["k_realized_pnl"]
    for i in range(4):
        assert core.slot(i).to_dict() | {"version": 0} == kernel._core.slot(i).to_dict() | {"version": 0}


def test_a_projected_set_the_kernel_refuses_changes_nothing() -> None:
    kernel = ExecutionKernel(max_slots=2, document_key=KEY)
    run_demo(kernel, steps=10)
    kid = kernel.kernel_id
    slots, account = documents(kernel)
    core = Kernel.restore(kernel.checkpoint())
    before = core.checkpoint()
    # Signed and whole, so only the kernel's own checks stand in the way.
    slot0 = json.loads(slots[f"{kid}:0"]) | {"version": 10**9, "size": -5.0}
    forged = json.loads(account) | {"version": 10**9}
    forged["cut"]["digest"] = cut_digest([10**9, json.loads(slots[f"{kid}:1"])["version"]])
    maps = {f"{kid}:0": signed(slot0), f"{kid}:1": slots[f"{kid}:1"]}
    recovery = reconcile_with_projections(core, maps, signed(forged), kernel_id=kid, document_key=KEY)
    assert not recovery.adopted and "size" in recovery.not_adopted, recovery.describe()
    assert core.checkpoint() == before
    forged["cut"]["digest"] = cut_digest([json.loads(slots[f"{kid}:{i}"])["version"] for i in range(2)])
    forged["k_fees_paid"] = 1e300
    recovery = reconcile_with_projections(core, slots, signed(forged), kernel_id=kid, document_key=KEY)
    assert not recovery.adopted and "k_fees_paid" in recovery.not_adopted, recovery.describe()
    assert core.checkpoint() == before


def test_a_resumed_replay_goes_on_from_the_first_line_not_yet_applied(tmp_path: Path) -> None:
    lines = [{"seed_capital": 500}] + [
        {"intent": {"action": "ENTER", "slot_id": i, "trade_id": f"t{i}", "asset": "BTC", "side": "LONG",
                    "target_size": 1.0, "reference_price": 100.0}}
        for i in range(6)
    ]  # fmt: skip
    scenario = write(tmp_path / "s.jsonl", lines)
    checkpoint = tmp_path / "cp"
    common = [
        "run",
        "--no-local-member",
        "--scenario",
        str(scenario),
        "--checkpoint",
        str(checkpoint),
        "--json",
    ]

    def dita(*args: str) -> dict[str, object]:
        run = subprocess.run(
            [sys.executable, "-m", "dita.cli", *common, *args], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        summary: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
        return summary

    first = dita("--steps", "4", "--slots", "8")
    again = dita("--resume")
    assert (first["steps"], again["steps"]) == (4, 3)
    assert again["codes"] == {"OK": 3}, "no line is applied twice"
    restored = Kernel.restore(RunCheckpoint.read(checkpoint).kernel)
    assert [restored.slot(i).trade_id for i in range(6)] == [f"t{i}" for i in range(6)]
