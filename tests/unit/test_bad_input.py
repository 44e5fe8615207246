"""Bad input gets a clear, specific refusal or exception and changes nothing."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from dita._native import Kernel, KernelPanic, _panic_for_test
from dita.contracts import KernelDiagnosticCode, KernelIntent, TradeSlot, VenueEvent

BAD_NUMBERS = [math.nan, math.inf, -math.inf, -1.0, 1e300]


def enter(**overrides: Any) -> KernelIntent:
    fields: dict[str, Any] = {
        "action": "ENTER",
        "slot_id": 0,
        "trade_id": "t1",
        "asset": "BTC",
        "side": "LONG",
        "target_size": 1.0,
        "reference_price": 100.0,
        "timestamp": 1.0,
    }
    fields.update(overrides)
    return KernelIntent(**fields)


@pytest.fixture
def kernel() -> Kernel:
    """A kernel with one working entry order (client id t0-E1) and one free slot."""
    k = Kernel(2)
    out = k.process_intent(enter(slot_id=1, trade_id="t0"))
    assert out.accepted
    k.submitted(1, 1.0)
    return k


def unchanged(kernel: Kernel, call: Callable[[], Any]) -> Any:
    before = kernel.checkpoint()
    result = call()
    assert kernel.checkpoint() == before, "a refused input changed the kernel"
    return result


def assert_refused(outcome: Any, code: KernelDiagnosticCode, field: str) -> None:
    assert not outcome.accepted
    assert outcome.diagnostic_code == code
    assert outcome.details["field"] == field, outcome.details
    assert outcome.details["value"], "the refused value is named"
    assert outcome.details["reason"], "the reason is given"
    assert outcome.transitions == []


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("field", ["reference_price", "target_size", "leverage", "limit_price"])
def test_intent_numbers(kernel: Kernel, field: str, value: float) -> None:
    out = unchanged(kernel, lambda: kernel.process_intent(enter(**{field: value})))
    assert_refused(out, KernelDiagnosticCode.INVALID_INTENT, field)
    reported = float(out.details["value"])
    assert reported == value or (math.isnan(reported) and math.isnan(value))


@pytest.mark.parametrize("field", ["target_size", "leverage"])
def test_zero_size_and_leverage_are_refused_on_enter(kernel: Kernel, field: str) -> None:
    out = unchanged(kernel, lambda: kernel.process_intent(enter(**{field: 0.0})))
    assert_refused(out, KernelDiagnosticCode.INVALID_INTENT, field)


def test_zero_reference_price_is_a_market_order_without_a_hint(kernel: Kernel) -> None:
    assert kernel.process_intent(enter(reference_price=0.0)).accepted


def test_limit_order_needs_a_limit_price(kernel: Kernel) -> None:
    out = unchanged(kernel, lambda: kernel.process_intent(enter(order_type="LIMIT", limit_price=0.0)))
    assert_refused(out, KernelDiagnosticCode.INVALID_INTENT, "limit_price")


@pytest.mark.parametrize(
    ("ratios", "field"),
    [
        ([math.nan, 0.5], "exit_leg_ratios[0]"),
        ([0.5, math.inf], "exit_leg_ratios[1]"),
        ([1.5, -0.5], "exit_leg_ratios[1]"),
        ([0.5, 0.0, 0.5], "exit_leg_ratios[1]"),
        ([0.5, 0.6], "exit_leg_ratios"),
        ([], "exit_leg_ratios"),
        ([1 / 100] * 100, "exit_leg_ratios"),
    ],
)
def test_exit_leg_ratios(kernel: Kernel, ratios: list[float], field: str) -> None:
    out = unchanged(kernel, lambda: kernel.process_intent(enter(exit_leg_ratios=ratios)))
    assert_refused(out, KernelDiagnosticCode.INVALID_INTENT, field)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"trade_id": ""}, "trade_id"),
        ({"asset": ""}, "asset"),
        ({"side": "FLAT"}, "side"),
        ({"trade_id": "t0"}, "trade_id"),
    ],
)
def test_enter_needs_a_trade_an_asset_and_a_direction(
    kernel: Kernel, overrides: dict[str, Any], field: str
) -> None:
    out = unchanged(kernel, lambda: kernel.process_intent(enter(**overrides)))
    assert_refused(out, KernelDiagnosticCode.INVALID_INTENT, field)


@pytest.mark.parametrize("slot_id", [-1, 2, 10**6, 2**62])
def test_slot_ids_out_of_range(kernel: Kernel, slot_id: int) -> None:
    out = unchanged(kernel, lambda: kernel.process_intent(enter(slot_id=slot_id)))
    assert_refused(out, KernelDiagnosticCode.INVALID_SLOT_ID, "slot_id")
    with pytest.raises(IndexError, match="slot_id"):
        kernel.slot(slot_id)


def test_slot_id_beyond_64_bits_is_a_clear_error() -> None:
    with pytest.raises((TypeError, ValueError), match="slot_id"):
        enter(slot_id=2**70)


def fill(**overrides: Any) -> VenueEvent:
    fields: dict[str, Any] = {
        "event_id": "f1",
        "kind": "FILL",
        "venue_client_id": "t0-E1",
        "price": 100.0,
        "size": 0.5,
        "timestamp": 2.0,
    }
    fields.update(overrides)
    return VenueEvent(**fields)


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("field", ["price", "size", "filled_size", "remaining_size"])
def test_venue_event_numbers(kernel: Kernel, field: str, value: float) -> None:
    out = unchanged(kernel, lambda: kernel.on_venue_event(fill(**{field: value})))
    assert_refused(out, KernelDiagnosticCode.INVALID_EVENT, field)


@pytest.mark.parametrize("field", ["price", "size"])
def test_a_fill_of_nothing_or_at_no_price_is_refused(kernel: Kernel, field: str) -> None:
    out = unchanged(kernel, lambda: kernel.on_venue_event(fill(**{field: 0.0})))
    assert_refused(out, KernelDiagnosticCode.INVALID_EVENT, field)


def test_events_need_an_id_and_an_order(kernel: Kernel) -> None:
    assert_refused(
        unchanged(kernel, lambda: kernel.on_venue_event(fill(event_id=""))),
        KernelDiagnosticCode.INVALID_EVENT,
        "event_id",
    )
    assert_refused(
        unchanged(kernel, lambda: kernel.on_venue_event(fill(venue_client_id=""))),
        KernelDiagnosticCode.INVALID_EVENT,
        "venue_client_id",
    )


def test_overfill_unknown_order_and_wrong_slot(kernel: Kernel) -> None:
    out = unchanged(kernel, lambda: kernel.on_venue_event(fill(size=1.5)))
    assert out.diagnostic_code == KernelDiagnosticCode.OVERFILL and out.details["field"] == "size"
    out = unchanged(kernel, lambda: kernel.on_venue_event(fill(venue_client_id="nobody")))
    assert out.diagnostic_code == KernelDiagnosticCode.UNKNOWN_ORDER
    out = unchanged(kernel, lambda: kernel.on_venue_event(fill(slot_id=0)))
    assert_refused(out, KernelDiagnosticCode.INVALID_EVENT, "slot_id")
    out = unchanged(kernel, lambda: kernel.on_venue_event(fill(trade_id="other")))
    assert_refused(out, KernelDiagnosticCode.INVALID_EVENT, "trade_id")


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (KernelIntent, "action", "JUMP"),
        (KernelIntent, "side", "UP"),
        (KernelIntent, "order_type", "STOP"),
        (KernelIntent, "stage", "LIMBO"),
        (VenueEvent, "kind", "TRADE"),
        (VenueEvent, "status", "DONE"),
        (TradeSlot, "fsm_state", "OPEN"),
    ],
)
def test_unknown_enum_text_names_the_field_and_the_choices(cls: Any, field: str, value: str) -> None:
    base: dict[str, Any] = (
        {"action": "ENTER", "slot_id": 0} if cls is KernelIntent else {"event_id": "e", "kind": "FILL"}
    )
    if cls is TradeSlot:
        base = {}
    with pytest.raises(ValueError, match=rf"{field}.*{value}"):
        cls(**{**base, field: value})


INTENT_WRONG_TYPES: dict[str, Any] = {
    "intent_id": 5,
    "trade_id": 1.5,
    "slot_id": "zero",
    "asset": ["BTC"],
    "side": 1,
    "action": None,
    "reference_price": "100",
    "target_size": "1",
    "leverage": object(),
    "exit_leg_ratios": "half",
    "reason": 3,
    "metadata": "not a dict",
    "stage": 2,
    "order_type": 0,
    "limit_price": [1.0],
    "timestamp": object(),
}


@pytest.mark.parametrize("field", sorted(INTENT_WRONG_TYPES))
def test_every_intent_field_with_the_wrong_type(field: str) -> None:
    fields: dict[str, Any] = {"action": "ENTER", "slot_id": 0, field: INTENT_WRONG_TYPES[field]}
    with pytest.raises((TypeError, ValueError), match=field):
        KernelIntent(**fields)


EVENT_WRONG_TYPES: dict[str, Any] = {
    "event_id": 1,
    "trade_id": 2.0,
    "slot_id": "one",
    "kind": 3,
    "status": 4,
    "venue_order_id": ["x"],
    "venue_client_id": {"x": 1},
    "side": 5,
    "asset": 6,
    "price": "high",
    "size": "big",
    "filled_size": "some",
    "remaining_size": "rest",
    "reason": 7,
    "retry_after_ms": -5,
    "raw_payload": [1],
    "metadata": 8,
    "timestamp": [],
}


@pytest.mark.parametrize("field", sorted(EVENT_WRONG_TYPES))
def test_every_event_field_with_the_wrong_type(field: str) -> None:
    fields: dict[str, Any] = {"event_id": "e", "kind": "FILL", field: EVENT_WRONG_TYPES[field]}
    with pytest.raises((TypeError, ValueError), match=field):
        VenueEvent(**fields)


def test_unknown_fields_and_naive_datetimes_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(TypeError, match="bogus"):
        KernelIntent(action="ENTER", slot_id=0, bogus=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="naive"):
        KernelIntent(action="ENTER", slot_id=0, timestamp=datetime(2026, 1, 1))


ACCOUNT_NUMBER_FIELDS = {
    "FILL_SETTLED": ["fee"],
    "ACCOUNT_UPDATE": ["wallet_balance", "available_margin", "used_margin", "maint_margin"],
    "FUNDING_FEE": ["amount"],
}
ACCOUNT_VALID: dict[str, dict[str, Any]] = {
    "FILL_SETTLED": {"fill_id": "f1", "fee": 0.1},
    "ACCOUNT_UPDATE": {"wallet_balance": 1000.0},
    "FUNDING_FEE": {"amount": -0.5},
}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e300])
@pytest.mark.parametrize(
    ("kind", "field"), [(k, f) for k, fields in ACCOUNT_NUMBER_FIELDS.items() for f in fields]
)
def test_account_event_numbers(kernel: Kernel, kind: str, field: str, value: float) -> None:
    event = {"kind": kind, "event_id": "a1", **ACCOUNT_VALID[kind], field: value}
    answer = unchanged(kernel, lambda: kernel.on_account_event(event))
    assert answer["applied"] is False
    assert answer["diagnostic_code"] == KernelDiagnosticCode.INVALID_EVENT
    assert answer["details"]["field"] == field and answer["details"]["reason"]
    assert answer["event_seq"] == 0


@pytest.mark.parametrize(
    ("event", "match"),
    [
        ({"kind": "BONUS", "event_id": "a"}, "kind"),
        ({"kind": "FUNDING_FEE", "event_id": "a", "amount": "1"}, "amount"),
        ({"kind": "FUNDING_FEE", "amount": 1.0}, "event_id"),
        ({"kind": "FUNDING_FEE", "event_id": "a", "amount": 1.0, "extra": 1}, "extra"),
        ("not a dict", "account_event"),
    ],
)
def test_malformed_account_events_raise_naming_the_field(kernel: Kernel, event: Any, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        unchanged(kernel, lambda: kernel.on_account_event(event))


def test_account_events_missing_their_figures_are_refused(kernel: Kernel) -> None:
    for kind, fields in ACCOUNT_NUMBER_FIELDS.items():
        answer = unchanged(kernel, partial(kernel.on_account_event, {"kind": kind, "event_id": "x"}))
        assert answer["applied"] is False
        assert answer["details"]["field"] in [*fields, "fill_id"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda k: k.set_seed_capital(math.nan), "seed_capital"),
        (lambda k: k.set_seed_capital(-1.0), "seed_capital"),
        (lambda k: k.set_exchange_config({"taker_rate": math.inf}), "taker_rate"),
        (lambda k: k.set_exchange_config({"maker_rate": 1.5}), "maker_rate"),
        (lambda k: k.set_exchange_config({"lot_step": -0.1}), "lot_step"),
        (lambda k: k.set_exchange_config({"tick": 0.1}), "tick"),
        (lambda k: k.set_exchange_config({"funding_interval_secs": -1}), "funding_interval_secs"),
        (lambda k: k.calibrate_fee(math.nan, 1.0, 0.1), "fill_price"),
        (lambda k: k.calibrate_fee(100.0, -1.0, 0.1), "fill_qty"),
        (lambda k: k.calibrate_fee(100.0, 1.0, math.inf), "actual_fee"),
        (lambda k: k.calibrate_fee(100.0, 1.0, 0.1), "expected_fee"),
        (lambda k: k.mark_price("BTC", math.nan), "price"),
        (lambda k: k.mark_price("BTC", 0.0), "price"),
        (lambda k: k.set_control("PAUSED", "NORMAL"), "mode"),
        (lambda k: k.set_control("ACTIVE", "LOUD"), "verbosity"),
        (lambda k: k.submitted(5), "slot_id"),
        (lambda k: Kernel.restore(b"\x00garbage"), "checkpoint"),
        (lambda k: Kernel(0), "max_slots"),
    ],
)
def test_other_calls_raise_naming_the_field(
    kernel: Kernel, call: Callable[[Kernel], Any], match: str
) -> None:
    before = kernel.checkpoint()
    try:
        result = call(kernel)
    except (TypeError, ValueError) as e:
        assert match in str(e)
    else:
        # submitted() answers with a refusal rather than raising
        assert not result.accepted and match in str(result.details)
    assert kernel.checkpoint() == before


def test_reconcile_refuses_a_bad_set_whole(kernel: Kernel) -> None:
    good = kernel.slot(1)
    out = unchanged(kernel, lambda: kernel.reconcile_from_slots([good, good.replace(slot_id=0, size=-1.0)]))
    assert_refused(out, KernelDiagnosticCode.INVALID_SLOTS, "slots[1].size")
    with pytest.raises(TypeError, match=r"slots\[0\]\.size"):
        unchanged(kernel, lambda: kernel.reconcile_from_slots([{"slot_id": 0, "size": "big"}]))


def test_write_through_of_a_bad_slot_changes_nothing(kernel: Kernel) -> None:
    slot = kernel.slot(1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"size": math.nan}, "size"),
        ({"fsm_state": "POSITION_OPEN", "size": 0.0}, "size"),
        ({"closed": True}, "closed"),
        ({"slot_id": 0, "trade_id": "t0"}, "trade_id"),
    ]
    for change, match in cases:
        with pytest.raises(ValueError, match=match):
            unchanged(kernel, partial(kernel.set_slot, slot.replace(**change)))


def test_a_rust_panic_is_a_python_exception() -> None:
    with pytest.raises(KernelPanic, match="boom"):
        _panic_for_test("boom")
    assert issubclass(KernelPanic, Exception)
