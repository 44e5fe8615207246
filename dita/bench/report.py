"""The benchmark report: what each benchmark found, as JSON and as Markdown.

A benchmark hands back a `Section`: tables for people, `Figure`s (a
measure or a ratio, with the target the issues set where there is one) and
every number it measured as `data`, for the JSON. The report puts the
machine first, because numbers mean nothing without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Log = Callable[[str], None]

#: Bumped when a field of the JSON report changes meaning or moves.
REPORT_FORMAT = 1
#: The unit of a figure that is a ratio of two measures.
RATIO = "x"


class BenchSkipped(Exception):
    """A benchmark cannot run on this machine (no Java for a member, say); the message says why."""


@dataclass
class Table:
    """A Markdown table; every column but the first is right-aligned (they hold numbers)."""

    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)

    def markdown(self) -> list[str]:
        align = ["---"] + ["---:"] * (len(self.columns) - 1)
        lines = ["| " + " | ".join(self.columns) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows": [list(r) for r in self.rows]}


@dataclass
class Figure:
    """One headline number: a measure (`unit` "µs", "ms", "s", "MiB", "calls/s")
    or a ratio (`unit` RATIO, shown as a multiplication sign). `target` is an
    upper bound the issues set; met when the value is at or under it."""

    name: str
    value: float
    unit: str
    target: float | None = None

    @property
    def met(self) -> bool | None:
        if self.target is None or not math.isfinite(self.value):
            return None
        return self.value <= self.target

    def text(self) -> str:
        line = f"{self.name}: {number(self.value, self.unit)}"
        if self.target is not None:
            verdict = {True: "met", False: "not met", None: "not measured"}[self.met]
            line += f" (target ≤ {number(self.target, self.unit)}: {verdict})"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": finite(self.value),
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
        }


@dataclass
class Section:
    """What one benchmark found. `method` says in a paragraph what was measured and how."""

    name: str
    title: str
    method: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: why the benchmark did not run, or failed part way; None when it ran
    skipped: str | None = None

    def ratio(self, name: str, numerator: float, denominator: float, target: float | None = None) -> None:
        value = numerator / denominator if denominator else math.nan
        self.figures.append(Figure(name, value, RATIO, target))

    def markdown(self) -> list[str]:
        lines = [f"## {self.title}", ""]
        if self.skipped is not None:
            return [*lines, f"Not run: {self.skipped}", ""]
        lines += [self.method, ""]
        for table in self.tables:
            lines += [*table.markdown(), ""]
        if self.figures:
            lines += [f"- {f.text()}" for f in self.figures] + [""]
        lines += [f"{note}" for note in self.notes]
        if self.notes:
            lines.append("")
        lines += [f"_{self.seconds:.1f} s of wall time._", ""]
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "method": self.method,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "figures": [f.as_dict() for f in self.figures],
            "tables": [t.as_dict() for t in self.tables],
            "notes": list(self.notes),
            "data": finite_tree(self.data),
        }


@dataclass
class Report:
    machine: dict[str, Any]
    started_at: str
    finished_at: str
    quick: bool
    sections: list[Section]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "quick": self.quick,
            "machine": finite_tree(self.machine),
            "sections": {s.name: s.as_dict() for s in self.sections},
        }

    def markdown(self) -> str:
        m = self.machine
        lines = [
            "# dita benchmark report",
            "",
            f"Run {self.started_at} to {self.finished_at}"
            + (" with `--quick` (a smoke test: too short for numbers to quote)." if self.quick else "."),
            "",
            "| machine | |",
            "| --- | --- |",
        ]
        lines += [f"| {label} | {m.get(key, 'unknown')} |" for key, label in MACHINE_ROWS]
        lines.append("")
        for section in self.sections:
            lines += section.markdown()
        return "\n".join(lines).rstrip() + "\n"


MACHINE_ROWS = (
    ("cpu", "CPU"),
    ("cores", "cores"),
    ("memory", "memory"),
    ("os", "OS"),
    ("python", "Python"),
    ("rustc", "rustc"),
    ("hazelcast", "Hazelcast"),
    ("build", "native module"),
    ("load", "load average (1, 5, 15 min) at start"),
)


def number(value: float, unit: str = "") -> str:
    """A figure as a person reads it: thousands separated, digits by magnitude."""
    if not math.isfinite(value):
        return "n/a"
    if unit == RATIO:
        return (f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}") + "\N{MULTIPLICATION SIGN}"
    a = abs(value)
    text = f"{value:,.0f}" if a >= 1000 else f"{value:.1f}" if a >= 100 else f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def finite(value: float) -> float | None:
    """JSON has no NaN or infinity: a number that could not be measured is null."""
    return value if math.isfinite(value) else None


def finite_tree(value: Any) -> Any:
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dict):
        return {str(k): finite_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_tree(v) for v in value]
    return value
