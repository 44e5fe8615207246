"""`dita watch` as an operator sees it: the screen it draws on a pseudo-terminal,
against a real member, while a `dita run` trades, is steered and stops, and while
the cluster goes away and comes back."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dita.cluster.local_member import LocalMember, find_free_port
from dita.projection.reader import LIVE_STAGES, ProjectionReader
from tests.conftest import Cluster, reset_control, wait_until
from tests.integration.test_run_restart import dita, finish
from tests.unit.test_dashboard import table

pytestmark = pytest.mark.hazelcast

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FRAME = re.compile(r"\x1b\[H(.*?)\x1b\[J", re.S)


def dita_env(cluster: Cluster) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(DITA_HAZELCAST=",".join(cluster.members), DITA_CLUSTER=cluster.cluster_name, TERM="xterm")
    return env


class Terminal:
    """`dita watch` on a pseudo-terminal of `rows` x `columns`; `screen()` is the
    last whole frame it drew, as the text a person sees."""

    def __init__(self, cluster: Cluster, *args: str, rows: int = 60, columns: int = 220) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dita.cli", "watch", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=dita_env(cluster),
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the watch has closed its side of the terminal
                return
            if not data:
                return
            with self._lock:
                self._buffer.extend(data)

    def output(self) -> str:
        with self._lock:
            return self._buffer.decode("utf-8", "replace")

    def screen(self) -> str:
        frames = _FRAME.findall(self.output())
        return _ANSI.sub("", frames[-1]).replace("\r\n", "\n") if frames else ""

    def wait_for(self, shows: Callable[[str], object], what: str, timeout: float = 30.0) -> str:
        """The screen once `shows(screen)` is true; fails naming `what` and showing the screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            try:
                if shows(screen):
                    return screen
            except (StopIteration, KeyError, IndexError, TypeError):
                pass  # not a whole dashboard yet
            if self.process.poll() is not None:
                raise AssertionError(f"watch exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not on screen within {timeout:g} s; last screen:\n{screen}")
            time.sleep(0.05)

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C, as a person ends the watch; its exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(timeout=5)
        os.close(self._master)


def kernel_row(screen: str, kernel_id: str) -> dict[str, str] | None:
    return next((r for r in table(screen, "KERNELS") if r.get("KERNEL") == kernel_id), None)


def shown(screen: str, kernel_id: str, column: str) -> str:
    """One cell of a kernel's row on the screen ("" while the kernel is not listed)."""
    return (kernel_row(screen, kernel_id) or {}).get(column, "")


def live(screen: str) -> bool:
    return screen.splitlines()[1].startswith("live:")


