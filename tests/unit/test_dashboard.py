"""Frames of `dita watch`, rendered from the documents a real kernel writes.

The documents come from an `ExecutionKernel` trading against the mock venue:
its slots and account as JSON built in Rust (what the projection writer puts
into the maps), its `dita.kernels` entry as the writer sends it.
"""

from __future__ import annotations

import io
import json
import re
import time
from typing import Any

import pytest

from dita.commands.watch import Screen
from dita.contracts import KernelIntent
from dita.dashboard import Outage, Settings, clock, kernel_state, pnl, price, render, size
from dita.kernel import ExecutionKernel
from dita.projection.reader import ProjectionView
from dita.venue import MockVenueAdapter

NOW = 1_800_000_000.0


def table(screen: str, title: str) -> list[dict[str, str]]:
    """The rows of the table under the section whose title starts with `title`, as
    {column: cell}; cells are split on runs of two or more spaces."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    body: list[str] = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        body.append(line)
    if not body or not body[0].startswith("  ") or body[0].strip() in ("none", "none in the cluster"):
        return []
    header = re.split(r" {2,}", body[0].strip())
    rows = [line for line in body[1:] if not line.strip().startswith("…")]
    return [dict(zip(header, re.split(r" {2,}", line.strip()), strict=False)) for line in rows]


def trading_kernel(kernel_id: str = "K1") -> ExecutionKernel:
    kernel = ExecutionKernel(max_slots=4, kernel_id=kernel_id, venue=MockVenueAdapter(partial_fills=1))
    kernel.set_seed_capital(10_000.0)
    kernel.set_exchange_config(
        {"taker_rate": 0.0005, "maker_rate": 0.0002, "lot_step": 0.001, "tick_size": 0.1}
    )
    for slot_id, (trade, asset, side, ref) in enumerate(
        [("t-long", "BTC-PERP", "LONG", 60_000.0), ("t-short", "ETH-PERP", "SHORT", 3_000.0)]
    ):
        outcome = kernel.process_intent(
            KernelIntent(
                action="ENTER", slot_id=slot_id, trade_id=trade, asset=asset, side=side,
                target_size=1.0, reference_price=ref, exit_leg_ratios=(0.5, 0.5),
            )
        )  # fmt: skip
        assert outcome.accepted, outcome
    kernel.mark_price("BTC-PERP", 60_500.0)
    kernel.mark_price("ETH-PERP", 2_990.0)
    # A third trade entered and closed again: a CLOSED slot is not an open one.
    kernel.process_intent(
        KernelIntent(action="ENTER", slot_id=2, trade_id="t-done", asset="BTC-PERP", side="LONG",
                     target_size=0.5, reference_price=60_500.0, exit_leg_ratios=(1.0,))
    )  # fmt: skip
    assert kernel.process_intent(KernelIntent(action="EXIT", slot_id=2)).accepted
    assert kernel.slot(2).fsm_state.value == "CLOSED"
    return kernel


def documents(kernel: ExecutionKernel) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    kernel.mark_all_changed()
    slots, account = kernel.drain_documents()
    assert account is not None
    return [json.loads(doc) for _, _, doc in slots], json.loads(account[1])


def status(kernel: ExecutionKernel, *, heartbeat_at: float = NOW - 0.4, **changes: Any) -> dict[str, Any]:
    """The kernel's `dita.kernels` entry as the projection writer sends it."""
    stats = {
        "writes": 40,
        "batches": 12,
        "errors": 0,
        "resyncs": 0,
        "last_error": "",
        "last_write_at": heartbeat_at,
        "lag_ms_p50": 3.5,
        "lag_ms_max": 9.0,
        "backlog": 3,
        "in_flight": 1,
        "connected": True,
        "generation": 0,
        "partition_count": 271,
    }
    return {**kernel.status(), "heartbeat_at": heartbeat_at, "projection": stats, **changes}


def view_of(*kernels: ExecutionKernel, read_at: float = NOW, **maps: Any) -> ProjectionView:
    slots: list[dict[str, Any]] = []
    accounts: dict[str, dict[str, Any]] = {}
    for kernel in kernels:
        kernel_slots, account = documents(kernel)
        slots.extend(kernel_slots)
        accounts[kernel.kernel_id] = account
    return ProjectionView(
        kernels=maps.get("kernels", {k.kernel_id: status(k, heartbeat_at=read_at - 0.4) for k in kernels}),
        slots=maps.get("slots", slots),
        accounts=maps.get("accounts", accounts),
        control=maps.get("control", {}),
        read_at=read_at,
        took_s=0.004,
    )


