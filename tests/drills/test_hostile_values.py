"""Drill: someone who reaches the cluster plants values in dita's maps.

An open-source Hazelcast cluster lets any client write any map. The intruder
here is such a client, with nothing of dita's: it puts Python pickles whose
unpickling leaves a file behind (proof that code ran), values of a
serializer only it knows, and JSON that is not a document of the contract,
into every map dita reads. No dita process may run that code or stop on
those values: kernels attach and take control as before, readers, `dita
control` and `dita watch` show every good entry and leave the planted ones
out.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hazelcast.core import HazelcastJsonValue
from hazelcast.errors import HazelcastSerializationError
from hazelcast.serialization.api import StreamSerializer

from dita.contracts import KernelIntent
from dita.kernel import ExecutionKernel
from dita.projection.base import ACCOUNTS_MAP, CONTROL_MAP, KERNELS_MAP, SLOTS_MAP
from dita.projection.hazelcast import HazelcastProjection, connect
from dita.projection.reader import ProjectionReader
from dita.venue import MockVenueAdapter
from tests.conftest import Cluster, wait_until
from tests.integration.test_run_restart import dita

pytestmark = pytest.mark.hazelcast

HISTORY_MAP = "dita.control.history"
FOREIGN_TYPE_ID = 9999


class Planted:
    """Unpickled, it touches `proof`: the file's existence says code ran."""

    def __init__(self, proof: Path) -> None:
        self.proof = proof

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return (Path.touch, (self.proof,))


class Foreign:
    """A value of a type only the intruder has a serializer for."""


class ForeignSerializer(StreamSerializer):
    def write(self, out: Any, obj: Any) -> None:
        out.write_string("only the intruder reads this")

    def read(self, inp: Any) -> Foreign:
        inp.read_string()
        return Foreign()

    def get_type_id(self) -> int:
        return FOREIGN_TYPE_ID

    def destroy(self) -> None:
        pass


@dataclass
class Intruder:
    """A raw client that plants values and takes every one of them away afterwards."""

    client: Any
    proof: Path
    planted: list[tuple[str, Any]] = field(default_factory=list)

    def put(self, map_name: str, key: Any, value: Any) -> None:
        # `set`, never `put`: this raw client would unpickle the value it replaces.
        self.client.get_map(map_name).blocking().set(key, value)
        self.planted.append((map_name, key))

    def pickle(self, map_name: str, key: Any) -> None:
        self.put(map_name, key, Planted(self.proof))

    def foreign(self, map_name: str, key: Any) -> None:
        self.put(map_name, key, Foreign())

    def json(self, map_name: str, key: str, text: str) -> None:
        self.put(map_name, key, HazelcastJsonValue(text))

    def pickled_key(self, map_name: str) -> None:
        self.put(map_name, Planted(self.proof), HazelcastJsonValue("{}"))

    def take_away(self) -> None:
        # `delete`, never `remove`: this raw client would unpickle the old value.
        for map_name, key in self.planted:
            self.client.get_map(map_name).blocking().delete(key)


@pytest.fixture
def intruder(cluster: Cluster, tmp_path: Path) -> Iterator[Intruder]:
    client = cluster.client(custom_serializers={Foreign: ForeignSerializer})
    live = Intruder(client, tmp_path / "live-proof")
    # The premise: the payload is live, and the intruder's client is a raw one.
    live.pickle(HISTORY_MAP, "hostile-premise")
    client.get_map(HISTORY_MAP).blocking().get("hostile-premise")
    assert live.proof.exists(), "a raw client runs the planted pickle"
    live.take_away()
    intruder = Intruder(client, tmp_path / "proof")
    try:
        yield intruder
    finally:
        intruder.take_away()
        client.shutdown()


@pytest.fixture
def dita_client(cluster: Cluster) -> Iterator[Any]:
    """A client as every dita command makes one."""
    client = connect(cluster.members, cluster.cluster_name)
    yield client
    client.shutdown()


def slot_doc(kernel_id: str, slot_id: int, version: int, fsm_state: str = "ENTRY_WORKING") -> str:
    return json.dumps(
        {
            "kernel_id": kernel_id,
            "key": f"{kernel_id}:{slot_id}",
            "slot_id": slot_id,
            "version": version,
            "fsm_state": fsm_state,
            "trade_id": f"{kernel_id}-trade",
            "asset": "BTC",
            "side": "LONG",
            "size": 1.0,
            "entry_price": 100.0,
            "unrealized_pnl": 1.5,
            "realized_pnl": 0.0,
        }
    )


