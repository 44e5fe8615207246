"""The Python boundary fuzzer (tests/fuzz/boundary.py), a short run, and what it found.

The long run is `python -m tests.fuzz.boundary --minutes 10`.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from dita.contracts import KernelIntent, VenueOrder
from dita.kernel import ExecutionKernel
from dita.venue.base import SilentVenue
from tests.fuzz.boundary import BoundaryFuzz, boundary_settings

TestBoundaryFuzz = BoundaryFuzz.TestCase
TestBoundaryFuzz.settings = boundary_settings(examples=25, steps=40)

HUGE = 10**400


@pytest.fixture
def kernel() -> ExecutionKernel:
    k = ExecutionKernel(max_slots=2, venue=SilentVenue())
    k.set_seed_capital(1000.0)
    return k


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda k: k.mark_price("BTC", HUGE), "price"),
        (lambda k: k.mark_price("BTC", -HUGE), "price"),
        (lambda k: k.set_seed_capital(HUGE), "seed"),
        (lambda k: k.calibrate_fee(HUGE, 1.0, 0.1), "fill_price"),
        (lambda k: k.calibrate_fee(100.0, HUGE, 0.1), "fill_qty"),
        (lambda k: k.calibrate_fee(100.0, 1.0, -HUGE), "actual_fee"),
        (lambda k: k.raise_versions({0: 2**64}), r"slot_versions\[0\]"),
        (lambda k: k.raise_versions({0: -1}), r"slot_versions\[0\]"),
        (lambda k: k.raise_versions({2**32: 1}), "slot_versions key"),
        (lambda k: k.raise_versions({}, 2**64), "account_version"),
        (lambda k: k.slot(0).mark_price(HUGE), "price"),
    ],
)
def test_an_int_past_what_the_kernel_takes_is_a_value_error_naming_it(
    kernel: ExecutionKernel, call: Callable[[ExecutionKernel], Any], field: str
) -> None:
    # Found by the fuzzer: these raised OverflowError (not a ValueError, so an
    # `except ValueError` missed it) naming no argument; and the value is not printed whole.
    before = kernel.checkpoint()
    with pytest.raises(ValueError, match=rf"^{field} = ") as raised:
        call(kernel)
    assert len(str(raised.value)) < 200
    assert kernel.checkpoint() == before


@pytest.mark.parametrize("order", [None, {"venue_client_id": "c"}, "c"])
@pytest.mark.parametrize("role", ["entry", "exit"])
def test_attaching_what_is_not_an_order_is_a_type_error(
    kernel: ExecutionKernel, role: str, order: Any
) -> None:
    # Found by the fuzzer: an AttributeError ('NoneType' object has no attribute 'to_dict').
    before = kernel.checkpoint()
    with pytest.raises(TypeError, match="must be a VenueOrder"):
        getattr(kernel.slot(0), f"attach_{role}_order")(order)
    assert kernel.checkpoint() == before


def test_attaching_an_order_still_writes_it(kernel: ExecutionKernel) -> None:
    kernel.slot(0).attach_entry_order(VenueOrder(venue_client_id="c", intended_size=1.0))
    order = kernel.slot(0).snapshot().active_entry_order
    assert order is not None and order.venue_client_id == "c"


def _survives(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_deeply_nested_metadata_is_refused_not_a_crash() -> None:
    # In a child process: the crash kills the interpreter it happens in.
    child = _survives(
        """
        from dita.contracts import KernelIntent
        metadata = {}
        for _ in range(20_000):
            metadata = {"a": metadata}
        try:
            KernelIntent(action="ENTER", slot_id=0, metadata=metadata)
        except (TypeError, ValueError) as e:
            print("refused:", e)
        """
    )
    assert child.returncode == 0, f"the interpreter died (exit {child.returncode}): {child.stderr[-300:]}"
    assert "refused:" in child.stdout and "metadata" in child.stdout, child.stdout


def test_metadata_deeper_than_a_checkpoint_can_hold_is_refused_naming_it() -> None:
    kernel = ExecutionKernel(max_slots=1, venue=SilentVenue())
    before = kernel.checkpoint()
    metadata: dict[str, object] = {}
    for _ in range(33):
        metadata = {"a": metadata}
    out = kernel.process_intent(
        KernelIntent(
            action="ENTER",
            slot_id=0,
            trade_id="t",
            asset="BTC",
            side="LONG",
            target_size=1.0,
            metadata=metadata,
        )
    )
    assert (out.accepted, out.diagnostic_code) == (False, "INVALID_INTENT")
    assert out.details["field"] == "metadata" and "at most 32" in out.details["reason"]
    assert kernel.checkpoint() == before
