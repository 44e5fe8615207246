"""Runs the chosen benchmarks one after another and gathers their sections into a report."""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from types import ModuleType

from dita.bench import NAMES, boundary, control, kernel, machine, memory, projection
from dita.bench.report import BenchSkipped, Log, Report, Section

MODULES: dict[str, ModuleType] = {m.NAME: m for m in (kernel, boundary, projection, control, memory)}
assert tuple(MODULES) == NAMES, "dita.bench.NAMES must list every benchmark module in order"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_suite(names: Sequence[str], *, quick: bool, log: Log) -> Report:
    """Every benchmark in `names` (in the order of NAMES). One that cannot run
    here, or fails, becomes a section that says why; the others still run."""
    described = machine.describe()
    started = _now()
    sections = []
    for name in NAMES:
        if name not in names:
            continue
        module = MODULES[name]
        t0 = time.monotonic()
        log(f"{name}: start")
        try:
            section: Section = module.run(quick, log)
        except BenchSkipped as e:
            section = Section(name, module.TITLE, "", skipped=str(e))
        except Exception as e:
            for line in traceback.format_exc().rstrip().splitlines():
                log(f"{name}: {line}")
            section = Section(name, module.TITLE, "", skipped=f"failed: {type(e).__name__}: {e}")
        section.seconds = time.monotonic() - t0
        log(f"{name}: {'done' if section.skipped is None else section.skipped} ({section.seconds:.1f} s)")
        sections.append(section)
    return Report(described, started, _now(), quick, sections)
