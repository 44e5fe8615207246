"""`dita bench`: every benchmark, run on this machine's release build, in one report.

It writes the report as JSON (for machines) and Markdown (for people, also
printed), each stating the machine it ran on; progress goes to stderr. The
benchmarks themselves are `dita.bench`; those that need Hazelcast start a
loopback member of their own and stop it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from dita.bench import NAMES

DEFAULT_JSON = "bench-report.json"
DEFAULT_MARKDOWN = "bench-report.md"


def run_bench(args: argparse.Namespace) -> int:
    from dita.bench.machine import build_profile

    profile = build_profile()
    if profile != "release":
        raise ValueError(
            f"the native module is a {profile} build: dita bench measures release builds only "
            "(`pip install .` or `make setup` builds one)"
        )
    json_path, markdown_path = Path(args.json), Path(args.markdown)
    _check_output(json_path, "--json")
    _check_output(markdown_path, "--markdown")
    if json_path.resolve() == markdown_path.resolve():
        raise ValueError(f"--json and --markdown are both {args.json}: give two files")
    names = [name for name in NAMES if name in (args.only or NAMES)]

    from dita.bench.suite import run_suite

    began = time.monotonic()

    def progress(line: str) -> None:
        print(f"dita bench [{time.monotonic() - began:6.1f} s] {line}", file=sys.stderr, flush=True)

    report = run_suite(names, quick=args.quick, log=progress)
    markdown = report.markdown()
    json_path.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    markdown_path.write_text(markdown)
    print(markdown, end="")
    not_run = [s.name for s in report.sections if s.skipped is not None]
    progress(f"wrote {json_path} and {markdown_path}")
    if not_run:
        progress(f"not run: {', '.join(not_run)} (the report says why)")
        return 1
    return 0


def _check_output(path: Path, flag: str) -> None:
    """Before minutes of benchmarks: the report must have somewhere to go."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a directory, give a file")
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{flag} {path}: not writable")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="run every benchmark on this machine and write a JSON and a Markdown report",
        description=(
            "Run dita's benchmarks on this machine's release build: the kernel at 10, 1,000 and 10,000 "
            "slots against the reference model and with the mock venue, a model of the earlier design's "
            "JSON boundary, the Hazelcast projection (lag, overhead, highest rate, convergence after a "
            "member restart), control propagation to 1 and 8 kernels, and resident memory per 1,000 "
            "slots. Every comparison is measured in one run. The projection and control benchmarks start "
            "a loopback Hazelcast member of their own (Java 17+). The full run takes several minutes; "
            "the Markdown report is also printed, progress goes to stderr. Exit 1 when a benchmark could "
            "not run (the report says why)."
        ),
    )
    p.add_argument(
        "--json", default=DEFAULT_JSON, metavar="FILE", help=f"the JSON report (default {DEFAULT_JSON})"
    )
    p.add_argument(
        "--markdown",
        default=DEFAULT_MARKDOWN,
        metavar="FILE",
        help=f"the Markdown report (default {DEFAULT_MARKDOWN})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a short run, seconds per part: a smoke test, too short for numbers to quote",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=NAMES,
        metavar="NAME",
        help=f"run only these benchmarks, of: {', '.join(NAMES)} (default: all)",
    )
    p.set_defaults(func=run_bench)
