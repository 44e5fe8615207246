"""Real documents from a real member against the projection contract in `projections/`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from dita.contracts import KernelIntent
from dita.controlplane.operator import ControlOperator
from dita.kernel import ExecutionKernel
from dita.projection.hazelcast import HazelcastProjection
from dita.venue import MockVenueAdapter
from tests.conftest import Cluster, reset_control

pytestmark = pytest.mark.hazelcast

CONTRACT = Path(__file__).resolve().parents[2] / "projections"


def validator(name: str) -> Draft202012Validator:
    schemas = {p.name: json.loads(p.read_text()) for p in (CONTRACT / "schemas").glob("*.json")}
    registry: Registry[Any] = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values()
    )
    return Draft202012Validator(schemas[name], registry=registry, format_checker=FormatChecker())


def statements(path: Path) -> list[str]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


@pytest.fixture(scope="module")
def populated(cluster: Cluster) -> Any:
    client = cluster.client()
    # The kernel obeys the cluster's control: what other tests left there must not halt it.
    reset_control(client)
    projection = HazelcastProjection(client)
    kernel = ExecutionKernel(
        max_slots=4, kernel_id="contract-k", venue=MockVenueAdapter(partial_fills=2), projection=projection
    )
    kernel.set_seed_capital(10_000.0)
    kernel.set_exchange_config({"taker_rate": 0.0005, "lot_step": 0.001, "tick_size": 0.1})
    kernel.process_intent(
        KernelIntent(
            action="ENTER",
            slot_id=0,
            trade_id="c1",
            asset="BTC",
            side="LONG",
            target_size=2.0,
            reference_price=100.0,
            exit_leg_ratios=(0.5, 0.5),
            metadata={"strategy": "contract"},
        )
    )
    kernel.process_intent(KernelIntent(action="EXIT", slot_id=0, reference_price=90.0))
    kernel.process_intent(
        KernelIntent(
            action="ENTER",
            slot_id=1,
            trade_id="c2",
            asset="ETH",
            side="SHORT",
            target_size=1.0,
            reference_price=10.0,
        )
    )
    kernel.mark_price("ETH", 11.0)
    kernel.on_account_event(
        {"kind": "ACCOUNT_UPDATE", "event_id": "u1", "wallet_balance": 9_000.0, "available_margin": 8_000.0}
    )
    ControlOperator(client, author="contract-test").set(verbosity="VERBOSE", reason="contract")
    projection.flush(5.0)
    projection.beat_now()
    projection.flush(5.0)
    for statement in statements(CONTRACT / "sql" / "mappings.sql"):
        client.sql.execute(statement).result()
    yield client
    projection.close()
    client.shutdown()


def docs(client: Any, map_name: str) -> list[dict[str, Any]]:
    return [json.loads(v.to_string()) for v in client.get_map(map_name).blocking().values()]


@pytest.mark.parametrize(
    ("map_name", "schema"),
    [
        ("dita.slots", "slot.schema.json"),
        ("dita.accounts", "account.schema.json"),
        ("dita.kernels", "kernel.schema.json"),
        ("dita.control", "control.schema.json"),
    ],
)
def test_every_document_matches_its_schema(populated: Any, map_name: str, schema: str) -> None:
    found = docs(populated, map_name)
    assert found, f"{map_name} is empty"
    check = validator(schema)
    for doc in found:
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in check.iter_errors(doc)]
        assert not errors, (doc.get("key") or doc.get("kernel_id"), errors)


def test_the_schemas_reject_what_readers_must_not_meet(populated: Any) -> None:
    slot = next(d for d in docs(populated, "dita.slots") if d["kernel_id"] == "contract-k")
    check = validator("slot.schema.json")
    for bad in (
        {**slot, "fsm_state": "OPEN"},
        {**slot, "size": -1},
        {k: v for k, v in slot.items() if k != "version"},
    ):
        assert list(check.iter_errors(bad))


@pytest.mark.parametrize("query", sorted((CONTRACT / "sql" / "queries").glob("*.sql")), ids=lambda p: p.stem)
def test_every_example_query_runs(populated: Any, query: Path) -> None:
    sql = statements(query)[0]
    now = time.time()
    params = [now] * sql.count("?")
    rows = [
        {c.name: row.get_object_with_index(i) for i, c in enumerate(row.metadata.columns)}
        for row in populated.sql.execute(sql, *params).result()
    ]
    if query.stem == "open_positions":
        assert {(r["kernel_id"], r["trade_id"]) for r in rows} >= {("contract-k", "c1"), ("contract-k", "c2")}
    if query.stem == "accounts_out_of_reconcile":
        assert any(r["kernel_id"] == "contract-k" and r["reconcile_status"] == "ERROR" for r in rows)