def stop(process: subprocess.Popen[str] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def control_cleared(cluster: Cluster) -> Iterator[Any]:
    """A client, with no control entries left by other tests (the kernel must start ACTIVE)
    and none left behind by this one."""
    client = cluster.client()
    reset_control(client)
    yield client
    reset_control(client)
    client.shutdown()


def test_watch_shows_a_live_kernel_its_open_slots_a_control_flip_and_its_stop(
    cluster: Cluster, control_cleared: Any
) -> None:
    kid = "watch-live-1"
    reader = ProjectionReader(control_cleared)
    run = dita(cluster, "run", "--kernel-id", kid, "--slots", "6", "--steps", "0", "--interval", "0.005")
    term = None
    try:
        wait_until(lambda: (reader.kernel(kid) or {}).get("state") == "RUNNING", timeout=60)
        term = Terminal(cluster, "--kernel", kid, "--interval", "0.2")
        screen = term.wait_for(
            lambda s: shown(s, kid, "STATE") == "RUNNING" and table(s, "OPEN SLOTS"),
            "the kernel RUNNING with open slots",
            timeout=60,
        )
        assert screen.splitlines()[1].startswith("live: read at")
        row = kernel_row(screen, kid)
        assert row is not None and row["MODE"] == "ACTIVE" and row["VERBOSITY"] == "NORMAL"
        assert row["CONTROL"] == "ok"
        open_slots = table(screen, "OPEN SLOTS")
        assert all(r["KERNEL"] == kid and r["STAGE"] in LIVE_STAGES for r in open_slots), open_slots
        assert all(r["TRADE"].startswith("demo-") and r["SIDE"] in ("LONG", "SHORT") for r in open_slots)
        assert [r["KERNEL"] for r in table(screen, "ACCOUNTS")] == [kid]

        # A script's view: one frame into a pipe, and out.
        once = subprocess.run(
            [sys.executable, "-m", "dita.cli", "watch", "--once", "--kernel", kid],
            env=dita_env(cluster),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert once.returncode == 0, once.stderr
        assert once.stdout.count("dita watch ·") == 1 and "\x1b[" not in once.stdout
        assert (kernel_row(once.stdout, kid) or {}).get("STATE") == "RUNNING"

        flip = subprocess.run(
            [
                sys.executable,
                "-m",
                "dita.cli",
                "control",
                "set",
                "--mode",
                "HALTED",
                "--reason",
                "watch test",
            ],
            env=dita_env(cluster),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert flip.returncode == 0, flip.stderr
        screen = term.wait_for(
            lambda s: shown(s, kid, "MODE") == "HALTED",
            "the kernel's mode HALTED",
        )
        entries = {r["ENTRY"]: r for r in table(screen, "CONTROL")}
        assert entries["global"]["WANTS"] == "mode=HALTED (UNSIGNED)"
        assert entries["global"]["WRITTEN"].endswith(": watch test")

        run.send_signal(signal.SIGTERM)
        finish(run)
        term.wait_for(
            lambda s: shown(s, kid, "STATE") == "STOPPED",
            "the kernel STOPPED",
        )
        assert term.interrupt() == 0
        assert "Traceback" not in term.output()
    finally:
        stop(run)
        if term is not None:
            term.close()


def test_watch_rides_out_a_cluster_restart() -> None:
    """On a member of its own: the session member is shared by other tests."""
    member = LocalMember(port=find_free_port(), cluster_name="dita-watch-restart", log=lambda _line: None)
    member.start(timeout=180)
    own = Cluster([member.address], member.cluster_name, member)
    kid = "watch-restart-1"
    run = term = None
    try:
        run = dita(own, "run", "--kernel-id", kid, "--slots", "4", "--steps", "0", "--interval", "0.01")
        term = Terminal(own, "--interval", "0.2", "--stale-after", "2")
        term.wait_for(
            lambda s: live(s) and shown(s, kid, "STATE") == "RUNNING",
            "the kernel RUNNING, live",
            timeout=60,
        )

        member.kill()  # as a crash: no goodbye to the clients
        screen = term.wait_for(
            lambda s: "cluster unreachable since" in s and "showing data from" in s,
            "the stale-data banner",
        )
        assert kernel_row(screen, kid) is not None, "the last data read stays on screen"
        term.wait_for(
            lambda s: shown(s, kid, "STATE") == "STALE",
            "the kernel STALE: its beats are no longer seen",
        )
        assert term.process.poll() is None

        member.start(timeout=180)
        screen = term.wait_for(
            lambda s: live(s) and shown(s, kid, "STATE") == "RUNNING",
            "live data again after the member restarted",
            timeout=120,
        )
        assert "unreachable" not in screen
        assert term.interrupt() == 0
        assert "Traceback" not in term.output()
    finally:
        stop(run)
        if term is not None:
            term.close()
        member.stop()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--hazelcast", f"127.0.0.1:{find_free_port()}", "--connect-timeout", "1"],
            "cannot reach Hazelcast",
        ),
        (["--interval", "0", "--hazelcast", "127.0.0.1:1"], "--interval 0: must be greater than 0"),
        (["--stale-after", "-1", "--hazelcast", "127.0.0.1:1"], "--stale-after -1: must be greater than 0"),
        ([], "no cluster given"),
    ],
)
def test_watch_that_cannot_start_says_why_in_one_line(args: list[str], says: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DITA_")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "dita.cli", "watch", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    took = time.monotonic() - started
    assert result.returncode != 0 and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dita: error: ") and says in lines[0], result.stderr
    assert took < 30, "an unreachable cluster is an error within the connect timeout, not a hang"