def test_a_running_kernel_its_open_slots_with_pnl_and_its_account() -> None:
    kernel = trading_kernel()
    view = view_of(kernel)
    screen = render(view, now=NOW, settings=Settings(source="cluster 'dita' at 127.0.0.1:5701")).text()

    assert screen.splitlines()[0].startswith("dita watch · cluster 'dita' at 127.0.0.1:5701")
    assert f"live: read at {clock(NOW)}" in screen
    [row] = table(screen, "KERNELS")
    assert row["KERNEL"] == "K1" and row["STATE"] == "RUNNING"
    assert row["MODE"] == "ACTIVE" and row["VERBOSITY"] == "NORMAL"
    assert row["HEARTBEAT"] == "0.4s" and row["BACKLOG"] == "3" and row["LAG p50/max ms"] == "3.5/9.0"
    assert row["CONTROL"] == "ok"

    open_slots = table(screen, "OPEN SLOTS")
    assert [r["TRADE"] for r in open_slots] == ["t-long", "t-short"], "the CLOSED slot is not listed"
    by_trade = {r["TRADE"]: r for r in open_slots}
    for slot_id in (0, 1):
        slot = kernel.slot(slot_id)
        shown = by_trade[slot.trade_id]
        assert shown["KERNEL"] == "K1" and shown["SLOT"] == str(slot_id)
        assert shown["ASSET"] == slot.asset and shown["SIDE"] == slot.side.value
        assert shown["SIZE"] == size(slot.size) and shown["ENTRY"] == price(slot.entry_price)
        assert shown["UNREALIZED"] == pnl(slot.unrealized_pnl) and shown["REALIZED"] == pnl(slot.realized_pnl)
        assert shown["STAGE"] == "POSITION_OPEN"
    assert by_trade["t-long"]["UNREALIZED"] == "+500.00" and by_trade["t-short"]["UNREALIZED"] == "+10.00"

    [account] = table(screen, "ACCOUNTS")
    assert account["KERNEL"] == "K1" and account["RECONCILE"] == "UNKNOWN"
    assert account["EQUITY"] == f"{kernel.account['equity']:,.2f}"
    totals = screen.splitlines()[2:4]
    assert "kernels 1 (1 RUNNING)" in totals[0] and "open slots 2: unrealized +510.00" in totals[0]
    assert "OUT OF RECONCILE" not in screen
    assert not any(line.alert for line in render(view, now=NOW).lines), "nothing here needs an operator"


def test_an_account_out_of_reconcile_is_an_alert_with_its_delta() -> None:
    kernel = trading_kernel()
    answer = kernel.on_account_event({"kind": "ACCOUNT_UPDATE", "event_id": "a1", "wallet_balance": 9_000.0})
    assert answer["reconcile_status"] == "ERROR"
    frame = render(view_of(kernel), now=NOW)
    [account] = table(frame.text(), "ACCOUNTS")
    assert account["RECONCILE"] == "ERROR"
    assert account["DELTA"] == f"{answer['reconcile_delta']:,.2f}" and account["E WALLET"] == "9,000.00"
    assert account["WHY"].startswith("K 9")
    alerts = [line.text for line in frame.lines if line.alert]
    assert any(text.strip().startswith("K1") and "ERROR" in text for text in alerts)
    assert any("1 OUT OF RECONCILE" in text for text in alerts)


@pytest.mark.parametrize(
    ("entry", "state", "alert"),
    [
        ({"heartbeat_at": NOW - 4.0}, "RUNNING", False),
        ({"heartbeat_at": NOW - 30.0}, "STALE", True),
        ({"heartbeat_at": NOW - 30.0, "state": "STOPPED"}, "STOPPED", False),
        (None, "GONE", True),
    ],
)
def test_kernel_states_from_the_heartbeat(entry: dict[str, Any] | None, state: str, alert: bool) -> None:
    kernel = trading_kernel()
    kernels = {} if entry is None else {"K1": status(kernel, **entry)}
    frame = render(view_of(kernel, kernels=kernels), now=NOW, settings=Settings(stale_after=5.0))
    [row] = table(frame.text(), "KERNELS")
    assert row["STATE"] == state
    kernel_line = next(line for line in frame.lines if line.text.startswith("  K1 "))
    assert kernel_line.alert is alert
    if entry is not None:
        assert row["HEARTBEAT"] == ("4.0s" if state == "RUNNING" else "30s")
    assert kernel_state(kernels.get("K1"), NOW, 5.0) == state