def account_doc(kernel_id: str, version: int) -> str:
    return json.dumps(
        {
            "kernel_id": kernel_id,
            "key": kernel_id,
            "version": version,
            "equity": 1000.0,
            "reconcile_status": "OK",
        }
    )


def status_doc(kernel_id: str) -> str:
    return json.dumps(
        {
            "kernel_id": kernel_id,
            "state": "RUNNING",
            "control": {"mode": "ACTIVE", "verbosity": "NORMAL", "journal": False},
            "control_report": {},
            "max_slots": 2,
            "host": "drill",
            "pid": 1,
            "started_at": time.time(),
            "heartbeat_at": time.time(),
        }
    )


def refused(value: Any, type_id: int) -> bool:
    from dita.cluster.serialization import RefusedValue

    return isinstance(value, RefusedValue) and value.type_id == type_id


def test_a_dita_client_runs_no_planted_pickle_and_every_other_entry_still_reads(
    intruder: Intruder, dita_client: Any
) -> None:
    maps = (CONTROL_MAP, SLOTS_MAP, ACCOUNTS_MAP, KERNELS_MAP, HISTORY_MAP)
    for name in maps:
        intruder.json(name, "hostile-good", '{"good": true}')
        intruder.pickle(name, "hostile-planted")
        intruder.foreign(name, "hostile-foreign")
    intruder.pickled_key(CONTROL_MAP)
    events: list[Any] = []
    control = dita_client.get_map(CONTROL_MAP)
    registration = control.add_entry_listener(
        include_value=True, added_func=events.append, updated_func=events.append
    ).result()
    try:
        intruder.pickle(CONTROL_MAP, "hostile-event")
        intruder.json(CONTROL_MAP, "hostile-after", '{"after": true}')
        wait_until(lambda: any(e.key == "hostile-after" for e in events), timeout=10)
        read = {name: dict(dita_client.get_map(name).blocking().entry_set()) for name in maps}
        got = dita_client.get_map(SLOTS_MAP).blocking().get("hostile-planted")
        some = dita_client.get_map(KERNELS_MAP).blocking().get_all(["hostile-planted", "hostile-good"])
    finally:
        control.remove_entry_listener(registration).result()

    assert not intruder.proof.exists(), "a planted pickle ran in a dita client"
    for name in maps:
        assert read[name]["hostile-good"].to_string() == '{"good": true}', name
        assert refused(read[name]["hostile-planted"], -120), name
        assert refused(read[name]["hostile-foreign"], FOREIGN_TYPE_ID), name
    assert any(refused(key, -120) for key in read[CONTROL_MAP])
    assert refused(got, -120) and refused(some["hostile-planted"], -120)
    assert [refused(e.value, -120) for e in events if e.key == "hostile-event"] == [True]
    # Nor does a dita client pickle what it is handed.
    with pytest.raises(HazelcastSerializationError, match="refusing to send"):
        dita_client.get_map(SLOTS_MAP).blocking().put("hostile-written", Planted(intruder.proof))
    assert not dita_client.get_map(SLOTS_MAP).blocking().contains_key("hostile-written")


