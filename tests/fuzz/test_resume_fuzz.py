"""Resume fuzzing: whatever a stray client plants in a kernel's documents, a resume never
raises and adopts nothing the kernel did not write: it comes back with its
checkpoint or with the genuine set, never with a planted figure.

A real member; a kernel with a document key writes its genuine documents once;
then each example plants a random mix over them (random JSON objects, text,
junk, absurd versions, the genuine documents with one field altered, with a
made-up MAC, or under another kernel's key) through a raw client, and resumes a
copy of the checkpoint against the maps. `DITA_RESUME_FUZZ_EXAMPLES` sets how
many examples run (default 25).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hazelcast.core import HazelcastJsonValue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dita._native import Kernel
from dita.contracts import KernelIntent
from dita.kernel import ExecutionKernel
from dita.projection.base import ACCOUNTS_MAP, SLOTS_MAP
from dita.projection.hazelcast import HazelcastProjection
from dita.projection.recovery import resume_from_projections
from dita.venue import MockVenueAdapter
from tests.conftest import Cluster

pytestmark = pytest.mark.hazelcast

KID = "resume-fuzz"
SLOTS = 3
DOCUMENT_KEY = b"resume-fuzz-document-key-0123456789"
EXAMPLES = int(os.environ.get("DITA_RESUME_FUZZ_EXAMPLES", "25"))


class Planted:
    """The kernel's genuine documents and checkpoint, and a raw client to plant over them."""

    def __init__(self, cluster: Cluster) -> None:
        self.attacker = cluster.client()
        client = cluster.client()
        projection = HazelcastProjection(client)
        kernel = ExecutionKernel(
            max_slots=SLOTS,
            kernel_id=KID,
            venue=MockVenueAdapter(),
            projection=projection,
            listen_control=False,
            document_key=DOCUMENT_KEY,
        )
        kernel.set_seed_capital(10_000.0)
        self.checkpoint = kernel.checkpoint()  # before the trade: the maps are ahead of it
        for slot in range(2):
            kernel.process_intent(
                KernelIntent(
                    action="ENTER",
                    slot_id=slot,
                    trade_id=f"rf{slot}",
                    asset="BTC",
                    side="LONG",
                    target_size=1.0,
                    reference_price=100.0,
                )
            )
        projection.flush(5.0)
        slots = self.attacker.get_map(SLOTS_MAP).blocking()
        accounts = self.attacker.get_map(ACCOUNTS_MAP).blocking()
        self.genuine = {f"{KID}:{i}": slots.get(f"{KID}:{i}").to_string() for i in range(SLOTS)}
        self.genuine[KID] = accounts.get(KID).to_string()
        kernel.close()
        projection.close()
        client.shutdown()
        # What a resume against the genuine documents alone comes back with.
        genuine_core = Kernel.restore(self.checkpoint)
        resume_from_projections(genuine_core, self.attacker, KID, DOCUMENT_KEY)
        self.adopted = genuine_core.checkpoint()
        assert self.adopted != self.checkpoint, "the maps must be ahead of the checkpoint"

    def plant(self, values: dict[str, Any]) -> None:
        slots = self.attacker.get_map(SLOTS_MAP).blocking()
        accounts = self.attacker.get_map(ACCOUNTS_MAP).blocking()
        for key, value in values.items():
            target = accounts if key == KID else slots
            if value is None:
                target.delete(key)
            else:
                target.set(key, value)


@pytest.fixture(scope="module")
def planted(cluster: Cluster) -> Iterator[Planted]:
    p = Planted(cluster)
    yield p
    p.plant(dict.fromkeys(p.genuine))
    p.attacker.shutdown()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = (
    "version",
    "size",
    "trade_id",
    "fsm_state",
    "k_capital",
    "seed_capital",
    "slot_id",
    "kernel_id",
    "mac",
)


@st.composite
def forged(draw: Any, genuine: str, key: str) -> Any:
    """One hostile value for `key`, never the genuine document itself."""
    kind = draw(st.sampled_from(["altered", "mac", "json", "text", "absurd", "moved", "delete"]))
    doc = json.loads(genuine)
    if kind == "altered":
        field = draw(st.sampled_from(FIELDS))
        value = draw(JSON)
        if doc.get(field) == value:
            value = [value]
        doc[field] = value
        return HazelcastJsonValue(json.dumps(doc, allow_nan=True))
    if kind == "mac":
        doc["size"] = 5_000.0
        doc.pop("mac", None)
        return HazelcastJsonValue(json.dumps(doc)[:-1] + ',"mac":"' + "ab" * 32 + '"}')
    if kind == "json":
        return HazelcastJsonValue(json.dumps(draw(JSON), allow_nan=True))
    if kind == "text":
        return draw(st.text(max_size=50))
    if kind == "absurd":
        doc["version"] = draw(st.sampled_from([2**53 + 1, 2**64 - 1, -1, 1e30, "7", True, None]))
        return HazelcastJsonValue(json.dumps(doc))
    if kind == "moved":  # a genuine document of another key
        return HazelcastJsonValue(genuine.replace(f"{KID}:", f"{KID}:9") if key != KID else genuine)
    return None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_resume_adopts_nothing_a_stray_client_planted(planted: Planted, data: Any) -> None:
    keys = sorted(planted.genuine)
    hit = data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=len(keys), unique=True))
    values: dict[str, Any] = {key: planted.genuine[key] for key in keys}
    for key in hit:
        values[key] = data.draw(forged(planted.genuine[key], key))
    planted.plant(
        {k: v if not isinstance(v, str) or k in hit else HazelcastJsonValue(v) for k, v in values.items()}
    )
    core = Kernel.restore(planted.checkpoint)
    recovery = resume_from_projections(core, planted.attacker, KID, DOCUMENT_KEY)  # never raises
    # Either the checkpoint stands, or what was adopted is the genuine set: a forged value
    # is refused and, when it tears the set, nothing is taken.
    assert core.checkpoint() in (Kernel.restore(planted.checkpoint).checkpoint(), planted.adopted), (
        recovery.describe()
    )
