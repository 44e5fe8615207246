"""The mock venue: scripted and random answers that the kernel applies correctly."""

from __future__ import annotations

from typing import Any

import pytest

from dita._native import Kernel
from dita.contracts import KernelIntent, TradeStage, VenueEvent, VenueOrder
from dita.kernel import ExecutionKernel
from dita.venue import MockVenueAdapter


def submit(
    kernel: Kernel, venue: MockVenueAdapter, slot: int, trade: str, size: float = 3.0
) -> list[VenueEvent]:
    intent = KernelIntent(
        action="ENTER",
        slot_id=slot,
        trade_id=trade,
        asset="BTC",
        side="LONG",
        target_size=size,
        reference_price=100.0,
    )
    out = kernel.process_intent(intent)
    assert out.accepted and out.order is not None
    kernel.submitted(out.slot_id)
    events = venue.submit(intent, out.order)
    for event in events:
        kernel.on_venue_event(event)
    return events


def test_scripted_answers_come_in_order_and_the_kernel_applies_them() -> None:
    venue = MockVenueAdapter(script=["fill", "partial:3", "reject", "expire", "rate_limit", "ack", "silent"])
    kernel = Kernel(7)
    kinds = [[e.kind.value for e in submit(kernel, venue, s, f"t{s}")] for s in range(7)]
    assert kinds == [
        ["ORDER_ACK", "FILL"],
        ["ORDER_ACK", "PARTIAL_FILL", "PARTIAL_FILL", "FILL"],
        ["REJECTED"],
        ["ORDER_ACK", "EXPIRED"],
        ["RATE_LIMITED"],
        ["ORDER_ACK"],
        [],
    ]
    states = [kernel.slot(s).fsm_state for s in range(7)]
    assert states == [
        TradeStage.POSITION_OPEN,
        TradeStage.POSITION_OPEN,
        TradeStage.CLOSED,
        TradeStage.CLOSED,
        TradeStage.IDLE,
        TradeStage.ENTRY_WORKING,
        TradeStage.ORDER_SENT,
    ]
    assert kernel.slot(1).size == pytest.approx(3.0)
    assert kernel.slot(2).close_reason == "REJECTED" and kernel.slot(3).close_reason == "EXPIRED"


def test_partial_fills_sum_exactly_to_the_order_and_never_beyond() -> None:
    venue = MockVenueAdapter(partial_fills=7)
    kernel = Kernel(1)
    events = submit(kernel, venue, 0, "p", size=1.0)
    fills = [e.size for e in events if e.kind in ("PARTIAL_FILL", "FILL")]
    assert len(fills) == 7 and sum(fills) == pytest.approx(1.0, abs=1e-15)
    assert kernel.slot(0).size == pytest.approx(1.0) and kernel.slot(0).fsm_state == TradeStage.POSITION_OPEN
    order = kernel.slot(0).active_entry_order
    assert order is not None
    with pytest.raises(KeyError):
        venue.fill(order.venue_client_id)


def test_resting_orders_are_worked_by_hand() -> None:
    venue = MockVenueAdapter(auto_fill=False)
    kernel = Kernel(1)
    submit(kernel, venue, 0, "r", size=2.0)
    order = kernel.slot(0).active_entry_order
    assert order is not None and kernel.slot(0).fsm_state == TradeStage.ENTRY_WORKING
    for event in venue.partial_fill(order.venue_client_id, 0.5, price=99.0):
        kernel.on_venue_event(event)
    for event in venue.fill(order.venue_client_id, qty=10.0, price=101.0):
        assert event.size == 1.5, "a fill is capped at what the order has left"
        kernel.on_venue_event(event)
    slot = kernel.slot(0)
    assert slot.size == 2.0 and slot.entry_price == pytest.approx((0.5 * 99 + 1.5 * 101) / 2)


def test_rates_are_deterministic_for_a_seed_and_roughly_honoured() -> None:
    def answers(seed: int) -> list[str]:
        venue = MockVenueAdapter(seed=seed, reject_rate=0.2, expire_rate=0.1, rate_limit_rate=0.1)
        kernel = Kernel(1)
        out = []
        for i in range(2000):
            events = submit(kernel, venue, 0, f"t{i}", size=1.0)
            out.append(events[-1].kind.value if events else "none")
            slot = kernel.slot(0)
            if slot.fsm_state == TradeStage.POSITION_OPEN:
                kernel.set_slot(slot.replace(fsm_state="CLOSED", closed=True, size=0.0))
        return out

    first = answers(42)
    assert first == answers(42)
    assert first != answers(43)
    share = {k: first.count(k) / len(first) for k in set(first)}
    assert share["REJECTED"] == pytest.approx(0.2, abs=0.04)
    assert share["EXPIRED"] == pytest.approx(0.1, abs=0.03)
    assert share["RATE_LIMITED"] == pytest.approx(0.1, abs=0.03)


