"""Drill: one kernel process is SIGKILLed, another SIGTERMed. The cluster must tell them apart:
the killed one DEAD (in `dita watch` and in kernels_dead.sql) for as long as its state is in
the maps, the stopped one STOPPED.

`dita watch` takes short --stale-after/--dead-after bounds here, and the query is asked
about "now + 30 s", so the drill need not wait out the real bounds: the entries' TTLs,
read from the member, are what says they are still there by then.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dita.projection.reader import ProjectionReader
from tests.conftest import Cluster, reset_control, wait_until
from tests.integration.test_run_refused import ended, run
from tests.integration.test_watch import dita_env
from tests.unit.test_dashboard import table

pytestmark = pytest.mark.hazelcast

SQL = Path(__file__).resolve().parents[2] / "projections" / "sql"
NEVER = 2**63 - 1  # what a member reports as the TTL of an entry that does not expire
DAY_MS = 24 * 3600 * 1000


def statements(path: Path) -> list[str]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = cluster.client()
    reset_control(c)
    for statement in statements(SQL / "mappings.sql"):
        c.sql.execute(statement).result()
    yield c
    c.shutdown()


def watch_once(cluster: Cluster, *kernel_ids: str) -> dict[str, dict[str, str]]:
    args = [arg for kid in kernel_ids for arg in ("--kernel", kid)]
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "dita.cli",
            "watch",
            "--once",
            "--stale-after",
            "0.5",
            "--dead-after",
            "1.5",
            *args,
        ],
        env=dita_env(cluster),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return {row["KERNEL"]: row for row in table(shown.stdout, "KERNELS")}


def beating(reader: ProjectionReader, kid: str, pid: int) -> Callable[[], bool]:
    def check() -> bool:
        return (reader.kernel(kid) or {}).get("pid") == pid and reader.account(kid) is not None

    return check


def dead(client: Any, now: float) -> set[str]:
    [sql] = statements(SQL / "queries" / "kernels_dead.sql")
    return {row.get_object("kernel_id") for row in client.sql.execute(sql, *[now] * sql.count("?")).result()}


def test_a_killed_kernel_is_dead_and_a_stopped_one_is_stopped(cluster: Cluster, client: Any) -> None:
    killed, stopped = "drill-dead-1", "drill-stopped-1"
    reader = ProjectionReader(client)
    runs = {
        kid: run(cluster, "--kernel-id", kid, "--slots", "3", "--steps", "0", "--interval", "0.01")
        for kid in (killed, stopped)
    }
    try:
        for kid, process in runs.items():
            wait_until(beating(reader, kid, process.pid), timeout=60)
    finally:
        runs[killed].send_signal(signal.SIGKILL)
        runs[stopped].send_signal(signal.SIGTERM)
        outcomes = {kid: ended(process, timeout=60) for kid, process in runs.items()}
    assert outcomes[killed][0] == -signal.SIGKILL
    assert outcomes[stopped][0] == 0, outcomes[stopped]
    assert (reader.kernel(stopped) or {}).get("state") == "STOPPED"

    last_beat = float((reader.kernel(killed) or {})["heartbeat_at"])
    wait_until(lambda: time.time() - last_beat > 2.0, timeout=10)
    rows = watch_once(cluster, killed, stopped)
    assert rows[killed]["STATE"] == "DEAD", rows
    assert rows[stopped]["STATE"] == "STOPPED", rows

    # The dead kernel's entry does not expire; the stopped one's lives a day.
    kernels = client.get_map("dita.kernels").blocking()
    assert kernels.get_entry_view(killed).ttl == NEVER
    assert kernels.get_entry_view(stopped).ttl == DAY_MS

    # Thirty seconds after its last beat the query lists the dead kernel (and only it of the two);
    # before, it is not yet dead by the query's bound.
    assert killed in dead(client, last_beat + 31)
    assert stopped not in dead(client, last_beat + 31)
    assert killed not in dead(client, last_beat + 5)
    # Its entry stays, so it is still listed a week on.
    assert killed in dead(client, last_beat + 7 * 86_400)
