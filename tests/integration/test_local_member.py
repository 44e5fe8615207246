"""A real Hazelcast member started from the jars, reached by the real client.

One member is shared by the module; only the tests about starting and
stopping pay for a JVM of their own. The first run downloads the jars
(about 46 MB) into the dita cache; later runs are offline.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hazelcast.client import HazelcastClient
from hazelcast.core import HazelcastJsonValue

from dita.cluster.local_member import (
    JavaNotFoundError,
    LocalMember,
    MemberStartError,
    PortInUseError,
    find_free_port,
    main,
    port_answers,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hazelcast.proxy.map import BlockingMap

pytestmark = pytest.mark.hazelcast

REPO_ROOT = Path(__file__).resolve().parents[2]


def _new_member(log_dir: Path, config: Path | None = None) -> LocalMember:
    # A cluster name of its own, so no test member can meet any other member.
    port = find_free_port()
    return LocalMember(
        port=port,
        cluster_name=f"dita-test-{uuid.uuid4().hex[:8]}",
        config=config,
        log_file=log_dir / f"member-{port}.log",
    )


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hazelcast-logs")


@pytest.fixture(scope="module")
def member(log_dir: Path) -> Iterator[LocalMember]:
    started = _new_member(log_dir)
    started.start(timeout=180)
    yield started
    started.stop()


@pytest.fixture
def client(member: LocalMember) -> Iterator[HazelcastClient]:
    connected = HazelcastClient(
        cluster_name=member.cluster_name,
        cluster_members=[member.address],
        cluster_connect_timeout=30,
    )
    yield connected
    connected.shutdown()


def test_map_put_get_round_trip(client: HazelcastClient) -> None:
    slots: BlockingMap[str, str] = client.get_map("dita.test.roundtrip").blocking()
    slots.put("k1:0", "hello")
    assert slots.get("k1:0") == "hello"
    assert slots.size() == 1


def test_sql_queries_json_documents(client: HazelcastClient) -> None:
    name = "dita.test.slots"
    client.sql.execute(
        f'CREATE OR REPLACE MAPPING "{name}" '
        "(__key VARCHAR, kernel_id VARCHAR, slot_id INT, realized_pnl DOUBLE) "
        "TYPE IMap OPTIONS ('keyFormat' = 'varchar', 'valueFormat' = 'json-flat')"
    ).result()
    slots: BlockingMap[str, HazelcastJsonValue] = client.get_map(name).blocking()
    for slot_id, pnl in ((0, 1.5), (1, -2.0), (2, 4.25)):
        doc = {"kernel_id": "k1", "slot_id": slot_id, "realized_pnl": pnl}
        slots.put(f"k1:{slot_id}", HazelcastJsonValue(doc))

    query = f'SELECT __key, realized_pnl FROM "{name}" WHERE realized_pnl > ? ORDER BY __key'
    with client.sql.execute(query, 0.0).result() as rows:
        found = [(row.get_object("__key"), row.get_object("realized_pnl")) for row in rows]
    assert found == [("k1:0", 1.5), ("k1:2", 4.25)]


def test_start_on_busy_port_fails_clearly(member: LocalMember, log_dir: Path) -> None:
    second = LocalMember(
        port=member.port,
        cluster_name=member.cluster_name,
        log_file=log_dir / "second.log",
    )
    began = time.monotonic()
    with pytest.raises(PortInUseError, match=rf"port {member.port} .*already in use"):
        second.start()
    assert not second.is_running()
    assert time.monotonic() - began < 10, "the busy port must be seen before any JVM starts"


def test_missing_java_fails_clearly(tmp_path: Path) -> None:
    broken = LocalMember(port=find_free_port(), java="/nonexistent/java", log_file=tmp_path / "m.log")
    with pytest.raises(JavaNotFoundError, match=r"'/nonexistent/java'.*install"):
        broken.start()


def test_member_dying_early_reports_its_log(tmp_path: Path) -> None:
    bad_config = tmp_path / "broken.yaml"
    bad_config.write_text("hazelcast:\n  no-such-section: {enabled: true}\n")
    doomed = _new_member(tmp_path, config=bad_config)
    with pytest.raises(MemberStartError, match=r"exited with code \d+ before it started") as err:
        doomed.start(timeout=120)
    assert "last log lines" in str(err.value)
    assert "no-such-section" in str(err.value)
    assert not doomed.is_running()


def test_stop_kill_and_restart(log_dir: Path) -> None:
    own = _new_member(log_dir)
    try:
        own.start(timeout=180)
        assert own.is_running()
        assert port_answers(own.port)

        own.kill()
        assert not own.is_running()
        assert not port_answers(own.port)

        own.restart(timeout=180)
        assert port_answers(own.port)

        own.stop()
        assert not own.is_running()
        assert not port_answers(own.port)
    finally:
        own.kill()


def test_cli_status_and_busy_start(member: LocalMember, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--port", str(member.port)]) == 0
    assert main(["status", "--port", str(find_free_port())]) == 3

    assert main(["start", "--port", str(member.port)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: port ")
    assert "\n" not in err
    assert "Traceback" not in err


def test_cli_daemon_start_then_stop() -> None:
    port = str(find_free_port())
    script = str(REPO_ROOT / "ops" / "hazelcast-member")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *args, "--port", port, "--cluster", "dita-test-cli"],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )

    started = cli("start")
    try:
        assert started.returncode == 0, started.stderr
        assert port_answers(int(port))
        assert cli("status").returncode == 0
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not port_answers(int(port))
    assert cli("status").returncode == 3


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