def test_a_kernel_attaches_over_planted_documents_under_its_own_id(
    cluster: Cluster, intruder: Intruder, caplog: pytest.LogCaptureFixture
) -> None:
    kid = "hostile-attach"
    intruder.pickle(SLOTS_MAP, f"{kid}:0")
    intruder.foreign(SLOTS_MAP, f"{kid}:1")
    intruder.json(SLOTS_MAP, f"{kid}:2", '{"kernel_id": "hostile-attach", "version": NaN}')
    intruder.json(SLOTS_MAP, f"{kid}:3", '{"kernel_id": "hostile-attach", "version": "7"}')
    intruder.json(SLOTS_MAP, f"{kid}:4", json.dumps({"kernel_id": kid, "version": 2**60}))
    intruder.json(SLOTS_MAP, f"{kid}:5", "[40]")
    intruder.json(SLOTS_MAP, f"{kid}:6", slot_doc(kid, 6, 40, "IDLE"))
    intruder.json(SLOTS_MAP, f"{kid}:7", '{"kernel_id": "hostile-attach", "version": true}')
    intruder.pickle(ACCOUNTS_MAP, kid)

    projection = HazelcastProjection(cluster.client())  # a client of the user's own making
    try:
        with caplog.at_level(logging.WARNING, logger="dita.projection"):
            kernel = ExecutionKernel(
                max_slots=8, kernel_id=kid, venue=MockVenueAdapter(), projection=projection
            )
        assert not intruder.proof.exists(), "a planted pickle ran in the kernel's attach"
        warnings = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
        assert len(warnings) == 1 and "8 of kernel hostile-attach's documents" in warnings[0], warnings
        assert kernel.slot(6).version > 40, "lifted above the one sound document"

        outcome = kernel.process_intent(
            KernelIntent(
                action="ENTER",
                slot_id=0,
                trade_id="after-the-intruder",
                asset="BTC",
                side="LONG",
                target_size=1.0,
                reference_price=100.0,
            )
        )
        assert outcome.accepted, outcome
        projection.flush(5.0)
        docs = {d["slot_id"]: d for d in ProjectionReader(projection.client).slots(kid)}
        assert sorted(docs) == list(range(8)), "every planted document was overwritten"
        assert docs[0]["trade_id"] == "after-the-intruder"
        assert docs[6]["version"] > 40
        kernel.close()
    finally:
        projection.close()
        projection.client.shutdown()
    assert not intruder.proof.exists()


def test_a_reader_leaves_planted_values_out_counts_them_and_shows_the_rest(
    cluster: Cluster, intruder: Intruder
) -> None:
    kid = "hostile-read"
    intruder.json(SLOTS_MAP, f"{kid}:0", slot_doc(kid, 0, 3))
    intruder.pickle(SLOTS_MAP, f"{kid}:1")
    intruder.json(SLOTS_MAP, f"{kid}:2", slot_doc(kid, 2, 3).replace('"version": 3', '"version": NaN'))
    intruder.json(SLOTS_MAP, f"{kid}:3", slot_doc(kid, 3, 3).replace('"size": 1.0', '"size": 1e400'))
    intruder.json(SLOTS_MAP, f"{kid}:4", slot_doc(kid, 4, -1))
    intruder.json(SLOTS_MAP, f"{kid}:5", slot_doc(kid, 5, 2**53 + 1))
    intruder.json(ACCOUNTS_MAP, kid, account_doc(kid, 5))
    intruder.pickle(ACCOUNTS_MAP, f"{kid}-planted")
    intruder.json(ACCOUNTS_MAP, f"{kid}-unversioned", '{"kernel_id": "hostile-read-unversioned"}')
    intruder.json(KERNELS_MAP, kid, status_doc(kid))
    intruder.foreign(KERNELS_MAP, f"{kid}-foreign")
    intruder.pickled_key(KERNELS_MAP)
    intruder.pickle(CONTROL_MAP, f"kernel:{kid}")
    planted = 12 - 3  # the three good documents above

    reader = ProjectionReader(cluster.client())  # a client of the user's own making
    try:
        live = reader.read_all(5.0, live_slots_only=True)
        whole = reader.read_all(5.0)
        # What `dita run --resume` reads for its kernel:
        own_slots, own_account = reader.slots(kid), reader.account(kid)
        planted_account = reader.account(f"{kid}-planted")
        kernels, control = reader.kernels(), reader.control()

        subscription = reader.subscribe((SLOTS_MAP,))
        try:
            intruder.pickle(SLOTS_MAP, f"{kid}:6")
            intruder.json(SLOTS_MAP, f"{kid}:7", slot_doc(kid, 7, 1))
            change = subscription.get(timeout=5.0)
            unreadable_changes = subscription.unreadable
        finally:
            subscription.close()
    finally:
        reader.client.shutdown()

    assert not intruder.proof.exists(), "a planted pickle ran in a reader"
    for view in (live, whole):
        assert [d["slot_id"] for d in view.slots if d["kernel_id"] == kid] == [0]
        assert kid in view.accounts and f"{kid}-unversioned" not in view.accounts
        assert kid in view.kernels and f"{kid}-foreign" not in view.kernels
        assert f"kernel:{kid}" not in view.control
        assert view.unreadable >= planted, view.unreadable
    assert [d["slot_id"] for d in own_slots] == [0]
    assert own_account is not None and own_account["version"] == 5
    assert planted_account is None
    assert kid in kernels and f"kernel:{kid}" not in control
    assert change is not None and change.key == f"{kid}:7" and unreadable_changes == 1


