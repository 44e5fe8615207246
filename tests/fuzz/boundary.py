"""A fuzzer over the Python boundary of the kernel, fed malformed objects.

A hypothesis state machine drives `ExecutionKernel`'s public API with
intents and venue events built from arbitrary values and wrong types, dicts
with unknown or missing keys, NaN, infinities, negative and huge numbers,
unknown enum text and slot ids out of range; account events, reconcile sets,
exchange configs, fee calibrations, marks, control updates, slot writes,
version floors and checkpoints, the same way; all interleaved with valid
operations that walk slots through their lifecycle. After every call:

- it answered (an outcome, accepted or refused) or raised TypeError,
  ValueError or IndexError; never `KernelPanic`, never anything else;
- a refused or raised call left `checkpoint()` bytes unchanged;
- the kernel's invariants hold, read from `snapshot()` (tests/fuzz/invariants.py).

`python -m tests.fuzz.boundary --minutes 10` is the long run (it prints how
many operations it made); tests/fuzz/test_boundary.py runs a short one.

Figures span everything the kernel takes (subnormals up to 1e15), version
floors reach 2**64 - 1 and metadata nests past every limit: the kernel bugs
this fuzzing and the Rust one found there are fixed and pinned by
regression tests (native/kernel/tests/invariants.rs, tests/fuzz/test_boundary.py).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from dita._native import KernelPanic
from dita.contracts import KernelIntent, KernelOutcome, TradeSlot, VenueEvent, VenueOrder
from dita.control import ControlUpdate
from dita.enums import (
    KernelCommandType,
    KernelDiagnosticCode,
    KernelEventKind,
    KernelMode,
    KernelVerbosity,
    OrderType,
    TradeSide,
    TradeStage,
    VenueEventStatus,
    VenueOrderStatus,
)
from dita.kernel import ExecutionKernel
from dita.venue import MockVenueAdapter
from dita.venue.base import SilentVenue
from tests.fuzz import invariants

#: What a call may raise on bad input; anything else is a finding.
REFUSALS = (TypeError, ValueError, IndexError)


class Count:
    """Operations made by every machine in this process, and how they ended (the long run reports it)."""

    operations = 0
    accepted = 0
    refused = 0
    raised = 0


NAN, INF = math.nan, math.inf

# ----- values ---------------------------------------------------------------------------

#: Figures the kernel accepts: ordinary ones, and its edges (subnormal, the 1e15 bound).
good_figure = st.one_of(
    st.sampled_from([0.0, 1.0, 0.5, 2.0, 3.0, 100.0, 101.5, 1e-6, 3e7, 5e-324, 1e-300, 1e15]),
    st.floats(min_value=1e-6, max_value=3e7),
    st.floats(min_value=0.0, max_value=1e15),
    st.integers(min_value=0, max_value=1000),
)
bad_figure = st.sampled_from([NAN, INF, -INF, -1.0, -1e-9, -0.5, 1e16, 1e300, -1e300, 1.0000000000000002e15])


class Opaque:
    """An object no conversion knows."""

    def __repr__(self) -> str:
        return "Opaque()"


wrong_type = st.sampled_from(
    [None, "1.0", "", b"1", bytearray(b"x"), [1.0], {"v": 1}, (), 1j, 10**400, -(10**400), Opaque(), {1, 2}]
)
figure = st.one_of(good_figure, good_figure, good_figure, bad_figure, wrong_type)

text = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "\x00", "x" * 10_000, "\U0001f980", "t0", "BTC", "nobody"]),
)
any_text = st.one_of(text, text, wrong_type)


def enum_text(values: list[str]) -> st.SearchStrategy[Any]:
    """A value of an enum field: right, wrongly cased, unknown, or not text."""
    return st.one_of(
        st.sampled_from(values),
        st.sampled_from(values),
        st.sampled_from([v.lower() for v in values]),
        st.sampled_from(["JUMP", "", " LONG", "LONG ", "Long"]),
        wrong_type,
    )


def values_of(enum: Any) -> list[str]:
    return [m.value for m in enum]


times = st.one_of(
    st.none(),
    st.floats(min_value=0, max_value=4e9),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.123456789+02:00",
            "not a time",
            "",
            1e300,
            NAN,
            INF,
            -1.0,
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 1),
            Opaque(),
            [1.0],
        ]
    ),
)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
metadata = st.one_of(
    st.none(),
    st.just({}),
    st.dictionaries(st.text(max_size=5), json_value, max_size=3),
    st.sampled_from(
        [
            "not a dict",
            [1, 2],
            {1: 2},
            {"k": NAN},
            {"k": Opaque()},
            {"k": {1, 2}},
            {"k": b"x"},
            nested(33),
            nested(60),
            nested(200),
        ]
    ),
)
legs = st.one_of(
    st.sampled_from([[1.0], [0.5, 0.5], [0.5, 0.3, 0.2], (0.25, 0.75), [0.1] * 10]),
    st.sampled_from([[], [0.5, 0.6], [1.5, -0.5], [NAN], [0.0, 1.0], [INF], [1 / 64] * 64, [0.01] * 100]),
    st.sampled_from([None, "half", [1, "a"], [None], {"a": 1.0}, 1.0]),
    st.lists(st.floats(), max_size=4),
)


@functools.cache
def slot_ids(max_slots: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(min_value=0, max_value=max_slots - 1),
        st.integers(min_value=0, max_value=max_slots - 1),
        st.sampled_from([-1, max_slots, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30]),
        st.sampled_from([1.5, "0", True, None, [0]]),
    )


@functools.cache
def slot_keys(max_slots: int) -> st.SearchStrategy[Any]:
    """Slot ids as keys of a mapping (hashable)."""
    return st.one_of(
        st.integers(min_value=0, max_value=max_slots - 1),
        st.sampled_from([-1, max_slots, 2**32, 2**64, 1.5, "0", True, None]),
    )


@functools.cache
def counts() -> st.SearchStrategy[Any]:
    """Fields of u64: in range, negative, past 2**64, or not a number."""
    return st.one_of(
        st.integers(min_value=0, max_value=2**62),
        st.sampled_from([2**64 - 2, 2**64 - 1]),
        st.sampled_from([-1, 2**64, 2**64 + 1, 10**30, 1.5, NAN]),
        wrong_type,
    )


@functools.cache
def intent_fields(max_slots: int) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "action": enum_text(values_of(KernelCommandType)),
        "slot_id": slot_ids(max_slots),
        "trade_id": any_text,
        "asset": any_text,
        "side": enum_text(values_of(TradeSide)),
        "intent_id": any_text,
        "timestamp": times,
        "reference_price": figure,
        "target_size": figure,
        "leverage": figure,
        "exit_leg_ratios": legs,
        "reason": any_text,
        "metadata": metadata,
        "stage": enum_text(values_of(TradeStage)),
        "order_type": enum_text(values_of(OrderType)),
        "limit_price": figure,
    }


@functools.cache
def event_fields(max_slots: int) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "event_id": any_text,
        "kind": enum_text(values_of(KernelEventKind)),
        "venue_client_id": any_text,
        "venue_order_id": any_text,
        "trade_id": any_text,
        "slot_id": st.one_of(st.just(-1), slot_ids(max_slots)),
        "timestamp": times,
        "status": st.one_of(st.none(), enum_text(values_of(VenueEventStatus))),
        "side": enum_text(values_of(TradeSide)),
        "asset": any_text,
        "price": figure,
        "size": figure,
        "filled_size": figure,
        "remaining_size": figure,
        "reason": any_text,
        "retry_after_ms": counts(),
        "raw_payload": metadata,
        "metadata": metadata,
    }


ORDER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "internal_trade_id": any_text,
    "venue_order_id": any_text,
    "venue_client_id": any_text,
    "side": enum_text(values_of(TradeSide)),
    "order_type": enum_text(values_of(OrderType)),
    "intended_size": figure,
    "filled_size": figure,
    "average_fill_price": figure,
    "status": enum_text(values_of(VenueOrderStatus)),
    "reason": any_text,
    "metadata": metadata,
}


@functools.cache
def slot_fields(max_slots: int) -> dict[str, st.SearchStrategy[Any]]:
    order = st.one_of(
        st.none(),
        st.fixed_dictionaries({}, optional=ORDER_FIELDS),
        wrong_type,
    )
    return {
        "slot_id": slot_ids(max_slots),
        "trade_id": any_text,
        "asset": any_text,
        "side": enum_text(values_of(TradeSide)),
        "entry_price": figure,
        "size": figure,
        "initial_size": figure,
        "leverage": figure,
        "entry_time": times,
        "unrealized_pnl": figure,
        "realized_pnl": figure,
        "closed": st.one_of(st.booleans(), wrong_type),
        "exit_leg_ratios": legs,
        "active_leg_index": st.one_of(st.integers(min_value=-1, max_value=70), counts()),
        "active_entry_order": order,
        "active_exit_order": order,
        "fsm_state": enum_text(values_of(TradeStage)),
        "close_reason": any_text,
        "last_event_time": times,
        "seen_event_ids": st.one_of(st.lists(text, max_size=3), wrong_type),
        "metadata": metadata,
        "last_mark_price": figure,
        "version": counts(),
    }


ACCOUNT_KINDS = ["FILL_SETTLED", "ACCOUNT_UPDATE", "FUNDING_FEE"]
ACCOUNT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "kind": enum_text(ACCOUNT_KINDS),
    "event_id": any_text,
    "timestamp": times,
    "fill_id": any_text,
    "fee": st.one_of(st.none(), figure, st.floats(min_value=-3e7, max_value=0)),
    "wallet_balance": st.one_of(st.none(), figure),
    "available_margin": st.one_of(st.none(), figure),
    "used_margin": st.one_of(st.none(), figure),
    "maint_margin": st.one_of(st.none(), figure),
    "amount": st.one_of(st.none(), figure, st.floats(min_value=-3e7, max_value=0)),
}
CONFIG_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "taker_rate": st.one_of(st.sampled_from([0.0005, 0.0002, 0.0, 0.999, 1.0]), figure),
    "maker_rate": st.one_of(st.sampled_from([0.0002, -0.0001, 0.0]), figure),
    "lot_step": st.one_of(st.sampled_from([0.001, 0.1, 0.0]), figure),
    "tick_size": st.one_of(st.sampled_from([0.01, 0.5, 0.0]), figure),
    "funding_interval_secs": counts(),
}
UNKNOWN_KEYS = st.sampled_from(["bogus", "", "Slot_id", "size ", "kind2"])


def refused(result: Any) -> bool:
    """A refusal outcome. A rate limit is an answer, not a refusal: the venue
    rolled the request back, and the kernel kept a trace of it (versions, ids)."""
    if isinstance(result, KernelOutcome):
        return not result.accepted and result.diagnostic_code != KernelDiagnosticCode.RATE_LIMITED
    if isinstance(result, Mapping) and "applied" in result:
        return result["applied"] is False
    return False


# ----- the machine ------------------------------------------------------------------------


class BoundaryFuzz(RuleBasedStateMachine):
    """One ExecutionKernel and everything a caller could throw at it."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = ExecutionKernel(max_slots=1, venue=SilentVenue())
        self.checkpoint = self.kernel.checkpoint()
        self.seq = 0
        self.clients: list[str] = []

    @initialize(data=st.data())
    def start(self, data: st.DataObject) -> None:
        venue: Any
        if data.draw(st.booleans(), label="mock venue"):
            venue = MockVenueAdapter(
                seed=data.draw(st.integers(0, 2**16), label="seed"),
                partial_fills=data.draw(st.integers(1, 3)),
                reject_rate=0.1,
                expire_rate=0.1,
                rate_limit_rate=0.1,
                duplicate_rate=0.2,
                auto_fill=data.draw(st.booleans()),
            )
        else:
            venue = SilentVenue()
        self.kernel.close()
        self.kernel = ExecutionKernel(
            max_slots=data.draw(st.integers(1, 4), label="max_slots"),
            venue=venue,
            seen_event_capacity=data.draw(st.sampled_from([1, 2, 64]), label="seen capacity"),
        )
        self.kernel.set_seed_capital(1000.0)
        self.checkpoint = self.kernel.checkpoint()

    def teardown(self) -> None:
        self.kernel.close()

    # ----- the checks every call goes through ---------------------------------------------

    def attempt(self, what: str, call: Callable[[], Any]) -> Any:
        """Makes one call; it must answer or raise a refusal, and a refusal changes nothing."""
        Count.operations += 1
        try:
            result = call()
        except KernelPanic as e:
            raise AssertionError(f"{what}: the kernel panicked: {e}") from e
        except REFUSALS:
            result, was_refused = None, True
            Count.raised += 1
        else:
            was_refused = refused(result)
            if was_refused:
                Count.refused += 1
            else:
                Count.accepted += 1
        now = self.kernel.checkpoint()
        if was_refused:
            assert now == self.checkpoint, f"{what}: a refused call changed the kernel"
        self.checkpoint = now
        return result

    @invariant()
    def invariants_hold(self) -> None:
        snapshot = self.kernel.snapshot()
        invariants.check(snapshot)
        for client in snapshot["client_order_index"]:
            if client not in self.clients:
                self.clients.append(client)
        del self.clients[:-32]

    # ----- helpers --------------------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"

    def some_slot(self, data: st.DataObject) -> int:
        return data.draw(st.integers(0, self.kernel.max_slots - 1), label="slot")

    def live_order(self, data: st.DataObject) -> tuple[int, VenueOrder] | None:
        orders = [
            (s.slot_id, o)
            for s in self.kernel.slots()
            for o in (s.active_exit_order, s.active_entry_order)
            if o is not None and o.is_working()
        ]
        return data.draw(st.sampled_from(orders), label="order") if orders else None

    def malformed(
        self, data: st.DataObject, base: dict[str, Any], fields: Mapping[str, st.SearchStrategy[Any]]
    ) -> dict[str, Any]:
        """`base` with a few fields given anything, maybe an unknown key added or a key dropped."""
        out = dict(base)
        names = sorted(fields)
        for _ in range(data.draw(st.integers(0, 3), label="bad fields")):
            name = data.draw(st.sampled_from(names))
            out[name] = data.draw(fields[name], label=name)
        if data.draw(st.integers(0, 9)) == 0:
            out[data.draw(UNKNOWN_KEYS)] = data.draw(figure)
        if out and data.draw(st.integers(0, 9)) == 0:
            del out[data.draw(st.sampled_from(sorted(out)))]
        return out

    def valid_intent(self, data: st.DataObject) -> dict[str, Any]:
        slot = self.some_slot(data)
        action = data.draw(st.sampled_from(["ENTER", "ENTER", "EXIT", "CANCEL"]))
        fields: dict[str, Any] = {"action": action, "slot_id": slot, "intent_id": self.fresh("i")}
        if action == "ENTER":
            fields.update(
                trade_id=self.fresh("t"),
                asset=data.draw(st.sampled_from(["BTC", "ETH"])),
                side=data.draw(st.sampled_from(["LONG", "SHORT"])),
                target_size=data.draw(st.sampled_from([1.0, 2.0, 0.5, 3.0])),
                reference_price=data.draw(st.sampled_from([100.0, 101.5, 99.0])),
                exit_leg_ratios=data.draw(st.sampled_from([[1.0], [0.5, 0.5]])),
            )
        return fields

    # ----- intents and venue events ----------------------------------------------------------

    @rule(data=st.data())
    def valid_intent_call(self, data: st.DataObject) -> None:
        fields = self.valid_intent(data)
        self.attempt("process_intent", lambda: self.kernel.process_intent(KernelIntent(**fields)))

    @rule(data=st.data())
    def malformed_intent(self, data: st.DataObject) -> None:
        fields = self.malformed(data, self.valid_intent(data), intent_fields(self.kernel.max_slots))
        self.attempt("process_intent", lambda: self.kernel.process_intent(KernelIntent(**fields)))

    @rule(data=st.data())
    def valid_event(self, data: st.DataObject) -> None:
        live = self.live_order(data)
        if live is None:
            return
        slot_id, order = live
        kind = data.draw(st.sampled_from(["ORDER_ACK", "FILL", "PARTIAL_FILL", "FILL", "CANCELLED"]))
        left = order.remaining()
        size = left if kind == "FILL" else left / 2
        event: dict[str, Any] = {
            "event_id": self.fresh("e"),
            "kind": kind,
            "venue_client_id": order.venue_client_id,
            "venue_order_id": order.venue_order_id or (self.fresh("V") if kind == "ORDER_ACK" else ""),
            "price": 100.0,
            "size": size if kind in ("FILL", "PARTIAL_FILL") else 0.0,
            "slot_id": slot_id,
        }
        self.attempt("on_venue_event", lambda: self.kernel.on_venue_event(VenueEvent(**event)))

    @rule(data=st.data())
    def malformed_event(self, data: st.DataObject) -> None:
        live = self.live_order(data)
        client = live[1].venue_client_id if live else data.draw(st.sampled_from([*self.clients, "nobody"]))
        reused = st.sampled_from(["e1", "e2", "mock-00000001"])
        base: dict[str, Any] = {
            "event_id": data.draw(st.one_of(st.just(self.fresh("e")), reused)),
            "kind": data.draw(st.sampled_from(values_of(KernelEventKind))),
            "venue_client_id": client,
            "price": 100.0,
            "size": data.draw(st.sampled_from([0.5, 1.0, live[1].remaining() if live else 1.0, 1e-10])),
        }
        fields = self.malformed(data, base, event_fields(self.kernel.max_slots))
        self.attempt("on_venue_event", lambda: self.kernel.on_venue_event(VenueEvent(**fields)))

    @rule(data=st.data())
    def not_a_contract(self, data: st.DataObject) -> None:
        """An intent where an event belongs, a dict where an intent does, and so on."""
        thing = data.draw(
            st.one_of(
                wrong_type,
                st.just({"action": "ENTER", "slot_id": 0}),
                st.just(TradeSlot()),
                st.just(VenueOrder()),
                st.just(VenueEvent(event_id="e", kind="FILL")),
                st.just(KernelIntent(action="ENTER", slot_id=0)),
            )
        )
        call = data.draw(st.sampled_from(["process_intent", "on_venue_event"]))
        self.attempt(call, lambda: getattr(self.kernel, call)(thing))

    # ----- account, config, calibration, marks, control -------------------------------------------

    @rule(data=st.data())
    def account_event(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(ACCOUNT_KINDS))
        base: dict[str, Any] = {"kind": kind, "event_id": self.fresh("a")}
        fill_id = data.draw(st.sampled_from(["e1", "mock-00000003", "x"]))
        figures: dict[str, dict[str, Any]] = {
            "FILL_SETTLED": {"fill_id": fill_id, "fee": 0.05},
            "ACCOUNT_UPDATE": {"wallet_balance": 999.5},
            "FUNDING_FEE": {"amount": -0.02},
        }
        base.update(figures[kind])
        event: Any = self.malformed(data, base, ACCOUNT_FIELDS)
        if data.draw(st.integers(0, 14)) == 0:
            event = data.draw(st.one_of(wrong_type, st.just([("kind", "FUNDING_FEE")])))
        self.attempt("on_account_event", lambda: self.kernel.on_account_event(event))

    @rule(data=st.data())
    def exchange_config(self, data: st.DataObject) -> None:
        config: Any = self.malformed(data, {"taker_rate": 0.0005, "maker_rate": 0.0002}, CONFIG_FIELDS)
        if data.draw(st.integers(0, 9)) == 0:
            config = data.draw(st.one_of(wrong_type, st.just([("taker_rate", 0.001)]), st.just("ab")))
        self.attempt("set_exchange_config", lambda: self.kernel.set_exchange_config(config))

    @rule(data=st.data())
    def calibrate(self, data: st.DataObject) -> None:
        price: Any = data.draw(figure, label="price")
        qty: Any = data.draw(figure, label="qty")
        fee: Any = data.draw(st.one_of(figure, st.just(0.05)), label="fee")
        self.attempt("calibrate_fee", lambda: self.kernel.calibrate_fee(price, qty, fee))

    @rule(data=st.data())
    def mark(self, data: st.DataObject) -> None:
        asset: Any = data.draw(st.one_of(st.sampled_from(["BTC", "ETH"]), any_text), label="asset")
        price: Any = data.draw(figure, label="price")
        self.attempt("mark_price", lambda: self.kernel.mark_price(asset, price))

    @rule(data=st.data())
    def control(self, data: st.DataObject) -> None:
        update = ControlUpdate(
            mode=data.draw(st.one_of(st.none(), enum_text(values_of(KernelMode)))),
            verbosity=data.draw(st.one_of(st.none(), enum_text(values_of(KernelVerbosity)))),
            journal=data.draw(st.one_of(st.none(), st.booleans(), wrong_type, st.integers(0, 1))),  # type: ignore[arg-type]
            extra=data.draw(st.one_of(st.just({}), st.just({}), st.dictionaries(text, figure, max_size=2))),
        )
        self.attempt("update_control", lambda: self.kernel.update_control(update))

    @rule(data=st.data())
    def seed_capital(self, data: st.DataObject) -> None:
        seed: Any = data.draw(figure)
        self.attempt("set_seed_capital", lambda: self.kernel.set_seed_capital(seed))

    # ----- slots: reconcile, writes through the views ------------------------------------------------

    def slot_like(self, data: st.DataObject, slot_id: int) -> Any:
        """A current slot, changed in a few fields (as a TradeSlot or a dict), or garbage."""
        current = self.kernel.slot(self.some_slot(data)).snapshot()
        fields = current.to_dict()
        fields["slot_id"] = slot_id
        changed = self.malformed(data, fields, slot_fields(self.kernel.max_slots))
        safe = changed
        form = data.draw(st.integers(0, 9), label="form")
        if form == 0:
            return data.draw(wrong_type)
        if form <= 3:
            try:
                return TradeSlot(**safe)
            except REFUSALS:
                return safe
        return safe

    @rule(data=st.data())
    def reconcile(self, data: st.DataObject) -> None:
        n = data.draw(st.integers(0, self.kernel.max_slots + 1), label="slots")
        slots: Any = [self.slot_like(data, i) for i in range(n)]
        if data.draw(st.integers(0, 9)) == 0:
            slots = data.draw(st.one_of(wrong_type, st.just("slots"), st.just({"slot_id": 0})))
        self.attempt("reconcile_from_slots", lambda: self.kernel.reconcile_from_slots(slots))

    @rule(data=st.data())
    def slot_write(self, data: st.DataObject) -> None:
        slot_id = data.draw(slot_ids(self.kernel.max_slots), label="slot_id")
        how = data.draw(st.sampled_from(["set", "set", "set", "mark", "leg", "entry", "exit"]))
        fields = slot_fields(self.kernel.max_slots)
        name = data.draw(st.one_of(st.sampled_from(sorted(fields)), UNKNOWN_KEYS), label="field")
        value = data.draw(fields.get(name, figure), label="value")
        order: Any = data.draw(
            st.one_of(st.fixed_dictionaries({}, optional=ORDER_FIELDS).map(order_or_fields), wrong_type),
            label="order",
        )

        def write() -> Any:
            view = self.kernel.slot(slot_id)
            if how == "set" and name == "slot_id":
                # The view's identity: read-only, as Python's own read-only attributes are.
                try:
                    setattr(view, name, value)
                except AttributeError:
                    raise ValueError("slot_id is read-only") from None
                raise AssertionError("a slot view let its slot_id be assigned")
            if how == "set":
                setattr(view, name, value)
            elif how == "mark":
                view.mark_price(value)
            elif how == "leg":
                view.consume_exit_leg()
            else:
                getattr(view, f"attach_{how}_order")(order)
            return None

        self.attempt(f"slot({slot_id!r}) {how} {name}", write)

    # ----- versions, checkpoints, drains ---------------------------------------------------------------

    @rule(data=st.data())
    def raise_versions(self, data: st.DataObject) -> None:
        floors = data.draw(
            st.one_of(
                st.dictionaries(slot_keys(self.kernel.max_slots), counts(), max_size=3),
                wrong_type,
            )
        )
        account = data.draw(st.one_of(st.none(), counts()))
        self.attempt("raise_versions", lambda: self.kernel.raise_versions(floors, account))

    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        own = self.kernel.checkpoint()
        how = data.draw(st.sampled_from(["own", "flipped", "cut", "garbage"]))
        blob: Any
        # Positions as a fraction of the length: checkpoints carry wall-clock
        # times, so their length differs between a run and its replay.
        at = data.draw(st.integers(0, 2**16), label="at") * len(own) // (2**16 + 1)
        if how == "own":
            blob = own
        elif how == "flipped":
            blob = own[:at] + bytes([own[at] ^ (1 << data.draw(st.integers(0, 7)))]) + own[at + 1 :]
        elif how == "cut":
            blob = own[:at]
        else:
            blob = data.draw(st.one_of(st.binary(max_size=64), wrong_type, st.just(own.decode("latin-1"))))

        def restore() -> None:
            restored = ExecutionKernel.from_checkpoint(blob, venue=SilentVenue())
            invariants.check(restored.snapshot())
            if how == "own":
                assert restored.checkpoint() == own, "a restored kernel checkpoints differently"
                self.kernel.close()
                self.kernel = restored
            else:
                restored.close()

        self.attempt(f"from_checkpoint ({how})", restore)

    @rule(data=st.data())
    def drain(self, data: st.DataObject) -> None:
        how = data.draw(st.sampled_from(["changes", "documents", "mark_all", "pending"]))
        if how == "changes":
            self.attempt("drain_changes", self.kernel.drain_changes)
            assert self.kernel.pending_changes() == 0
        elif how == "documents":
            self.attempt("drain_documents", self.kernel.drain_documents)
        elif how == "mark_all":
            self.attempt("mark_all_changed", self.kernel.mark_all_changed)
            assert self.kernel.pending_changes() == self.kernel.max_slots + 1
        else:
            self.attempt("pending_changes", self.kernel.pending_changes)


