"""`dita bench`: the reports are complete and well-formed, and bad flags are one clear line.

The numbers themselves are the benchmark's business, not a test's: these
tests check that every section, figure and table is there and holds numbers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dita import _native
from dita.cli import main

SECTIONS = {
    "kernel": "## Kernel through the Python API",
    "boundary": "## The earlier design's boundary, modelled",
    "memory": "## Resident memory per 1,000 slots",
}
MACHINE = ("cpu", "cores", "memory", "os", "python", "rustc", "hazelcast")


def dita(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DITA_")}
    return subprocess.run(
        [sys.executable, "-m", "dita.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,  # a generous "does not hang": the quick run takes well under a minute
        env=env,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    where = tmp_path_factory.mktemp("bench")
    done = dita("bench", "--quick", "--only", *SECTIONS, "--json", "r.json", "--markdown", "r.md", cwd=where)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, where


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def a_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_the_json_report_has_the_machine_and_every_section_asked_for(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, where = quick_run
    report = strict_json((where / "r.json").read_text())
    assert report["quick"] is True
    for key in MACHINE:
        assert isinstance(report["machine"][key], str) and report["machine"][key], key
    assert list(report["sections"]) == list(SECTIONS)
    for name, section in report["sections"].items():
        assert section["skipped"] is None, (name, section["skipped"])
        assert section["method"] and section["tables"] and section["figures"], name
        for figure in section["figures"]:
            assert figure["name"] and figure["unit"], (name, figure)
            assert a_number(figure["value"]), (name, figure)
        for table in section["tables"]:
            assert table["rows"], name
            assert all(len(row) == len(table["columns"]) for row in table["rows"]), name


def test_the_kernel_section_covers_every_slot_count_and_run(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, where = quick_run
    kernel = strict_json((where / "r.json").read_text())["sections"]["kernel"]
    runs = {(r["name"].split(" (")[0], r["slots"]): r for r in kernel["data"]["results"]}
    for slots in (10, 1_000, 10_000):
        for name in ("kernel alone", "reference model", "kernel + mock venue"):
            r = runs[(name, slots)]
            assert r["calls"] > 0 and a_number(r["calls_per_s"]), (name, slots)
            assert 0 < r["median_us"] <= r["p99_us"], (name, slots)
    ratios = [f["name"] for f in kernel["figures"] if f["unit"] == "x"]
    for wanted in ("kernel alone, 1,000 / 10", "kernel alone, 10,000 / 10", "reference model / kernel"):
        assert any(name.startswith(wanted) for name in ratios), wanted


def test_the_boundary_and_memory_sections_hold_their_measures(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, where = quick_run
    sections = strict_json((where / "r.json").read_text())["sections"]
    boundary = sections["boundary"]["data"]["sizes"]
    assert [b["slots"] for b in boundary] == [10, 1_000, 10_000]
    for b in boundary:
        assert b["boundary_model"]["calls"] > 0 and b["boundary_model"]["median_us"] > 0
        assert b["kernel"]["calls"] > 0 and b["kernel"]["median_us"] > 0
    measures = sections["memory"]["data"]["measures"]
    assert {(m["kind"], m["slots"]) for m in measures} == {
        (kind, slots) for kind in ("native", "execution") for slots in (1_000, 10_000)
    }
    for m in measures:
        assert all(
            a_number(m[k]) for k in ("before", "created", "after_round", "after_round_mib_per_1000_slots")
        )


def test_the_markdown_report_is_printed_and_has_every_section(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, where = quick_run
    markdown = (where / "r.md").read_text()
    assert done.stdout == markdown
    assert markdown.startswith("# dita benchmark report")
    for row in ("| CPU |", "| cores |", "| memory |", "| OS |", "| Python |", "| rustc |", "| Hazelcast |"):
        assert row in markdown, row
    positions = [markdown.index(heading) for heading in SECTIONS.values()]
    assert positions == sorted(positions)
    assert "| run | slots | calls | median µs/call | p99 µs/call | calls/s |" in markdown
    assert "| 10,000 |" in markdown
    assert "not the old code" in markdown
    assert "\N{MULTIPLICATION SIGN}" in markdown and "n/a" not in markdown


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--only", "kernel", "kernal"], "invalid choice: 'kernal'"),
        (["--json", "no/such/dir/r.json"], "--json no/such/dir/r.json: directory no/such/dir does not exist"),
        (["--json", "same.out", "--markdown", "same.out"], "--json and --markdown are both same.out"),
    ],
)
def test_bad_flags_are_one_clear_line_and_write_nothing(args: list[str], says: str, tmp_path: Path) -> None:
    done = dita("bench", *args, cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_debug_build_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_native, "BUILD_PROFILE", "debug", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quick", "--only", "memory"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "debug build" in err[0] and "release" in err[0]
    assert list(tmp_path.iterdir()) == []