def test_stale_data_banner_keeps_the_last_data_and_says_how_old_it_is() -> None:
    kernel = trading_kernel()
    view = view_of(kernel, read_at=NOW - 12.0)
    went_down = NOW - 13.5
    frame = render(view, now=NOW, outage=Outage(since=went_down, error="ClientOfflineError: no connection"))
    banner = frame.lines[1]
    assert banner.alert
    assert f"cluster unreachable since {clock(went_down)}, showing data from 12 s ago" in banner.text
    assert "ClientOfflineError" in banner.text
    screen = frame.text()
    assert "live:" not in screen
    assert [r["TRADE"] for r in table(screen, "OPEN SLOTS")] == ["t-long", "t-short"], "last data kept"
    [row] = table(screen, "KERNELS")
    assert row["STATE"] == "STALE", "a beat 12 s old is stale, whatever the kernel last said"


def test_unreachable_before_any_read_says_so_and_shows_no_tables() -> None:
    frame = render(None, now=NOW, outage=Outage(since=NOW - 2, error="TimeoutError"))
    assert len(frame.lines) == 2 and frame.lines[1].alert
    assert f"cluster unreachable since {clock(NOW - 2)}, no data read yet (TimeoutError)" in frame.text()


def test_control_behind_or_refused_is_flagged_per_kernel() -> None:
    kernel = trading_kernel()
    by = {"author": "op@desk"}
    wanted = {
        "global": {"mode": "HALTED", "rev": 20, "reason": "venue incident", "issued_at": NOW - 3, **by},
        "kernel:K1": {"verbosity": "TRACE", "rev": 7, "reason": "", "issued_at": NOW - 60, **by},
    }
    report = {"revs": {"global": 19, "kernel:K1": 7}, "last_refusal": None, "refusals": 0}
    behind = status(kernel, control_report=report)
    screen = render(view_of(kernel, kernels={"K1": behind}, control=wanted), now=NOW).text()
    [row] = table(screen, "KERNELS")
    assert row["CONTROL"] == "behind global" and row["REVS global/own"] == "19/7"
    entries = {r["ENTRY"]: r for r in table(screen, "CONTROL")}
    assert entries["global"]["WANTS"] == "mode=HALTED (UNSIGNED)" and entries["global"]["REV"] == "20"
    assert entries["global"]["WRITTEN"] == "3.0s ago by op@desk: venue incident"
    assert entries["kernel:K1"]["WANTS"] == "verbosity=TRACE (UNSIGNED)"

    refused = status(
        kernel,
        control_report={**report, "last_refusal": {"key": "global", "rev": 20, "reason": "bad signature"}},
    )
    [row] = table(render(view_of(kernel, kernels={"K1": refused}, control=wanted), now=NOW).text(), "KERNELS")
    assert row["CONTROL"] == "REFUSED global"

    applied = status(kernel, control_report={**report, "revs": {"global": 20, "kernel:K1": 7}})
    [row] = table(render(view_of(kernel, kernels={"K1": applied}, control=wanted), now=NOW).text(), "KERNELS")
    assert row["CONTROL"] == "ok"


def test_kernels_filter_and_totals_across_kernels() -> None:
    k1, k2 = trading_kernel("K1"), trading_kernel("K2")
    view = view_of(k1, k2)
    screen = render(view, now=NOW).text()
    assert [r["KERNEL"] for r in table(screen, "KERNELS")] == ["K1", "K2"]
    assert "kernels 2 (2 RUNNING) · open slots 4: unrealized +1,020.00" in screen
    only = render(view, now=NOW, settings=Settings(kernel_ids=frozenset({"K2"}))).text()
    assert [r["KERNEL"] for r in table(only, "KERNELS")] == ["K2"]
    assert {r["KERNEL"] for r in table(only, "OPEN SLOTS")} == {"K2"}
    assert [r["KERNEL"] for r in table(only, "ACCOUNTS")] == ["K2"]


def test_a_frame_fits_the_terminal_shortening_open_slots_first() -> None:
    kernel = trading_kernel()
    slots, _ = documents(kernel)
    many = [{**slots[0], "slot_id": i, "key": f"K1:{i}", "trade_id": f"t{i}"} for i in range(200)]
    frame = render(view_of(kernel, slots=many), now=NOW, settings=Settings(width=60, height=30))
    assert len(frame.lines) == 30
    assert all(len(line.text) <= 60 for line in frame.lines)
    screen = frame.text()
    assert [r["KERNEL"] for r in table(screen, "KERNELS")] == ["K1"], "kernels are kept whole"
    more = [line for line in screen.splitlines() if "more open slots" in line]
    shown = len(table(screen, "OPEN SLOTS"))
    assert len(more) == 1 and f"… {200 - shown} more open slots" in more[0]
    assert len(render(view_of(kernel, slots=many), now=NOW).lines) > 200, "no height: every slot"


