"""DEAD in the dashboard: a RUNNING entry silent past `dead_after`, told from STALE and STOPPED."""

from __future__ import annotations

from typing import Any

import pytest

from dita.dashboard import DEAD_AFTER_S, STALE_AFTER_S, Settings, kernel_state, render
from tests.unit.test_dashboard import NOW, status, table, trading_kernel, view_of


@pytest.mark.parametrize(
    ("entry", "state"),
    [
        ({"heartbeat_at": NOW - 1.0}, "RUNNING"),
        ({"heartbeat_at": NOW - 10.0}, "STALE"),
        ({"heartbeat_at": NOW - 31.0}, "DEAD"),
        ({"heartbeat_at": NOW - 7 * 86_400.0}, "DEAD"),
        ({"heartbeat_at": NOW - 3_600.0, "state": "STOPPED"}, "STOPPED"),
        ({"heartbeat_at": "yesterday"}, "STALE"),
        (None, "GONE"),
    ],
)
def test_a_kernel_silent_past_dead_after_is_dead_and_an_alert(
    entry: dict[str, Any] | None, state: str
) -> None:
    kernel = trading_kernel()
    kernels = {} if entry is None else {"K1": status(kernel, **entry)}
    settings = Settings(stale_after=STALE_AFTER_S, dead_after=DEAD_AFTER_S)
    frame = render(view_of(kernel, kernels=kernels), now=NOW, settings=settings)
    [row] = table(frame.text(), "KERNELS")
    assert row["STATE"] == state
    assert kernel_state(kernels.get("K1"), NOW, STALE_AFTER_S, DEAD_AFTER_S) == state
    kernel_line = next(line for line in frame.lines if line.text.startswith("  K1 "))
    assert kernel_line.alert is (state in ("STALE", "DEAD", "GONE"))
    if state == "DEAD":
        assert "1 DEAD" in frame.lines[2].text, frame.lines[2].text


def test_without_a_dead_bound_a_silent_kernel_stays_stale() -> None:
    assert kernel_state({"state": "RUNNING", "heartbeat_at": NOW - 3_600.0}, NOW, STALE_AFTER_S) == "STALE"