def order_or_fields(fields: dict[str, Any]) -> Any:
    """A VenueOrder built from `fields`, or the fields themselves when they do not build."""
    try:
        return VenueOrder(**fields)
    except REFUSALS:
        return fields


def boundary_settings(examples: int, steps: int, **more: Any) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
        **more,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The long run of the Python boundary fuzzer.")
    parser.add_argument("--minutes", type=float, default=10.0, help="stop after this long (default 10)")
    parser.add_argument(
        "--operations", type=int, default=0, help="stop once this many operations ran (default: no limit)"
    )
    parser.add_argument("--steps", type=int, default=200, help="operations per example (default 200)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + 60 * args.minutes
    started = time.monotonic()
    batches = 0
    # Batches of examples until the time is up: each batch is a complete hypothesis run.
    while time.monotonic() < deadline and not (args.operations and Count.operations >= args.operations):
        # No example database: a long run's examples are not worth replaying.
        batch = boundary_settings(examples=50, steps=args.steps, database=None)
        run_state_machine_as_test(BoundaryFuzz, settings=batch)
        batches += 1
    seconds = time.monotonic() - started
    print(
        f"python boundary fuzz: {Count.operations} operations in {batches} batches of 50 examples "
        f"of up to {args.steps} steps, "
        f"{seconds:.0f} s ({Count.operations / seconds:.0f} per second): {Count.accepted} answered, "
        f"{Count.refused} refused, {Count.raised} raised TypeError/ValueError/IndexError; no panic, "
        "no other exception, every refusal changed nothing, every invariant held"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
