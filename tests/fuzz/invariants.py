"""The kernel's invariants, read from `ExecutionKernel.snapshot()`.

The same checks as the Rust crate's `dita_kernel::invariants`, on the plain
data a Python caller sees: sizes finite and never negative, no order filled
beyond its intent, the indices and the slots agreeing both ways, the
account's K and E figures finite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Fills may pass an order's intended size by this fraction of the trade's
#: initial size (at least of 1): the kernel's SIZE_EPSILON.
SIZE_EPSILON = 1e-9

SLOT_FIGURES = ("size", "initial_size", "entry_price", "last_mark_price")
SIGNED_SLOT_FIGURES = ("unrealized_pnl", "realized_pnl")
ORDER_FIGURES = ("intended_size", "filled_size", "average_fill_price")
ACCOUNT_FIGURES = (
    "seed_capital",
    "k_capital",
    "k_realized_pnl",
    "k_fees_paid",
    "k_funding_net",
    "e_wallet_balance",
    "e_available_margin",
    "e_used_margin",
    "e_maint_margin",
    "available_capital",
    "reconcile_delta",
    "unsettled_fees",
    "calibration_ratio",
    "equity",
    "unrealized_pnl",
    "open_notional",
    "leverage",
)
INDICES = {
    "active_trade_index": "trade_id",
    "client_order_index": "venue_client_id",
    "venue_order_index": "venue_order_id",
}


def _finite(what: str, value: Any) -> None:
    assert isinstance(value, float | int) and math.isfinite(value), f"{what} is {value!r}"


def _non_negative(what: str, value: Any) -> None:
    _finite(what, value)
    assert value >= 0, f"{what} is negative: {value!r}"


def identities(slot: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(index, id) for every id the kernel's indices must map to this slot."""
    ids: list[tuple[str, str]] = []
    if slot["fsm_state"] != "IDLE" and slot["trade_id"]:
        ids.append(("active_trade_index", slot["trade_id"]))
    for role in ("active_entry_order", "active_exit_order"):
        order = slot[role]
        if order is None:
            continue
        if order["venue_client_id"]:
            ids.append(("client_order_index", order["venue_client_id"]))
        if order["venue_order_id"]:
            ids.append(("venue_order_index", order["venue_order_id"]))
    return ids


def check(snapshot: Mapping[str, Any]) -> None:
    """Raises AssertionError naming the first invariant that does not hold."""
    slots = snapshot["slots"]
    assert len(slots) == snapshot["max_slots"], f"{len(slots)} slots in a kernel of {snapshot['max_slots']}"
    expected: dict[str, dict[str, int]] = {name: {} for name in INDICES}
    for i, slot in enumerate(slots):
        assert slot["slot_id"] == i, f"slot {i} says it is slot {slot['slot_id']}"
        for name in SLOT_FIGURES:
            _non_negative(f"slot {i} {name}", slot[name])
        for name in SIGNED_SLOT_FIGURES:
            _finite(f"slot {i} {name}", slot[name])
        legs = slot["exit_leg_ratios"]
        assert 0 <= slot["active_leg_index"] < len(legs), f"slot {i} leg {slot['active_leg_index']} of {legs}"
        tolerance = SIZE_EPSILON * max(slot["initial_size"], 1.0)
        for role in ("active_entry_order", "active_exit_order"):
            order = slot[role]
            if order is None:
                continue
            for name in ORDER_FIGURES:
                _non_negative(f"slot {i} {role} {name}", order[name])
            assert order["filled_size"] <= order["intended_size"] + tolerance, (
                f"slot {i} {role} filled {order['filled_size']} of an intended {order['intended_size']}"
            )
        for index, id_ in identities(slot):
            held = expected[index]
            assert id_ not in held, f"{index} id {id_!r} held by slots {held.get(id_)} and {i}"
            expected[index][id_] = i
    for index in INDICES:
        assert snapshot[index] == expected[index], (
            f"{index} is {snapshot[index]}, the slots hold {expected[index]}"
        )
    account = snapshot["account"]
    for name in ACCOUNT_FIGURES:
        _finite(f"account {name}", account[name])
    assert account["open_positions"] >= 0, f"account open_positions {account['open_positions']}"
