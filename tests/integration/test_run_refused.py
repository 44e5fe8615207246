"""`dita run` against a real member when it must not run: a bad flag or scenario, or a kernel
id another live process runs. Refused, it leaves the cluster exactly as it found it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dita.projection.reader import ProjectionReader
from tests.conftest import Cluster, reset_control, wait_until

pytestmark = pytest.mark.hazelcast

SLOTS = 3


def run(cluster: Cluster, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DITA_")}
    env.update(DITA_HAZELCAST=",".join(cluster.members), DITA_CLUSTER=cluster.cluster_name)
    return subprocess.Popen(
        [sys.executable, "-m", "dita.cli", "run", "--no-local-member", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ended(process: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = cluster.client()
    # Other tests leave global entries behind; these kernels must trade ACTIVE.
    reset_control(c)
    yield c
    c.shutdown()


def documents(client: Any, kid: str) -> dict[str, Any]:
    """Every document of kernel `kid`, as the exact text the maps hold."""
    slots = client.get_map("dita.slots").blocking().get_all([f"{kid}:{i}" for i in range(SLOTS)])
    account = client.get_map("dita.accounts").blocking().get(kid)
    entry = client.get_map("dita.kernels").blocking().get(kid)
    return {
        "slots": {k: v.to_string() for k, v in slots.items()},
        "account": account.to_string() if account is not None else None,
        "entry": entry.to_string() if entry is not None else None,
    }


def lines_file(tmp: Path, *lines: str) -> str:
    path = tmp / "bad.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


BAD_RUNS: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("scenario NaN seed capital", lambda t: ["--scenario", lines_file(t, '{"seed_capital": NaN}')], "NaN"),
    (
        "scenario line only the kernel refuses",
        lambda t: ["--scenario", lines_file(t, '{"account_event": {"kind": "WINDFALL", "event_id": "a"}}')],
        "WINDFALL",
    ),
    (
        "scenario line of 100 KB",
        lambda t: ["--scenario", lines_file(t, '{"mark": {"asset": "' + "B" * 100_000 + '", "price": 1}}')],
        "65536 bytes",
    ),
    ("interval nan", lambda t: ["--interval", "nan"], "--interval"),
    ("duration nan", lambda t: ["--duration", "nan", "--steps", "0"], "--duration"),
    (
        "checkpoint-every nan",
        lambda t: ["--checkpoint", str(t / "k.cp"), "--checkpoint-every", "nan"],
        "--checkpoint-every",
    ),
    ("checkpoint in a missing directory", lambda t: ["--checkpoint", str(t / "no" / "k.cp")], "--checkpoint"),
]


@pytest.fixture(scope="module")
def traded(cluster: Cluster) -> str:
    """K7: a kernel that traded and stopped, whose documents the refused runs must not touch."""
    kid = "K7-refused"
    code, out, err = ended(run(cluster, "--kernel-id", kid, "--slots", str(SLOTS), "--steps", "300"))
    assert code == 0, out + err
    return kid


@pytest.mark.parametrize(("args", "says"), [c[1:] for c in BAD_RUNS], ids=[c[0] for c in BAD_RUNS])
def test_a_refused_run_leaves_the_kernels_documents_as_they_were(
    cluster: Cluster, client: Any, traded: str, tmp_path: Path, args: Callable[[Path], list[str]], says: str
) -> None:
    before = documents(client, traded)
    assert len(before["slots"]) == SLOTS and before["account"] is not None
    code, out, err = ended(run(cluster, "--kernel-id", traded, "--slots", str(SLOTS), *args(tmp_path)))
    assert code == 2, out + err
    [line] = [line for line in err.splitlines() if line.strip()]
    assert says in line and "Traceback" not in err, err
    assert "dita: kernel" not in out, "no kernel started"
    assert documents(client, traded) == before, "the refused run changed the kernel's documents"


def test_one_live_process_per_kernel_id_unless_forced(cluster: Cluster, client: Any) -> None:
    kid = "one-process-1"
    reader = ProjectionReader(client)
    first = run(cluster, "--kernel-id", kid, "--slots", str(SLOTS), "--steps", "0", "--interval", "0.01")
    try:
        wait_until(lambda: (reader.kernel(kid) or {}).get("pid") == first.pid, timeout=60)

        code, out, err = ended(run(cluster, "--kernel-id", kid, "--slots", str(SLOTS), "--steps", "20"))
        assert code == 2, out + err
        [line] = [line for line in err.splitlines() if line.strip()]
        assert f"kernel {kid} is already running at {socket.gethostname()}:{first.pid}" in line, line
        assert "heartbeat" in line and "s ago" in line and "--force" in line, line
        assert "dita: kernel" not in out
        entry = reader.kernel(kid) or {}
        assert entry.get("pid") == first.pid, "the refused run wrote no entry"

        code, out, err = ended(
            run(cluster, "--kernel-id", kid, "--slots", str(SLOTS), "--steps", "20", "--force")
        )
        assert code == 0, out + err
        assert f"taking over kernel {kid} from {socket.gethostname()}:{first.pid}" in err, err
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)

    # A process of this host that was killed runs nothing: its id may start again at once.
    again = run(cluster, "--kernel-id", kid, "--slots", str(SLOTS), "--steps", "20")
    code, out, err = ended(again)
    assert code == 0, out + err