def test_documents_of_other_writers_missing_fields_never_stop_the_dashboard() -> None:
    view = ProjectionView(
        kernels={"odd": {"state": "RUNNING", "heartbeat_at": "yesterday", "control": "ACTIVE"}},
        slots=[{"kernel_id": "odd", "fsm_state": "POSITION_OPEN", "size": "big"}],
        accounts={"odd": {"reconcile_status": "WARN", "equity": None}},
        control={"global": {"rev": "x"}},
        read_at=time.time(),
        unreadable=2,
    )
    frame = render(view, now=view.read_at)
    screen = frame.text()
    [row] = table(screen, "KERNELS")
    assert row["STATE"] == "STALE" and row["HEARTBEAT"] == "?"
    [slot] = table(screen, "OPEN SLOTS")
    assert slot["SIZE"] == "?" and slot["TRADE"] == "?"
    assert any(
        "2 value(s) in dita's maps are not JSON objects" in line.text for line in frame.lines if line.alert
    )


def test_a_terminal_is_redrawn_in_place_and_a_pipe_gets_one_frame_after_another() -> None:
    frame = render(view_of(trading_kernel(), kernels={}), now=NOW)
    assert any(line.alert for line in frame.lines), "a GONE kernel is an alert"

    terminal = io.StringIO()
    screen = Screen(terminal, in_place=True, colour=True)
    screen.draw(frame)
    screen.draw(frame)
    first, second = terminal.getvalue().split("\x1b[H")[1:]
    screen.close()
    assert terminal.getvalue().startswith("\x1b[?25l\x1b[2J"), "cursor hidden, screen cleared once"
    assert first == second, "each frame overwrites the last from the top"
    assert first.endswith("\x1b[J") and not first.endswith("\n\x1b[J"), (
        "no newline: a full screen never scrolls"
    )
    assert terminal.getvalue().endswith("\x1b[?25h\n"), "the cursor comes back at the end"
    alert = next(line for line in frame.lines if line.alert)
    assert f"\x1b[1;31m{alert.text}\x1b[0m\x1b[K" in first

    pipe = io.StringIO()
    plain = Screen(pipe, in_place=False, colour=False)
    plain.draw(frame)
    plain.draw(frame)
    plain.close()
    assert pipe.getvalue() == (frame.text() + "\n\n") * 2, "plain text, no escapes, a blank line between"
    assert plain.size() == (None, None), "frames into a pipe are never cut"


def test_unsigned_holding_and_never_read_kernels_are_marked() -> None:
    kernel = trading_kernel()
    wanted = {"global": {"mode": "HALTED", "rev": 20, "issued_at": NOW - 3, "signature": "ab" * 32}}
    signed = status(kernel, control_report={"revs": {"global": 20}, "signed": True, "control_read_at": NOW})
    [row] = table(render(view_of(kernel, kernels={"K1": signed}, control=wanted), now=NOW).text(), "KERNELS")
    assert (row["CONTROL"], row["SIGNING"]) == ("ok", "signed")
    screen = render(view_of(kernel, control=wanted), now=NOW).text()
    entries = {r["ENTRY"]: r for r in table(screen, "CONTROL")}
    assert entries["global"]["WANTS"] == "mode=HALTED"
    unsigned = status(kernel, control_report={"revs": {}, "signed": False, "control_read_at": NOW})
    [row] = table(render(view_of(kernel, kernels={"K1": unsigned}, control={}), now=NOW).text(), "KERNELS")
    assert row["SIGNING"] == "UNSIGNED"
    held = {"global": {"rev": 20, "mode": "HALTED", "why": "control map has no entry"}}
    holding = status(kernel, control_report={"revs": {"global": 20}, "held": held, "control_read_at": NOW})
    [row] = table(render(view_of(kernel, kernels={"K1": holding}, control={}), now=NOW).text(), "KERNELS")
    assert row["CONTROL"] == "HOLDING global"
    never = status(kernel, control_report={"revs": {}, "control_read_at": None})
    [row] = table(render(view_of(kernel, kernels={"K1": never}, control={}), now=NOW).text(), "KERNELS")
    assert row["CONTROL"] == "never read"