def test_control_show_and_watch_once_show_the_good_entries_past_planted_ones(
    cluster: Cluster, intruder: Intruder
) -> None:
    kid = "hostile-cli"
    intruder.json(KERNELS_MAP, kid, status_doc(kid))
    intruder.json(SLOTS_MAP, f"{kid}:0", slot_doc(kid, 0, 3))
    intruder.json(ACCOUNTS_MAP, kid, account_doc(kid, 3))
    intruder.pickle(CONTROL_MAP, "global")
    intruder.pickle(CONTROL_MAP, f"kernel:{kid}")
    intruder.pickled_key(CONTROL_MAP)
    intruder.pickle(KERNELS_MAP, f"{kid}-planted")
    intruder.pickle(SLOTS_MAP, f"{kid}:1")
    intruder.pickle(ACCOUNTS_MAP, f"{kid}-planted")
    intruder.pickle(HISTORY_MAP, "hostile-cli-history")

    commands = [["control", "show"], ["control", "history"], ["watch", "--once", "--kernel", kid]]
    for args in commands:
        process = dita(cluster, *args)
        out, _ = process.communicate(timeout=60)
        assert not intruder.proof.exists(), f"a planted pickle ran in dita {' '.join(args)}"
        assert process.returncode == 0 and "Traceback" not in out, out
        if args != ["control", "history"]:
            assert kid in out, out
        if args[0] == "watch":
            assert "OPEN SLOTS (1)" in out and "not JSON objects dita can read" in out, out


def test_a_value_of_an_unknown_serializer_crashes_no_control_command(
    cluster: Cluster, intruder: Intruder, dita_client: Any
) -> None:
    kid = "hostile-foreign"
    intruder.json(KERNELS_MAP, kid, status_doc(kid))
    intruder.foreign(CONTROL_MAP, "global")
    intruder.foreign(CONTROL_MAP, f"kernel:{kid}")
    intruder.foreign(KERNELS_MAP, f"{kid}-foreign")

    show = dita(cluster, "control", "show")
    out, _ = show.communicate(timeout=60)
    assert show.returncode == 0 and "Traceback" not in out and kid in out, out
    # An operator's write replaces the planted entry rather than tripping over it.
    put = dita(cluster, "control", "set", "--mode", "REDUCE_ONLY", "--reason", "over a foreign value")
    out, _ = put.communicate(timeout=60)
    assert put.returncode == 0 and "Traceback" not in out, out
    entry = json.loads(dita_client.get_map(CONTROL_MAP).blocking().get("global").to_string())
    assert entry["mode"] == "REDUCE_ONLY"


def test_a_kernels_control_listener_refuses_planted_entries_and_applies_good_ones(
    intruder: Intruder, dita_client: Any
) -> None:
    from dita.controlplane.listener import ControlListener
    from dita.controlplane.operator import ControlOperator

    kid = "hostile-listener"
    intruder.pickle(CONTROL_MAP, "global")
    intruder.pickle(CONTROL_MAP, f"kernel:{kid}")
    kernel = ExecutionKernel(max_slots=2, kernel_id=kid, venue=MockVenueAdapter())
    listener = ControlListener(dita_client, kernel)
    try:
        assert listener.start()
        intruder.foreign(CONTROL_MAP, f"kernel:{kid}")
        intruder.pickle(CONTROL_MAP, "global")
        wait_until(lambda: listener.refusals >= 3, timeout=10)
        assert not intruder.proof.exists(), "a planted pickle ran in a kernel's control listener"
        assert kernel.control.mode.value == "ACTIVE"
        ControlOperator(dita_client).set(
            kernel_id=kid, mode="REDUCE_ONLY", reason="after the intruder", allow_none=True
        )
        wait_until(lambda: kernel.control.mode.value == "REDUCE_ONLY", timeout=10)
    finally:
        listener.stop()
        kernel.close()
    assert not intruder.proof.exists()
