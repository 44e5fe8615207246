"""Drills against real members for the ways a HALT was lost, lifted or misreported.

Each test reproduces one failure seen with the raw Hazelcast client or the
operator's tools (docs/ARCHITECTURE.md, "Control protocol" says what holds
instead): a signed entry copied to another key, an unsigned delete, a member
restart that empties the map, a replay after a restart, a NaN, a flood of
junk, a `--wait` that forgot or misnamed kernels, an embedded kernel that did
not listen, and a HALT that left orders working.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dita.cluster.local_member import LocalMember, find_free_port
from dita.contracts import KernelDiagnosticCode, KernelIntent
from dita.controlplane.operator import ControlOperator, Verdict
from dita.controlplane.signing import sign_entry
from dita.enums import KernelMode
from dita.kernel import ExecutionKernel
from dita.venue import MockVenueAdapter, SilentVenue, VenueAdapter
from tests.conftest import Cluster, reset_control, wait_until

pytestmark = pytest.mark.hazelcast

KEY = b"drill-control-key"


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = cluster.client()
    reset_control(c)
    yield c
    reset_control(c)
    c.shutdown()


class Kernel:
    """A kernel embedded as a user would: its own client, attached, listening by itself."""

    def __init__(
        self,
        cluster: Cluster,
        kernel_id: str,
        *,
        control_key: bytes | None = KEY,
        venue: VenueAdapter | None = None,
        slots: int = 4,
    ) -> None:
        self.client = cluster.client()
        self.kernel = ExecutionKernel(
            max_slots=slots,
            kernel_id=kernel_id,
            venue=venue or SilentVenue(),
            projection_client=self.client,
            control_key=control_key,
        )
        self.listener = self.kernel.control_listener

    def enter(self, slot: int = 0) -> Any:
        return self.kernel.process_intent(
            KernelIntent(
                action="ENTER",
                slot_id=slot,
                trade_id=f"t{time.time_ns()}",
                asset="BTC",
                side="LONG",
                target_size=1.0,
                reference_price=100.0,
            )
        )

    def report(self) -> dict[str, Any]:
        raw = self.client.get_map("dita.kernels").blocking().get(self.kernel.kernel_id)
        doc: dict[str, Any] = json.loads(raw.to_string())
        return doc

    def close(self) -> None:
        self.kernel.close()
        self.client.shutdown()


def _json(doc: dict[str, Any]) -> Any:
    from hazelcast.core import HazelcastJsonValue

    return HazelcastJsonValue(json.dumps(doc))


def test_a_signed_entry_copied_to_another_key_is_refused(cluster: Cluster, client: Any) -> None:
    a, b = Kernel(cluster, "copy-A"), Kernel(cluster, "copy-B")
    try:
        operator = ControlOperator(client, control_key=KEY, author="ops")
        assert operator.set(mode="HALTED", reason="desk halt", wait=True).confirmed
        operator.set(kernel_id="copy-A", mode="ACTIVE", reason="A alone may trade", wait=True)
        control = client.get_map("dita.control").blocking()
        a_entry = control.get("kernel:copy-A")
        refused = b.listener.refusals
        control.put("kernel:copy-B", a_entry)  # one kernel's override made another's
        wait_until(lambda: b.listener.refusals > refused)
        control.put("global", a_entry)  # ... or everyone's
        wait_until(lambda: b.listener.refusals > refused + 1)
        assert b.kernel.control.mode == "HALTED"
        assert b.enter().diagnostic_code == KernelDiagnosticCode.MODE_BLOCKED
        assert "copied" in (b.listener.last_refusal or {})["reason"]
    finally:
        a.close()
        b.close()


def test_wait_names_a_kernel_whose_own_entry_overrides_the_halt(cluster: Cluster, client: Any) -> None:
    a, b = Kernel(cluster, "over-A"), Kernel(cluster, "over-B")
    try:
        operator = ControlOperator(client, control_key=KEY, author="ops")
        operator.set(kernel_id="over-B", mode="ACTIVE", reason="B trades on", wait=True)
        result = operator.set(mode="HALTED", reason="halt all", wait=True, timeout=5)
        verdicts = {k.kernel_id: k for k in result.kernels}
        assert verdicts["over-A"].verdict is Verdict.APPLIED
        assert verdicts["over-B"].verdict is Verdict.OVERRIDDEN
        assert "mode=ACTIVE from kernel:over-B" in verdicts["over-B"].detail
        assert not result.confirmed and b.kernel.control.mode == "ACTIVE"
    finally:
        a.close()
        b.close()


def test_a_raw_delete_does_not_lift_a_signed_halt(cluster: Cluster, client: Any) -> None:
    node = Kernel(cluster, "del-1")
    try:
        operator = ControlOperator(client, control_key=KEY, author="ops")
        operator.set(mode="HALTED", reason="halt", wait=True)
        operator.set(kernel_id="del-1", verbosity="VERBOSE", reason="detail", wait=True)
        control = client.get_map("dita.control").blocking()
        control.remove("global")
        control.remove("kernel:del-1")
        wait_until(lambda: set(node.listener.report()["held"]) == {"global", "kernel:del-1"})
        assert node.kernel.control.mode == "HALTED" and node.kernel.control.verbosity == "VERBOSE"
        assert node.enter().diagnostic_code == KernelDiagnosticCode.MODE_BLOCKED
        wait_until(lambda: "global" in node.report()["control_report"]["held"])
        # A clearing entry is how an operator lifts it on purpose.
        cleared = operator.clear("del-1", reason="override done", wait=True)
        assert cleared.confirmed and "verbosity=NORMAL (from default)" in cleared.kernels[0].detail
        assert node.kernel.control.mode == "HALTED"
    finally:
        node.close()


def test_a_restarted_empty_member_does_not_undo_a_halt_and_restore_puts_it_back() -> None:
    member = LocalMember(port=find_free_port(), cluster_name="drill-restart", log=lambda _line: None)
    member.start(timeout=180)
    cluster = Cluster([member.address], "drill-restart", member)
    node = None
    operator_client = cluster.client()
    try:
        node = Kernel(cluster, "restart-1", control_key=None)
        operator = ControlOperator(operator_client, author="ops")
        assert operator.set(mode="HALTED", reason="halt before the restart", wait=True).confirmed
        operator_client.shutdown()
        member.stop()
        wait_until(lambda: not node.kernel.projection.stats()["connected"], timeout=30)
        member.start(timeout=180)
        # The map comes back empty; the kernel re-reads it on reconnecting.
        wait_until(lambda: "global" in node.listener.report()["held"], timeout=60)
        assert node.kernel.control.mode == "HALTED"
        assert node.enter().diagnostic_code == KernelDiagnosticCode.MODE_BLOCKED
        operator_client = cluster.client()
        wait_until(lambda: operator_client.get_map("dita.kernels").blocking().get("restart-1") is not None)
        restore = subprocess.run(
            [sys.executable, "-m", "dita.cli", "control", "restore", "--reason", "member restarted"],
            env={**os.environ, "DITA_HAZELCAST": member.address, "DITA_CLUSTER": "drill-restart"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert restore.returncode == 0, restore.stdout + restore.stderr
        assert "global" in restore.stdout and "restored" in restore.stdout
        back = json.loads(operator_client.get_map("dita.control").blocking().get("global").to_string())
        assert back["mode"] == "HALTED"
        wait_until(lambda: not node.listener.report()["held"])
    finally:
        if node is not None:
            node.close()
        operator_client.shutdown()
        member.stop()


def test_an_old_signed_entry_replayed_over_a_restart_is_refused(cluster: Cluster, client: Any) -> None:
    operator = ControlOperator(client, control_key=KEY, author="ops")
    control = client.get_map("dita.control").blocking()
    first = Kernel(cluster, "replay-1")
    try:
        operator.set(mode="ACTIVE", reason="open", wait=True)
        old = control.get("global")
        operator.set(mode="HALTED", reason="halt", wait=True)
    finally:
        first.close()
    control.put("global", old)  # the attacker puts the old ACTIVE back while no kernel runs
    again = Kernel(cluster, "replay-1")
    try:
        assert again.kernel.control.mode == "HALTED"
        assert "not above the last applied rev" in (again.listener.last_refusal or {})["reason"]
        assert again.enter().diagnostic_code == KernelDiagnosticCode.MODE_BLOCKED
    finally:
        again.close()


def test_a_nan_entry_is_one_refusal_and_the_kernel_keeps_its_signed_halt(
    cluster: Cluster, client: Any
) -> None:
    control = client.get_map("dita.control").blocking()
    doc: dict[str, Any] = {"mode": "HALTED", "rev": int(time.time() * 1000), "issued_at": time.time()}
    doc["signature"] = sign_entry(doc, KEY, "kernel:nan-1")
    control.put("kernel:nan-1", _json(doc))
    control.put("global", _json({"mode": "ACTIVE", "rev": 5, "issued_at": float("nan")}))
    node = Kernel(cluster, "nan-1")
    try:
        assert node.kernel.control.mode == "HALTED", "the signed HALT is read although global is junk"
        assert node.listener.refusals >= 1
        control.put("global", _json({"mode": "ACTIVE", "rev": 6, "issued_at": float("nan")}))
        wait_until(lambda: node.listener.refusals >= 2)
        # The kernel's client is still connected: a signed write still lands.
        assert (
            ControlOperator(client, control_key=KEY)
            .set(kernel_id="nan-1", mode="REDUCE_ONLY", reason="still listening", wait=True)
            .confirmed
        )
    finally:
        node.close()


def test_a_flood_of_junk_writes_bounded_history_and_logs(
    cluster: Cluster, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    node = Kernel(cluster, "flood-1")
    history = client.get_map("dita.control.history").blocking()
    control = client.get_map("dita.control").blocking()
    try:
        before = history.size()
        caplog.set_level("WARNING", logger="dita.control")
        for i in range(2_000):  # its own key: no other kernel of the session's cluster refuses them
            control.set("kernel:flood-1", f"junk {i}")
        wait_until(lambda: node.listener.refusals > 0)
        time.sleep(1.5)  # let every event that was sent arrive
        added = history.size() - before
        warnings = [r for r in caplog.records if r.name == "dita.control"]
        assert added <= 10, f"{added} history records for one kernel's refusals of 2,000 writes"
        assert len(warnings) <= 10
        newest = max(history.key_set())
        assert 0 < history.get_entry_view(newest).ttl <= 7 * 24 * 3600 * 1000
    finally:
        node.close()


def test_control_show_marks_kernels_that_apply_unsigned_entries(cluster: Cluster, client: Any) -> None:
    signed, unsigned = Kernel(cluster, "sig-yes"), Kernel(cluster, "sig-no", control_key=None)
    env = {**os.environ, "DITA_HAZELCAST": ",".join(cluster.members), "DITA_CLUSTER": cluster.cluster_name}
    env.pop("DITA_CONTROL_KEY", None)
    try:
        shown = subprocess.run(
            [sys.executable, "-m", "dita.cli", "control", "show"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.startswith("sig-")}
        assert "UNSIGNED" in lines["sig-no"] and "UNSIGNED" not in lines["sig-yes"]
        wrote = subprocess.run(
            [sys.executable, "-m", "dita.cli", "control", "set", "--verbosity", "QUIET", "--reason", "x"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wrote.returncode == 0 and "unsigned" in wrote.stderr
    finally:
        signed.close()
        unsigned.close()


def _cli(cluster: Cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DITA_HAZELCAST": ",".join(cluster.members), "DITA_CLUSTER": cluster.cluster_name}
    return subprocess.run(
        [sys.executable, "-m", "dita.cli", "control", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_wait_refuses_a_mistyped_kernel_before_writing(cluster: Cluster, client: Any) -> None:
    node = Kernel(cluster, "K1", control_key=None)
    try:
        typo = _cli(cluster, "set", "--kernel", "k1", "--mode", "HALTED", "--reason", "typo", "--wait")
        assert typo.returncode == 1 and "k1" in typo.stderr and "K1" in typo.stderr
        assert client.get_map("dita.control").blocking().get("kernel:k1") is None
        assert node.kernel.control.mode == "ACTIVE"
    finally:
        node.close()


def test_wait_reports_a_refusal_with_its_reason_without_sitting_out_the_timeout(
    cluster: Cluster, client: Any
) -> None:
    node = Kernel(cluster, "KS")
    try:
        started = time.monotonic()
        unsigned = _cli(cluster, "set", "--mode", "HALTED", "--reason", "no key", "--wait", "--timeout", "20")
        took = time.monotonic() - started
        assert unsigned.returncode == 1
        assert "REFUSED" in unsigned.stdout and "unsigned" in unsigned.stdout
        assert took < 15, f"the refusal took the whole timeout ({took:.1f} s)"
    finally:
        node.close()


RUN = [sys.executable, "-m", "dita.cli", "run", "--steps", "0", "--duration", "120", "--interval", "0.01"]
RUN += ["--slots", "2", "--no-local-member"]


def test_wait_names_a_kernel_that_stopped_beating(cluster: Cluster, client: Any) -> None:
    env = {**os.environ, "DITA_HAZELCAST": ",".join(cluster.members), "DITA_CLUSTER": cluster.cluster_name}
    procs = [
        subprocess.Popen(
            [*RUN, "--kernel-id", f"beat-{i}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    kernels = client.get_map("dita.kernels").blocking()
    try:

        def beating() -> bool:
            docs = [kernels.get(f"beat-{i}") for i in range(2)]
            return all(d is not None and json.loads(d.to_string())["state"] == "RUNNING" for d in docs)

        wait_until(beating, timeout=60)
        procs[1].send_signal(signal.SIGSTOP)
        waited = _cli(
            cluster, "set", "--verbosity", "VERBOSE", "--reason", "stop drill", "--wait", "--timeout", "5"
        )
        assert waited.returncode == 1, waited.stdout
        lines = {line.split()[0]: line for line in waited.stdout.splitlines() if line.startswith("beat-")}
        assert "APPLIED" in lines["beat-0"] and "STALE" in lines["beat-1"]
        assert "applied by 1 of 2" in waited.stdout
    finally:
        procs[1].send_signal(signal.SIGCONT)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)


def test_wait_with_no_kernel_running_is_not_a_success(cluster: Cluster, client: Any) -> None:
    client.get_map("dita.kernels").blocking().clear()
    empty = _cli(cluster, "set", "--mode", "HALTED", "--reason", "nobody", "--wait", "--timeout", "1")
    assert empty.returncode == 1 and "no running kernel" in empty.stdout
    allowed = _cli(
        cluster, "set", "--mode", "HALTED", "--reason", "nobody", "--wait", "--timeout", "1", "--allow-none"
    )
    assert allowed.returncode == 0


def test_an_embedded_kernel_obeys_the_cluster_by_default(cluster: Cluster, client: Any) -> None:
    node = Kernel(cluster, "embedded-1", control_key=None)
    try:
        result = ControlOperator(client).set(mode="HALTED", reason="halt the embedded one", wait=True)
        assert result.confirmed and node.kernel.control.mode == "HALTED"
    finally:
        node.close()


def test_a_halt_cancels_every_working_order_and_flatten_closes_positions(
    cluster: Cluster, client: Any
) -> None:
    venue = MockVenueAdapter(auto_fill=False)
    node = Kernel(cluster, "kill-1", venue=venue, slots=4)
    try:
        for slot in range(3):
            assert node.enter(slot).accepted
        # One entry fills, so that slot holds a position; the other two keep working.
        entry_order = node.kernel.slot(0).snapshot().active_entry_order
        assert entry_order is not None
        for event in venue.fill(entry_order.venue_client_id):
            node.kernel.on_venue_event(event)
        assert node.kernel.working_orders()["working"] == 2
        operator = ControlOperator(client, control_key=KEY, author="ops")
        early = _cli(cluster, "flatten", "--kernel", "kill-1", "--reason", "too early")
        assert early.returncode == 2 and "ACTIVE" in early.stderr, early.stderr
        result = operator.set(mode="HALTED", reason="kill switch drill", wait=True)
        assert result.confirmed, [(k.verdict, k.detail) for k in result.kernels]
        assert "2 cancel(s) sent" in result.kernels[0].detail
        assert node.kernel.working_orders() == {"working": 0, "cancelling": 0}
        stages = [node.kernel.slot(i).snapshot().fsm_state for i in range(3)]
        assert stages == ["POSITION_OPEN", "CLOSED", "CLOSED"]
        flat = operator.set(kernel_id="kill-1", flatten=True, reason="flatten drill", wait=True)
        assert flat.confirmed
        exit_order = node.kernel.slot(0).snapshot().active_exit_order
        assert exit_order is not None and exit_order.order_type == "MARKET"
        for event in venue.fill(exit_order.venue_client_id):
            node.kernel.on_venue_event(event)
        assert node.kernel.slot(0).snapshot().fsm_state == "CLOSED"
        assert node.kernel.control.mode is KernelMode.HALTED
        assert node.enter(3).diagnostic_code == KernelDiagnosticCode.MODE_BLOCKED
    finally:
        node.close()


def test_a_kernel_that_started_without_its_cluster_joins_it_when_it_answers() -> None:
    from dita.cluster.link import ClusterLink
    from dita.control import KernelControlSnapshot

    port = find_free_port()
    start = KernelControlSnapshot(mode=KernelMode.ACTIVE, source="start")
    # Until the cluster's control is read, the kernel trades only as `--until-control HALTED` says.
    kernel = ExecutionKernel(
        max_slots=2,
        kernel_id="late-1",
        venue=SilentVenue(),
        control=KernelControlSnapshot(mode=KernelMode.HALTED, source="until-control"),
    )
    link = ClusterLink(
        kernel, [f"127.0.0.1:{port}"], "drill-late", default_control=start, connect_timeout=1.0
    )
    member = LocalMember(port=port, cluster_name="drill-late", log=lambda _line: None)
    operator_client = None
    try:
        assert not link.start()
        assert kernel.control.mode == "HALTED"
        member.start(timeout=180)
        operator_client = Cluster([member.address], "drill-late").client()
        ControlOperator(operator_client, author="ops").set(
            kernel_id="late-1", mode="REDUCE_ONLY", reason="written before it joined", allow_none=True
        )
        assert link.joined.wait(60), link.last_error
        assert kernel.control.mode == "REDUCE_ONLY" and "kernel:late-1" in kernel.control.source
        kernels = operator_client.get_map("dita.kernels").blocking()

        def read_at() -> Any:
            raw = kernels.get("late-1")
            return raw is not None and json.loads(raw.to_string()).get("control_report", {}).get(
                "control_read_at"
            )

        wait_until(read_at)  # its first beat may come before its listener's first report
        result = ControlOperator(operator_client).set(
            kernel_id="late-1", mode="HALTED", reason="halt after the join", wait=True
        )
        assert result.applied == ["late-1"] and kernel.control.mode == "HALTED"
    finally:
        link.close()
        kernel.close()
        link.shutdown_client()
        if operator_client is not None:
            operator_client.shutdown()
        member.stop()


def test_dita_run_started_before_its_member_joins_it_and_obeys_a_halt() -> None:
    port = find_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DITA_")}
    env.update({"DITA_HAZELCAST": f"127.0.0.1:{port}", "DITA_CLUSTER": "drill-run-late"})
    command = [*RUN, "--kernel-id", "run-late", "--connect-timeout", "1", "--until-control", "REDUCE_ONLY"]
    kernel = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    member = LocalMember(port=port, cluster_name="drill-run-late", log=lambda _line: None)
    client = None
    try:
        time.sleep(2)  # the kernel is trading on the in-memory projection by now
        assert kernel.poll() is None
        member.start(timeout=180)
        client = Cluster([member.address], "drill-run-late").client()
        kernels = client.get_map("dita.kernels").blocking()

        def joined() -> dict[str, Any] | None:
            raw = kernels.get("run-late")
            doc = json.loads(raw.to_string()) if raw is not None else None
            return doc if doc and doc.get("control_report", {}).get("control_read_at") else None

        wait_until(lambda: joined() is not None, timeout=60)
        status = joined()
        assert status is not None
        assert status["control"]["mode"] == "ACTIVE", "the cluster's (empty) control replaced --until-control"
        halted = subprocess.run(
            [
                sys.executable,
                "-m",
                "dita.cli",
                "control",
                "set",
                "--mode",
                "HALTED",
                "--reason",
                "x",
                "--wait",
            ],
            env={**env, "DITA_HAZELCAST": member.address},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert halted.returncode == 0 and "run-late" in halted.stdout and "APPLIED" in halted.stdout, (
            halted.stdout
        )
    finally:
        kernel.send_signal(signal.SIGTERM)
        _, err = kernel.communicate(timeout=60)
        if client is not None:
            client.shutdown()
        member.stop()
    assert "joining it in the background" in err and "joined cluster 'drill-run-late'" in err, err


def test_dita_run_resume_holds_its_checkpointed_halt_over_a_replayed_entry(
    cluster: Cluster, client: Any, tmp_path: Any
) -> None:
    key_file = tmp_path / "control.key"
    key_file.write_bytes(KEY)
    checkpoint = tmp_path / "k.checkpoint"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DITA_")}
    env.update({"DITA_HAZELCAST": ",".join(cluster.members), "DITA_CLUSTER": cluster.cluster_name})
    command = [
        *RUN,
        "--kernel-id",
        "resume-1",
        "--control-key-file",
        str(key_file),
        "--checkpoint",
        str(checkpoint),
    ]
    operator = ControlOperator(client, control_key=KEY, author="ops")
    control = client.get_map("dita.control").blocking()
    kernels = client.get_map("dita.kernels").blocking()
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: kernels.get("resume-1") is not None, timeout=60)
        assert operator.set(mode="ACTIVE", reason="open", wait=True).confirmed
        old = control.get("global")
        assert operator.set(mode="HALTED", reason="halt", wait=True).confirmed
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    # Its report in dita.kernels gone (a restarted member, say): only the checkpoint remembers.
    kernels.delete("resume-1")
    control.set("global", old)  # an old signed ACTIVE put back while it was down
    again = subprocess.Popen(
        [*command, "--resume"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:

        def reported() -> dict[str, Any] | None:
            raw = kernels.get("resume-1")
            doc = json.loads(raw.to_string()) if raw is not None else None
            listening = doc and doc.get("state") == "RUNNING" and doc.get("control_report", {}).get("revs")
            return doc if listening else None

        wait_until(lambda: reported() is not None, timeout=60)
        status = reported()
        assert status is not None and status["control"]["mode"] == "HALTED"
        assert "not above the last applied rev" in status["control_report"]["last_refusal"]["reason"]
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=60)


def test_a_kernel_joining_late_does_not_take_over_an_id_another_process_runs(
    cluster: Cluster, client: Any
) -> None:
    from dita.cluster.link import ClusterLink
    from dita.commands.run import _check_no_other_process

    kernels = client.get_map("dita.kernels").blocking()
    live = {
        "kernel_id": "dup-late",
        "state": "RUNNING",
        "heartbeat_at": time.time(),
        "host": "elsewhere",
        "pid": 7,
    }
    kernels.set("dup-late", _json(live))
    kernel = ExecutionKernel(max_slots=1, kernel_id="dup-late", venue=SilentVenue())
    said: list[str] = []
    link = ClusterLink(
        kernel,
        cluster.members,
        cluster.cluster_name,
        connect_timeout=5.0,
        check=lambda joining: _check_no_other_process(joining, "dup-late", force=False),
        say=said.append,
    )
    try:
        link.start_in_background()
        wait_until(lambda: bool(link.refused), timeout=30)
        assert not link.joined.is_set() and "elsewhere:7" in link.refused
        assert json.loads(kernels.get("dup-late").to_string())["host"] == "elsewhere", (
            "nothing written over it"
        )
    finally:
        link.close()
        kernel.close()
        kernels.delete("dup-late")
