"""The kill switch and flatten on the kernel itself: what a HALT does to working orders."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from dita.contracts import KernelIntent, VenueEvent, VenueOrder
from dita.control import KernelControlSnapshot
from dita.enums import KernelMode
from dita.kernel import ExecutionKernel
from dita.venue import MockVenueAdapter


def enter(kernel: ExecutionKernel, slot: int) -> Any:
    return kernel.process_intent(
        KernelIntent(
            action="ENTER",
            slot_id=slot,
            trade_id=f"t{slot}",
            asset="BTC",
            side="LONG",
            target_size=1.0,
            reference_price=100.0,
        )
    )


def halt(kernel: ExecutionKernel) -> None:
    kernel.apply_control(KernelControlSnapshot(mode=KernelMode.HALTED, source="test"))


class SlowVenue:
    """A venue whose submit takes as long as the test says; it records what happened in order."""

    def __init__(self) -> None:
        self.in_submit = threading.Event()
        self.release = threading.Event()
        self.log: list[tuple[str, str]] = []

    def submit(self, intent: KernelIntent, order: VenueOrder) -> Sequence[VenueEvent]:
        self.in_submit.set()
        assert self.release.wait(5), "the test never released the submit"
        self.log.append(("submit", order.venue_client_id))
        return ()

    def cancel(self, order: VenueOrder, reason: str = "") -> Sequence[VenueEvent]:
        self.log.append(("cancel", order.venue_client_id))
        return ()


class FailingCancelVenue(MockVenueAdapter):
    """A venue that refuses to cancel one order with an exception (a venue adapter's network error)."""

    def __init__(self, refused: str) -> None:
        super().__init__(auto_fill=False)
        self.refused = refused

    def cancel(self, order: VenueOrder, reason: str = "") -> list[VenueEvent]:
        if order.internal_trade_id == self.refused:
            raise ConnectionError("venue did not answer")
        return super().cancel(order, reason)


def test_a_halt_cancels_entries_and_exits_and_one_failure_does_not_stop_the_rest() -> None:
    venue = FailingCancelVenue(refused="t2")
    kernel = ExecutionKernel(max_slots=4, venue=venue)
    for slot in range(3):
        assert enter(kernel, slot).accepted
    order = kernel.slot(0).snapshot().active_entry_order
    assert order is not None
    for event in venue.fill(order.venue_client_id):
        kernel.on_venue_event(event)
    exit_leg = kernel.process_intent(KernelIntent(action="EXIT", slot_id=0, trade_id="t0", target_size=1.0))
    assert exit_leg.accepted
    halt(kernel)
    result = kernel.cancel_working_orders("kill switch test")
    assert result["cancels_sent"] == 2
    assert result["failed"] == [{"slot_id": 2, "why": "ConnectionError: venue did not answer"}]
    assert [kernel.slot(i).snapshot().fsm_state for i in range(3)] == [
        "POSITION_OPEN",
        "CLOSED",
        "ENTRY_WORKING",
    ]
    assert result["working"] == 1 and result["cancelling"] == 0


def test_an_order_being_handed_to_the_venue_is_cancelled_after_the_venue_has_it() -> None:
    venue = SlowVenue()
    kernel = ExecutionKernel(max_slots=2, venue=venue)
    strategy = threading.Thread(target=enter, args=(kernel, 0))
    strategy.start()
    assert venue.in_submit.wait(5)
    halt(kernel)  # the operator's HALT lands while the ENTER is at the venue
    results: list[dict[str, Any]] = []
    kill = threading.Thread(target=lambda: results.append(kernel.cancel_working_orders("kill")))
    kill.start()
    kill.join(0.2)
    assert kill.is_alive(), "the kill switch waits for the order to reach the venue"
    venue.release.set()
    strategy.join(5)
    kill.join(5)
    order_id = kernel.slot(0).snapshot().active_entry_order.venue_client_id  # type: ignore[union-attr]
    assert venue.log == [("submit", order_id), ("cancel", order_id)]
    assert results[0]["cancels_sent"] == 1 and results[0]["cancelling"] == 1


def test_flatten_closes_positions_at_market_while_halted_and_stays_halted() -> None:
    venue = MockVenueAdapter(auto_fill=False)
    kernel = ExecutionKernel(max_slots=2, venue=venue)
    assert enter(kernel, 0).accepted
    order = kernel.slot(0).snapshot().active_entry_order
    assert order is not None
    for event in venue.fill(order.venue_client_id):
        kernel.on_venue_event(event)
    halt(kernel)
    assert kernel.flatten("flatten test") == {"exits_sent": 1, "failed": []}
    exit_order = kernel.slot(0).snapshot().active_exit_order
    assert exit_order is not None and exit_order.order_type == "MARKET" and exit_order.intended_size == 1.0
    assert kernel.control.mode == "HALTED"
    assert not enter(kernel, 1).accepted
