"""ExecutionKernel: the kernel with its venue, journal, projection and control."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from dita.contracts import (
    KernelDiagnosticCode,
    KernelIntent,
    TradeStage,
    VenueEvent,
)
from dita.control import ControlUpdate, KernelControlSnapshot
from dita.enums import KernelVerbosity
from dita.journal import FileJournal, MemoryJournal, read_journal
from dita.kernel import ExecutionKernel
from dita.projection import InMemoryProjection
from dita.venue import MockVenueAdapter, SilentVenue


def enter(slot_id: int, trade_id: str, **kw: Any) -> KernelIntent:
    fields: dict[str, Any] = {"asset": "BTC", "side": "LONG", "target_size": 2.0, "reference_price": 100.0}
    fields.update(kw)
    return KernelIntent(
        action="ENTER", slot_id=slot_id, trade_id=trade_id, intent_id=f"{trade_id}/in", **fields
    )


def exit_(slot_id: int, **kw: Any) -> KernelIntent:
    return KernelIntent(action="EXIT", slot_id=slot_id, reference_price=110.0, **kw)


def test_a_trade_from_entry_to_close_against_the_mock_venue() -> None:
    kernel = ExecutionKernel(max_slots=4, venue=MockVenueAdapter(partial_fills=2, seed=3))
    kernel.set_exchange_config({"taker_rate": 0.001})
    out = kernel.process_intent(enter(0, "t1", exit_leg_ratios=(0.5, 0.5)))
    assert out.accepted and out.state == TradeStage.POSITION_OPEN
    triggers = [t.trigger for t in out.transitions]
    assert triggers[:2] == ["ENTER", "SUBMITTED"] and triggers.count("PARTIAL_FILL") >= 1
    assert len(out.emitted_events) >= 3, "ack and two partial fills came back from the venue"
    assert kernel.slot(0).size == pytest.approx(2.0)
    first = kernel.process_intent(exit_(0))
    assert first.state == TradeStage.POSITION_OPEN and kernel.slot(0).size == pytest.approx(1.0)
    last = kernel.process_intent(exit_(0, reason="take profit"))
    assert last.state == TradeStage.CLOSED
    slot = kernel.slot(0)
    assert slot.closed and slot.close_reason == "take profit"
    assert slot.realized_pnl == pytest.approx(20.0)
    account = kernel.account
    assert account["k_realized_pnl"] == pytest.approx(20.0)
    assert account["k_fees_paid"] == pytest.approx(0.001 * (2 * 100 + 2 * 110))
    assert kernel.free_slot() is not None and kernel.free_slot().slot_id == 0  # type: ignore[union-attr]


def test_venue_rejects_and_rate_limits_come_back_as_outcomes() -> None:
    kernel = ExecutionKernel(max_slots=2, venue=MockVenueAdapter(script=["reject", "rate_limit"]))
    rejected = kernel.process_intent(enter(0, "r"))
    assert rejected.accepted and rejected.state == TradeStage.CLOSED
    assert kernel.slot(0).close_reason == "REJECTED"
    limited = kernel.process_intent(enter(1, "l"))
    assert not limited.accepted
    assert limited.diagnostic_code == KernelDiagnosticCode.RATE_LIMITED
    assert limited.details["retryable"] is True and "retry_after_ms" in limited.details
    assert kernel.slot(1).fsm_state == TradeStage.IDLE, "rolled back to before the intent"
    assert "l" not in kernel.state.active_trade_index


def test_cancel_goes_to_the_venue_and_closes_an_unfilled_entry() -> None:
    venue = MockVenueAdapter(auto_fill=False)
    kernel = ExecutionKernel(max_slots=1, venue=venue)
    assert kernel.process_intent(enter(0, "c")).state == TradeStage.ENTRY_WORKING
    out = kernel.process_intent(KernelIntent(action="CANCEL", slot_id=0, reason="stale"))
    assert out.state == TradeStage.CLOSED and kernel.slot(0).close_reason == "CANCELLED"


def test_events_delivered_later_and_twice_apply_once() -> None:
    kernel = ExecutionKernel(max_slots=1, venue=SilentVenue())
    out = kernel.process_intent(enter(0, "a"))
    assert out.state == TradeStage.ORDER_SENT
    order = out.order
    assert order is not None
    fill = VenueEvent(event_id="f1", kind="FILL", venue_client_id=order.venue_client_id, price=99.0, size=2.0)
    assert kernel.on_venue_event(fill).state == TradeStage.POSITION_OPEN
    again = kernel.on_venue_event(fill)
    assert again.diagnostic_code == KernelDiagnosticCode.DUPLICATE_EVENT and not again.accepted
    assert kernel.slot(0).size == 2.0


def test_control_gates_intents_and_is_recorded_on_transitions() -> None:
    kernel = ExecutionKernel(max_slots=2, venue=MockVenueAdapter())
    kernel.process_intent(enter(0, "a"))
    applied = kernel.update_control(ControlUpdate(mode="REDUCE_ONLY", reason="drill", author="ops"))
    assert applied.mode == "REDUCE_ONLY" and applied.rev == 1
    blocked = kernel.process_intent(enter(1, "b"))
    assert blocked.diagnostic_code == KernelDiagnosticCode.MODE_BLOCKED
    out = kernel.process_intent(exit_(0))
    assert out.accepted and {t.control_mode for t in out.transitions} == {"REDUCE_ONLY"}
    kernel.update_control(ControlUpdate(mode="HALTED"))
    assert kernel.process_intent(exit_(0)).diagnostic_code == KernelDiagnosticCode.MODE_BLOCKED


@pytest.mark.parametrize(
    ("update", "match"),
    [
        (ControlUpdate(mode="PAUSED"), "mode"),
        (ControlUpdate(verbosity="LOUD"), "verbosity"),
        (ControlUpdate(journal="yes"), "journal"),  # type: ignore[arg-type]
        (ControlUpdate(extra={"speed": 3}), "speed"),
    ],
)
def test_a_bad_control_update_changes_nothing(update: ControlUpdate, match: str) -> None:
    kernel = ExecutionKernel(max_slots=1, venue=SilentVenue())
    before = kernel.control
    with pytest.raises((TypeError, ValueError), match=match):
        kernel.update_control(update)
    assert kernel.control == before
    assert kernel.process_intent(enter(0, "a")).accepted


def test_the_journal_records_transitions_only_when_switched_on(tmp_path: Any) -> None:
    memory = MemoryJournal()
    kernel = ExecutionKernel(max_slots=1, venue=MockVenueAdapter(), journal=memory)
    kernel.process_intent(enter(0, "a"))
    assert len(memory) == 0
    kernel.update_control(ControlUpdate(journal=True, verbosity="TRACE"))
    kernel.process_intent(exit_(0))
    entries = memory.entries()
    assert entries and all(e["control"]["verbosity"] == "TRACE" for e in entries)
    assert entries[0]["intent"]["action"] == "EXIT" and entries[0]["slot"] is not None
    msgpack.packb(entries)  # plain data, storable as is

    path = tmp_path / "journal.msgpack"
    kernel = ExecutionKernel(
        max_slots=1,
        venue=MockVenueAdapter(),
        journal=FileJournal(path),
        control=KernelControlSnapshot(journal=True, verbosity=KernelVerbosity.QUIET),
    )
    kernel.process_intent(enter(0, "b"))
    kernel.close()
    records = list(read_journal(path))
    assert [r["transition"]["trigger"] for r in records][:2] == ["ENTER", "SUBMITTED"]
    assert all(r["slot"] is None for r in records), "QUIET journals carry transitions only"


def test_the_in_memory_projection_mirrors_slots_and_account() -> None:
    projection = InMemoryProjection()
    a = ExecutionKernel(max_slots=2, kernel_id="a", venue=MockVenueAdapter(), projection=projection)
    b = ExecutionKernel(max_slots=2, kernel_id="b", venue=MockVenueAdapter(), projection=projection)
    a.process_intent(enter(1, "x"))
    b.mark_price("BTC", 1.0)
    doc = projection.slot("a", 1)
    assert doc is not None and doc["fsm_state"] == "POSITION_OPEN" and doc["kernel_id"] == "a"
    assert doc["version"] == a.slot(1).version
    assert projection.slot("b", 1)["fsm_state"] == "IDLE"  # type: ignore[index]
    assert len(projection.kernel_slots("a")) == 2 and len(projection.kernel_slots("b")) == 2
    assert projection.account("a")["open_positions"] == 1  # type: ignore[index]
    a.close()
    assert projection.status("a")["state"] == "STOPPED"  # type: ignore[index]


def test_write_through_views_and_index_views() -> None:
    kernel = ExecutionKernel(max_slots=2, venue=MockVenueAdapter())
    kernel.process_intent(enter(0, "a"))
    view = kernel.slot(0)
    assert view.trade_id == "a" and view.is_open()
    view.metadata = {"note": "checked by ops"}
    assert kernel.slot(0).metadata == {"note": "checked by ops"}
    with pytest.raises(ValueError, match="size"):
        view.size = -1.0
    assert kernel.slot(0).size == 2.0
    assert kernel.state.active_trade_index == {"a": 0}
    assert list(kernel.state.client_order_index.values()) == [0]
    with pytest.raises(IndexError):
        kernel.slot(2)


def test_checkpoint_and_restore_give_the_same_kernel() -> None:
    kernel = ExecutionKernel(max_slots=3, venue=MockVenueAdapter(partial_fills=3))
    kernel.set_seed_capital(1_000.0)
    kernel.process_intent(enter(0, "a"))
    kernel.process_intent(enter(2, "b", side="SHORT"))
    kernel.mark_price("BTC", 90.0)
    kernel.update_control(ControlUpdate(mode="REDUCE_ONLY"))
    restored = ExecutionKernel.from_checkpoint(kernel.checkpoint(), venue=MockVenueAdapter())
    mine, theirs = kernel.snapshot(), restored.snapshot()
    for snap in (mine, theirs):
        snap.pop("kernel_id")
        snap["control"].pop("source")
        snap["control"].pop("rev")
    assert mine == theirs
    assert restored.control.mode == "REDUCE_ONLY"


def test_reconcile_from_slots_replaces_state() -> None:
    source = ExecutionKernel(max_slots=3, venue=MockVenueAdapter())
    source.process_intent(enter(1, "a"))
    target = ExecutionKernel(max_slots=3, venue=MockVenueAdapter())
    out = target.reconcile_from_slots([s for s in source.slots() if not s.is_free()])
    assert out.accepted
    assert target.slot(1).trade_id == "a" and target.state.active_trade_index == {"a": 1}
    assert target.process_intent(exit_(1)).accepted