def test_rate_limits_carry_retry_after_and_the_kernel_rolls_back() -> None:
    venue = MockVenueAdapter(script=["rate_limit"], retry_after_ms=750)
    kernel = Kernel(1)
    events = submit(kernel, venue, 0, "rl")
    assert events[0].retry_after_ms == 750
    assert kernel.slot(0).fsm_state == TradeStage.IDLE and kernel.free_slot() == 0


def test_cancel_of_a_working_order_and_of_an_unknown_one() -> None:
    venue = MockVenueAdapter(auto_fill=False)
    kernel = Kernel(1)
    submit(kernel, venue, 0, "c")
    order = kernel.slot(0).active_entry_order
    assert order is not None
    cancelled = venue.cancel(order, "stale")
    assert [e.kind.value for e in cancelled] == ["CANCELLED"]
    kernel.on_venue_event(cancelled[0])
    assert kernel.slot(0).fsm_state == TradeStage.CLOSED
    assert venue.cancel(order) == [] and list(venue.cancel_rejects) == [order.venue_client_id]
    assert venue.cancel(VenueOrder(venue_client_id="nobody")) == []


def test_duplicates_are_sent_and_the_kernel_applies_them_once() -> None:
    venue = MockVenueAdapter(duplicate_rate=1.0, partial_fills=2)
    kernel = Kernel(1)
    events = submit(kernel, venue, 0, "d", size=2.0)
    assert len(events) == 6, "every event twice"
    assert kernel.slot(0).size == 2.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"partial_fills": 0}, "partial_fills"),
        ({"reject_rate": 1.5}, "reject_rate"),
        ({"duplicate_rate": -0.1}, "duplicate_rate"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MockVenueAdapter(**kwargs)


def test_an_exit_without_a_price_fills_at_the_last_price_of_its_asset() -> None:
    from dita.kernel import ExecutionKernel

    venue = MockVenueAdapter()
    kernel = ExecutionKernel(max_slots=1, venue=venue)
    kernel.process_intent(
        KernelIntent(
            action="ENTER",
            slot_id=0,
            trade_id="p",
            asset="BTC",
            side="LONG",
            target_size=1.0,
            reference_price=50_000.0,
        )
    )
    out = kernel.process_intent(KernelIntent(action="EXIT", slot_id=0))
    assert out.state == "CLOSED" and kernel.slot(0).realized_pnl == 0.0
    assert venue.events[-1].asset == "BTC" and venue.events[-1].price == 50_000.0


def test_an_entry_nobody_priced_is_rejected_not_filled_at_an_invented_price() -> None:
    from dita.kernel import ExecutionKernel

    kernel = ExecutionKernel(max_slots=1, venue=MockVenueAdapter())
    intent = KernelIntent(action="ENTER", slot_id=0, trade_id="n", asset="ETH", side="LONG", target_size=1.0)
    out = kernel.process_intent(intent)
    assert out.state == "CLOSED" and kernel.slot(0).close_reason == "REJECTED"


def test_a_long_run_keeps_bounded_history_and_still_exits_old_trades() -> None:
    venue = MockVenueAdapter(history=3)
    kernel = ExecutionKernel(max_slots=2, venue=venue)
    held = kernel.process_intent(
        KernelIntent(action="ENTER", slot_id=0, trade_id="held", asset="BTC", side="LONG",
                     target_size=2.0, reference_price=100.0, exit_leg_ratios=(0.5, 0.5))
    )  # fmt: skip
    assert held.state == TradeStage.POSITION_OPEN
    for i in range(10):
        kernel.process_intent(
            KernelIntent(action="ENTER", slot_id=1, trade_id=f"t{i}", asset="ETH", side="LONG",
                         target_size=1.0, reference_price=10.0)
        )  # fmt: skip
        kernel.process_intent(KernelIntent(action="EXIT", slot_id=1))
    assert len(venue.events) == 3
    assert sum(o.done for o in venue.orders.values()) <= 3
    assert len(venue.orders) <= 4
    # Its entry order is long retired; the trade still exits at BTC's last price.
    out = kernel.process_intent(KernelIntent(action="EXIT", slot_id=0))
    assert out.accepted and out.diagnostic_code == "OK"
    assert kernel.slot(0).size == 1.0
