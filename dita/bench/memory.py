"""Resident memory of kernels of 1,000 and 10,000 slots.

Each measure runs in a fresh process (`python -m dita.bench.memory KIND SLOTS`)
so that nothing else the benchmark did lives in its heap: the process
imports what it needs, reads its resident set size, creates the kernel,
reads it again, drives one round of the benchmark scenario on it (every
slot trades; the steps are made one at a time from the kernel's answers, so
no prepared list sits in memory), and reads it a third time. Two kinds: the
native kernel alone (`dita._native.Kernel`: slots, indices, account, change
tracking) and an `ExecutionKernel` (the native kernel plus its Python slot
views, with a venue that answers nothing and no projection).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

from dita._native import Kernel
from dita.bench.kernel import Step, apply_native, play_round
from dita.bench.report import Figure, Log, Section, Table
from dita.kernel import ExecutionKernel
from dita.venue import SilentVenue

NAME = "memory"
TITLE = "Resident memory per 1,000 slots"
KINDS = ("native", "execution")
SLOT_COUNTS = (1_000, 10_000)
MIB = 2**20


def rss_bytes() -> tuple[int, str]:
    """This process's resident set now, and where the figure comes from."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        resident_pages = int(statm.read_text().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE"), "/proc/self/statm"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is kilobytes on Linux, bytes on macOS; and a peak, not the current size.
    return (peak if sys.platform == "darwin" else peak * 1024), "getrusage peak"


class _NoProjection:
    """A projection that keeps nothing: the measure is the kernel's memory, not a mirror's."""

    def attach(self, source: Any) -> None: ...

    def detach(self, kernel_id: str) -> None: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, Any]:
        return {"writes": 0, "errors": 0, "backlog": 0}


def apply_execution(kernel: ExecutionKernel, step: Step) -> str:
    """One scenario step through `ExecutionKernel`, which submits the orders itself."""
    kind, payload = step
    if kind == "intent":
        out = kernel.process_intent(payload)
        return str(out.order.venue_client_id) if out.order is not None else ""
    if kind == "event":
        kernel.on_venue_event(payload)
    else:
        kernel.mark_price(*payload)
    return ""


def child(kind: str, slots: int) -> dict[str, Any]:
    """The measure itself, in the fresh process (everything it needs is imported by now)."""
    gc.collect()
    before, source = rss_bytes()
    owner: Kernel | ExecutionKernel
    if kind == "native":
        owner = Kernel(slots)
        perform = partial(apply_native, owner)
    else:
        owner = ExecutionKernel(
            max_slots=slots, kernel_id="bench-memory", venue=SilentVenue(), projection=_NoProjection()
        )
        perform = partial(apply_execution, owner)
    gc.collect()
    created, _ = rss_bytes()
    play_round(slots, 0, perform)
    gc.collect()
    after, _ = rss_bytes()
    if {str(s["fsm_state"]) for s in owner.snapshot()["slots"]} != {"CLOSED"}:
        raise RuntimeError("the memory round must close every trade it opens")
    return {
        "kind": kind,
        "slots": slots,
        "before": before,
        "created": created,
        "after_round": after,
        "source": source,
    }


def measure_in_subprocess(kind: str, slots: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "dita.bench.memory", kind, str(slots)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the memory measure of {kind} at {slots} slots failed: {tail}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def run(quick: bool, log: Log) -> Section:
    # One round at 10,000 slots takes seconds; --quick changes nothing here.
    found = []
    for kind in KINDS:
        for slots in SLOT_COUNTS:
            log(f"memory: {kind} kernel of {slots:,} slots, in a fresh process")
            found.append(measure_in_subprocess(kind, slots))
    for f in found:
        per = f["slots"] / 1_000
        f["created_mib"] = (f["created"] - f["before"]) / MIB
        f["after_round_mib"] = (f["after_round"] - f["before"]) / MIB
        f["created_mib_per_1000_slots"] = f["created_mib"] / per
        f["after_round_mib_per_1000_slots"] = f["after_round_mib"] / per
    labels = {"native": "native kernel (dita._native.Kernel)", "execution": "ExecutionKernel (no projection)"}
    section = Section(
        NAME,
        TITLE,
        "Resident set size of a fresh process before and after creating a kernel, and after one round "
        "of the benchmark scenario on it (every slot enters, fills, exits in two legs, one leg "
        "cancelled and sent again: the kernel then remembers event ids, orders and fills for every "
        "slot). *Native kernel* is `dita._native.Kernel` alone; *ExecutionKernel* adds the Python "
        "slot views, with a venue that answers nothing and no projection.",
    )
    section.tables.append(
        Table(
            ("kernel", "slots", "created MiB", "after a round MiB", "MiB per 1,000 slots after a round"),
            [
                [
                    labels[f["kind"]],
                    f"{f['slots']:,}",
                    f"{f['created_mib']:.2f}",
                    f"{f['after_round_mib']:.2f}",
                    f"{f['after_round_mib_per_1000_slots']:.2f}",
                ]
                for f in found
            ],
        )
    )
    by = {(f["kind"], f["slots"]): f for f in found}
    small, large = SLOT_COUNTS
    marginal: dict[str, float] = {}
    for kind in KINDS:
        a, b = by[(kind, small)], by[(kind, large)]
        marginal[kind] = (b["after_round_mib"] - a["after_round_mib"]) / ((large - small) / 1_000)
        section.figures.append(
            Figure(
                f"{labels[kind]}: MiB each further 1,000 slots add "
                f"(after a round, {small:,} to {large:,} slots)",
                marginal[kind],
                "MiB",
            )
        )
        section.ratio(
            f"{labels[kind]}: MiB per 1,000 slots at {large:,} / at {small:,} slots (after a round)",
            b["after_round_mib_per_1000_slots"],
            a["after_round_mib_per_1000_slots"],
        )
    section.notes.append(
        "The marginal figure, from the difference between the two sizes, leaves out what the process "
        "holds whatever the size; the small kernel's own figure reads low because part of it fits in "
        "heap the imports had already taken and freed. Resident set from "
        f"{found[0]['source']}."
    )
    section.data = {"measures": found, "marginal_mib_per_1000_slots": marginal}
    return section


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]))))
