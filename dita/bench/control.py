"""Control propagation, on a loopback member of its own.

For 1 and for 8 kernel processes, each flip of the global mode between
HALTED and ACTIVE (signed) measures, per kernel: from the entry's issue to
the kernel applying it, and for a HALT to its kill switch having sent the
cancels of every working order (both on the kernel's clock, read from its
report in `dita.kernels`); and the operator's whole `set --wait` call
(reading the entry, the write, the history record, the verdicts). Then
unsigned writes, which the kernels refuse: how long `--wait` takes to name
the refusal. Each kernel process is `dita run` with the control key (the
demo strategy trading against the mock venue five steps a second, as a
kernel waiting on market data would, with its projection and listener on).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any

from dita.bench.member import local_member
from dita.bench.report import Log, Section, Table
from dita.bench.timing import percentile
from dita.controlplane.operator import ControlOperator
from dita.projection.hazelcast import connect

NAME = "control"
TITLE = "Control propagation"
CLUSTER = "dita-bench-control"
KERNEL_COUNTS = (1, 8)


@dataclass(frozen=True)
class Plan:
    flips: int  # mode flips per kernel count


FULL = Plan(flips=100)
QUICK = Plan(flips=6)
REFUSALS = 10
CONTROL_KEY = b"dita-bench-control-key"


@dataclass
class KernelProcess:
    kernel_id: str
    proc: subprocess.Popen[bytes]
    #: its stderr: a file, not a pipe nobody reads (which would fill and block the kernel)
    log: IO[bytes]

    def last_line(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"


def start_kernels(n: int, members: list[str], cluster: str, files: ExitStack) -> list[KernelProcess]:
    # The person's own DITA_* settings (a metrics port, a start mode, a control
    # key) must not change the kernels being measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DITA_")}
    env.update(
        {
            "DITA_HAZELCAST": ",".join(members),
            "DITA_CLUSTER": cluster,
            "DITA_CONTROL_KEY": CONTROL_KEY.decode(),
        }
    )
    started = []
    for i in range(n):
        kernel_id = f"cb-{n}-{i}"
        log = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - the stack closes it
        command = [sys.executable, "-m", "dita.cli", "run", "--kernel-id", kernel_id, "--steps", "0"]
        # Orders rest at the venue until cancelled, so that every HALT has orders to pull.
        command += ["--duration", "900", "--interval", "0.2", "--slots", "8", "--venue", "resting"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        started.append(KernelProcess(kernel_id, proc, log))
    return started


def stop_kernels(kernels: list[KernelProcess]) -> None:
    for k in kernels:
        if k.proc.poll() is None:
            k.proc.send_signal(signal.SIGTERM)
    for k in kernels:
        try:
            k.proc.wait(60)
        except subprocess.TimeoutExpired:
            k.proc.kill()
            k.proc.wait()


def wait_running(client: Any, kernels: list[KernelProcess], timeout: float = 180) -> None:
    statuses = client.get_map("dita.kernels").blocking()
    ids = {k.kernel_id for k in kernels}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for k in kernels:
            if k.proc.poll() is not None:
                raise RuntimeError(
                    f"kernel {k.kernel_id} (dita run) exited with {k.proc.returncode} before it ran: "
                    f"{k.last_line()}"
                )
        up = {
            str(key) for key, v in statuses.entry_set() if json.loads(v.to_string()).get("state") == "RUNNING"
        }
        if ids <= up:
            return
        time.sleep(0.1)
    raise RuntimeError(f"kernels did not report RUNNING within {timeout:g} s: {sorted(ids)}")


def measure(client: Any, n: int, flips: int) -> dict[str, Any]:
    operator = ControlOperator(client, control_key=CONTROL_KEY, author="dita-bench")
    applies: list[float] = []
    cancels: list[float] = []
    cancels_sent = 0
    totals = []
    kernels = client.get_map("dita.kernels").blocking()
    for i in range(flips):
        mode = "HALTED" if i % 2 == 0 else "ACTIVE"
        t0 = time.perf_counter()
        result = operator.set(mode=mode, reason=f"bench flip {i}", wait=True, timeout=10)
        totals.append((time.perf_counter() - t0) * 1e3)
        if len(result.applied) != n:
            verdicts = [(k.kernel_id, k.verdict.value, k.detail) for k in result.kernels]
            raise RuntimeError(f"flip {i}: {verdicts}")
        applies += [k.apply_ms for k in result.kernels if k.apply_ms is not None]
        if mode == "HALTED":
            for k in result.kernels:
                report = json.loads(kernels.get(k.kernel_id).to_string())["control_report"]
                killed = report.get("kill_switch") or {}
                if killed.get("rev") == result.rev:
                    cancels.append((killed["at"] - result.entry["issued_at"]) * 1e3)
                    cancels_sent += int(killed.get("cancels_sent", 0))
        time.sleep(0.05)
    refused, named = [], []
    intruder = ControlOperator(client, author="dita-bench-unsigned")
    for i in range(REFUSALS):
        t0 = time.perf_counter()
        result = intruder.set(verbosity="TRACE", reason=f"bench refusal {i}", wait=True, timeout=10)
        done = time.time()
        refused.append((time.perf_counter() - t0) * 1e3)
        if [k.verdict.value for k in result.kernels] != ["REFUSED"] * n:
            raise RuntimeError(f"refusal {i}: {[(k.kernel_id, k.verdict.value) for k in result.kernels]}")
        # From the last kernel's refusal (its clock) to --wait having named every one.
        last = max(
            json.loads(kernels.get(k.kernel_id).to_string())["control_report"]["last_refusal"]["at"]
            for k in result.kernels
        )
        named.append((done - last) * 1e3)
        time.sleep(0.05)
    return {
        "kernels": n,
        "flips": flips,
        "p50_ms": statistics.median(applies),
        "p99_ms": percentile(applies, 0.99),
        "max_ms": max(applies),
        "cancels_p50_ms": statistics.median(cancels) if cancels else float("nan"),
        "cancels_p99_ms": percentile(cancels, 0.99) if cancels else float("nan"),
        "cancels_sent": cancels_sent,
        "halts": len(cancels),
        "whole_set_p50_ms": statistics.median(totals),
        "refusal_p50_ms": statistics.median(refused),
        "refusal_max_ms": max(refused),
        "refusal_named_p50_ms": statistics.median(named),
        "refusal_named_max_ms": max(named),
    }


def run(quick: bool, log: Log) -> Section:
    plan = QUICK if quick else FULL
    results = []
    with local_member(CLUSTER, log) as member:
        members = [member.address]
        client = connect(members, CLUSTER)
        try:
            for n in KERNEL_COUNTS:
                log(f"control: starting {n} `dita run` kernel process(es)")
                with ExitStack() as files:
                    procs = start_kernels(n, members, CLUSTER, files)
                    try:
                        wait_running(client, procs)
                        time.sleep(1.0)  # past the kernels' start-up work
                        log(f"control: {plan.flips} mode flips to {n} kernel(s)")
                        results.append(measure(client, n, plan.flips))
                    finally:
                        stop_kernels(procs)
                # The next count's "every live kernel" must not wait for these.
                client.get_map("dita.kernels").blocking().clear()
        finally:
            client.shutdown()
    section = Section(
        NAME,
        TITLE,
        "Signed flips of the global mode between HALTED and ACTIVE (`ControlOperator.set(..., "
        "wait=True)`). *Apply* is, per kernel, from the entry's `issued_at` to the kernel applying it; "
        "*cancels sent* is, per kernel and HALT, to its kill switch having sent a cancel for every "
        "working order (both on the kernel's clock, from its report in `dita.kernels`). *Whole set* is "
        "the operator's whole call: reading the entry, the write, the history record and every kernel's "
        "verdict. *Refusal* is an unsigned write's whole `set --wait` until every kernel's REFUSED "
        "verdict is named; *refusal named* is from the last kernel's refusal to `--wait` naming it. "
        "Each kernel is a `dita run` process with the control key on a loopback "
        "member started for this benchmark, trading five steps a second against the mock venue, "
        "whose orders rest until cancelled (`--venue resting`).",
    )
    section.tables.append(
        Table(
            (
                "kernels",
                "flips",
                "apply p50 ms",
                "apply p99 ms",
                "cancels sent p50 ms",
                "cancels sent p99 ms",
                "cancels",
                "whole set p50 ms",
                "refusal p50 ms",
                "refusal max ms",
                "refusal named p50 ms",
                "refusal named max ms",
            ),
            [
                [
                    f"{r['kernels']}",
                    f"{r['flips']}",
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    f"{r['cancels_p50_ms']:.2f}",
                    f"{r['cancels_p99_ms']:.2f}",
                    f"{r['cancels_sent']}",
                    f"{r['whole_set_p50_ms']:.2f}",
                    f"{r['refusal_p50_ms']:.2f}",
                    f"{r['refusal_max_ms']:.2f}",
                    f"{r['refusal_named_p50_ms']:.2f}",
                    f"{r['refusal_named_max_ms']:.2f}",
                ]
                for r in results
            ],
        )
    )
    one, many = results[0], results[-1]
    section.ratio(
        f"propagation to {many['kernels']} / to {one['kernels']} kernel (p50)", many["p50_ms"], one["p50_ms"]
    )
    section.ratio(
        f"propagation to {many['kernels']} / to {one['kernels']} kernel (p99)", many["p99_ms"], one["p99_ms"]
    )
    section.data = {"plan": plan.__dict__, "results": results}
    return section
