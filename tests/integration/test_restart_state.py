"""A restarted kernel adopts from `dita.slots` and `dita.accounts` only what it
can prove it wrote, and only a whole set of it.

Anyone who can reach the cluster can write the maps while the kernel is
stopped. Every document the kernel writes carries an HMAC under its document
key, and its account document names the slot versions it is consistent with
(the cut). These tests plant what a stray or hostile client would, and tear
the maps the way a kernel killed mid-write does, then resume through the
function `dita run --resume` uses (`resume_from_projections`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dita._native import Kernel
from dita.checkpoint import document_key
from dita.contracts import KernelIntent
from dita.demo import run_demo
from dita.kernel import ExecutionKernel
from dita.projection.hazelcast import HazelcastProjection
from dita.projection.recovery import reconcile_with_projections, resume_from_projections
from dita.venue import MockVenueAdapter
from tests.conftest import Cluster, wait_until

SLOTS_MAP = "dita.slots"
ACCOUNTS_MAP = "dita.accounts"
MAC_SUFFIX = len(',"mac":"') + 64 + len('"}')
#: What a projected account gives a restarted kernel (`Kernel.adopt_account`).
K_FIGURES = ("seed_capital", "k_realized_pnl", "k_fees_paid", "k_funding_net", "k_capital", "event_seq")


# ----- the format, checked here independently of dita's own reader ---------------------------------


def mac_verifies(text: str, key: bytes) -> bool:
    """The documented rule: the text ends `,"mac":"<64 hex>"}`, and the MAC is
    HMAC-SHA256 over the text without that member (`...}`)."""
    if not text.endswith('"}') or text[-MAC_SUFFIX:][: len(',"mac":"')] != ',"mac":"':
        return False
    signed = (text[:-MAC_SUFFIX] + "}").encode()
    return hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).hexdigest(), text[-66:-2])


def mix(slot_id: int, version: int) -> int:
    """The documented 64-bit mix of (slot_id, version) the cut sums."""
    m = (1 << 64) - 1

    def fmix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    return fmix(fmix((version + 0x9E3779B97F4A7C15) & m) ^ slot_id)


def digest(versions: list[int]) -> str:
    return f"{sum(mix(i, v) for i, v in enumerate(versions)) & ((1 << 64) - 1):016x}"


# ----- a kernel of these tests ---------------------------------------------------------------------


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = cluster.client()
    yield c
    c.shutdown()


class Life:
    """One life of a kernel: projected into the cluster, signing with `key`."""

    def __init__(self, client: Any, kid: str, key: bytes | None, core: Kernel | None = None) -> None:
        self.projection = HazelcastProjection(client)
        self.kernel = ExecutionKernel(
            max_slots=core.max_slots if core is not None else 6,
            kernel_id=kid,
            venue=MockVenueAdapter(seed=11, partial_fills=2),
            projection=self.projection,
            listen_control=False,
            document_key=key,
            _core=core,
        )
        if core is None:
            self.kernel.set_seed_capital(10_000.0)
            self.kernel.set_exchange_config({"taker_rate": 0.0005, "lot_step": 0.001, "tick_size": 0.01})

    def trade(self, steps: int, seed: int) -> None:
        run_demo(self.kernel, steps=steps, seed=seed)

    def stop(self) -> None:
        self.projection.flush(10.0)
        self.kernel.close()
        self.projection.close()


def raw(client: Any, kid: str, n: int) -> tuple[dict[str, str], str]:
    """The exact texts of the kernel's slot documents and of its account document."""
    slots = client.get_map(SLOTS_MAP).blocking().get_all([f"{kid}:{i}" for i in range(n)])
    account = client.get_map(ACCOUNTS_MAP).blocking().get(kid)
    return {k: v.to_string() for k, v in slots.items()}, account.to_string()


def put(client: Any, map_name: str, key: str, value: Any) -> None:
    from hazelcast.core import HazelcastJsonValue

    v = value if not isinstance(value, str) else HazelcastJsonValue(value)
    client.get_map(map_name).blocking().put(key, v)


def with_version(text: str, version: int) -> str:
    """The document's text with only its top-level version changed (its MAC kept)."""
    at_end = r'"version":[0-9]+([,}])$|"version":[0-9]+(,"(?:cut|mac)")'
    planted, n = re.subn(at_end, _versioned(version), text)
    assert n == 1, text
    return planted


def _versioned(version: int) -> Any:
    return lambda m: f'"version":{version}{m.group(1) or m.group(2)}'


def state(core: Kernel) -> dict[str, Any]:
    """Every slot and the account's figures, versions left out."""
    slots = [core.slot(i).to_dict() for i in range(core.max_slots)]
    for slot in slots:
        slot.pop("version")
    account = {k: v for k, v in core.account().items() if k != "version"}
    return {"slots": slots, "account": account}


def keys(tmp_path: Path, kid: str, how: str) -> bytes:
    key = document_key(kid, b"operators' control key" if how == "control key" else None, tmp_path / "k.cp")
    assert key is not None
    return key


# ----- (a) a stray client's position and capital --------------------------------------------------


@pytest.mark.hazelcast
@pytest.mark.parametrize("how", ["control key", "key file"])
def test_a_planted_position_and_capital_are_refused_and_reported(
    client: Any, tmp_path: Path, how: str
) -> None:
    kid = f"RT1-{how.replace(' ', '-')}"
    key = keys(tmp_path, kid, how)
    life = Life(client, kid, key)
    life.trade(60, seed=3)
    checkpoint = life.kernel.checkpoint()
    life.stop()

    slots, account = raw(client, kid, 6)
    assert all(mac_verifies(t, key) for t in [*slots.values(), account]), "the kernel signs what it writes"
    slot0 = json.loads(slots[f"{kid}:0"])
    slot0.update(
        trade_id="planted", asset="BTC-PERP", side="LONG", fsm_state="POSITION_OPEN", closed=False,
        size=5_000.0, initial_size=5_000.0, entry_price=60_000.0, exit_leg_ratios=[1.0], active_leg_index=0,
        active_entry_order=None, active_exit_order=None, close_reason="", version=slot0["version"] + 1_000,
    )  # fmt: skip
    put(client, SLOTS_MAP, f"{kid}:0", json.dumps(slot0, separators=(",", ":")))
    # The account keeps its MAC and every byte but the capital's: still refused.
    doc = json.loads(account)
    planted = account.replace(f'"seed_capital":{doc["seed_capital"]!r}', '"seed_capital":1000000000.0')
    planted = with_version(planted, doc["version"] + 1_000)
    assert f'"version":{doc["version"] + 1_000}' in planted and '"seed_capital":1000000000.0' in planted
    put(client, ACCOUNTS_MAP, kid, planted)

    core = Kernel.restore(checkpoint)
    recovery = resume_from_projections(core, client, kid, key)
    assert recovery.slots_from_projection == [] and not recovery.account_from_projection, recovery.describe()
    assert state(core) == state(Kernel.restore(checkpoint)), "nothing of the planted state was taken"
    assert core.account()["seed_capital"] == 10_000.0
    assert recovery.refused[f"{kid}:0"].startswith("no valid signature")
    assert recovery.refused[kid].startswith("no valid signature")
    text = recovery.describe()
    assert f"slot {kid}:0: no valid signature" in text and f"account {kid}: no valid signature" in text, text
    assert "the checkpoint stands" in text


# ----- (b) junk in slot documents -------------------------------------------------------------------


@pytest.mark.hazelcast
def test_junk_in_slot_documents_is_reported_and_the_slots_project_on(client: Any, tmp_path: Path) -> None:
    kid = "RT2"
    key = keys(tmp_path, kid, "key file")
    life = Life(client, kid, key)
    life.trade(40, seed=5)
    checkpoint = life.kernel.checkpoint()
    life.stop()
    slots, _ = raw(client, kid, 6)

    put(client, SLOTS_MAP, f"{kid}:0", "not a document")  # a JSON value that is not JSON
    client.get_map(SLOTS_MAP).blocking().put(f"{kid}:1", "just text")  # a plain string value
    put(client, SLOTS_MAP, f"{kid}:2", '{"slot_id": 2, "kernel_id": "RT2", "version": 9')  # invalid JSON
    no_version = json.loads(slots[f"{kid}:3"])
    del no_version["version"]
    put(client, SLOTS_MAP, f"{kid}:3", json.dumps(no_version))
    huge = json.loads(slots[f"{kid}:4"])
    put(client, SLOTS_MAP, f"{kid}:4", json.dumps({**huge, "version": 1e30}))
    put(client, SLOTS_MAP, f"{kid}:5", with_version(slots[f"{kid}:5"], 2**64 - 1))

    core = Kernel.restore(checkpoint)
    recovery = resume_from_projections(core, client, kid, key)
    assert recovery.slots_from_projection == [] and not recovery.account_from_projection
    assert state(core) == state(Kernel.restore(checkpoint))
    reasons = recovery.refused
    assert set(reasons) == {f"{kid}:{i}" for i in range(6)}, reasons
    assert all("not JSON" in reasons[f"{kid}:{i}"] for i in range(3)), reasons
    assert reasons[f"{kid}:3"] == "no version", reasons
    assert "version" in reasons[f"{kid}:4"] and "version" in reasons[f"{kid}:5"], reasons
    text = recovery.describe()
    assert all(f"slot {kid}:{i}: " in text for i in range(6)), text

    # The next life projects every slot again, above nothing the junk claimed.
    again = Life(client, kid, key, core=core)
    again.kernel.raise_versions({5: 2**64 - 1, 4: 2**53 + 1}, 2**64 - 1)  # absurd floors: ignored
    assert max(s.version for s in again.kernel.slots()) <= 2**53
    again.trade(40, seed=6)
    again.projection.flush(10.0)
    wanted = {f"{kid}:{s.slot_id}": s.version for s in again.kernel.slots()}

    def projected() -> bool:
        now, account = raw(client, kid, 6)
        ok = all(mac_verifies(t, key) for t in [*now.values(), account])
        return ok and {k: json.loads(t)["version"] for k, t in now.items()} == wanted

    wait_until(projected, timeout=15)
    # Once more after everything was written: a frozen version would stop here.
    for i in (4, 5):
        again.kernel.slot(i).metadata = {"after": "junk"}
    again.projection.flush(10.0)

    def noted() -> bool:
        now = raw(client, kid, 6)[0]
        return all(json.loads(now[f"{kid}:{i}"])["metadata"] == {"after": "junk"} for i in (4, 5))

    wait_until(noted, timeout=15)
    again.stop()


# ----- (c) a torn set ------------------------------------------------------------------------------


@pytest.mark.hazelcast
@pytest.mark.parametrize("later", ["account", "slots"])
def test_a_torn_set_is_detected_and_nothing_is_adopted(client: Any, tmp_path: Path, later: str) -> None:
    kid = f"RT3-{later}"
    key = keys(tmp_path, kid, "key file")
    life = Life(client, kid, key)
    life.trade(30, seed=7)
    checkpoint = life.kernel.checkpoint()
    life.trade(30, seed=8)
    life.projection.flush(10.0)
    first_slots, first_account = raw(client, kid, 6)
    life.trade(60, seed=9)
    life.stop()
    second_slots, second_account = raw(client, kid, 6)
    moved = sorted(k for k in first_slots if first_slots[k] != second_slots[k])
    assert moved and first_account != second_account, "the two moments differ"

    # Genuine documents of two moments, both after the checkpoint: one the later account
    # with the earlier slots, the other the earlier account with the later slots.
    if later == "account":
        for k in moved:
            put(client, SLOTS_MAP, k, first_slots[k])
    else:
        put(client, ACCOUNTS_MAP, kid, first_account)

    core = Kernel.restore(checkpoint)
    recovery = resume_from_projections(core, client, kid, key)
    assert recovery.slots_from_projection == [] and not recovery.account_from_projection, recovery.describe()
    assert state(core) == state(Kernel.restore(checkpoint))
    assert recovery.refused == {}, "every document is genuine"
    text = recovery.describe()
    assert "torn: the account's cut does not match" in text and "the checkpoint stands" in text, text


# ----- (d) a genuine newer set ---------------------------------------------------------------------


@pytest.mark.hazelcast
def test_a_genuine_set_newer_than_the_checkpoint_is_adopted(client: Any, tmp_path: Path) -> None:
    kid = "RT4"
    key = keys(tmp_path, kid, "control key")
    life = Life(client, kid, key)
    life.trade(40, seed=12)
    checkpoint = life.kernel.checkpoint()
    life.trade(60, seed=13)
    final = state(life.kernel._core)
    life.stop()  # writer flushed, no checkpoint of this later state

    slots, account = raw(client, kid, 6)
    assert all(mac_verifies(t, key) for t in [*slots.values(), account])
    cut = json.loads(account)["cut"]
    versions = [json.loads(slots[f"{kid}:{i}"])["version"] for i in range(6)]
    assert cut == {"slots": 6, "digest": digest(versions)}, "the account names the slot versions it goes with"

    core = Kernel.restore(checkpoint)
    old = Kernel.restore(checkpoint)
    newer = [i for i in range(6) if versions[i] > old.slot(i).version]
    assert newer, "the set must be ahead of the checkpoint"
    recovery = resume_from_projections(core, client, kid, key)
    assert recovery.slots_from_projection == newer and recovery.account_from_projection, recovery.describe()
    assert recovery.refused == {}
    assert state(core)["slots"] == final["slots"]
    assert {k: core.account()[k] for k in K_FIGURES} == {k: final["account"][k] for k in K_FIGURES}
    assert f"newer than the checkpoint: slots {', '.join(map(str, newer))}, account" in recovery.describe()

    # A wrong key proves nothing: the same set is refused whole.
    other = Kernel.restore(checkpoint)
    refused = resume_from_projections(other, client, kid, b"someone else's key of 32 bytes.")
    assert refused.slots_from_projection == [] and not refused.account_from_projection
    assert state(other) == state(old)
    # And without a key nothing is adopted either.
    unkeyed = Kernel.restore(checkpoint)
    assert not resume_from_projections(unkeyed, client, kid, None).account_from_projection
    assert state(unkeyed) == state(old)


# ----- the document key ----------------------------------------------------------------------------


def test_the_document_key_comes_from_the_control_key_or_a_file_beside_the_checkpoint(tmp_path: Path) -> None:
    cp = tmp_path / "run.checkpoint"
    derived = document_key("k1", b"ctl", cp)
    assert derived == hmac.new(b"ctl", b"dita documents k1", hashlib.sha256).digest()
    assert document_key("k2", b"ctl", cp) != derived
    assert not (tmp_path / "run.checkpoint.key").exists(), "a control key needs no file"

    first = document_key("k1", None, cp)
    path = tmp_path / "run.checkpoint.key"
    assert first is not None and len(first) == 32 and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert document_key("k1", None, str(cp)) == first, "reused, not made anew"
    assert document_key("k1", None, None) is None
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="readable by others"):
        document_key("k1", None, cp)
    os.chmod(path, 0o600)
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match=str(path)):
        document_key("k1", None, cp)


def test_documents_drained_with_a_key_verify_and_without_one_carry_no_mac() -> None:
    kernel = Kernel(3)
    slots, account = kernel.drain_documents("k", now=1.0)
    assert account is not None
    assert all('"mac"' not in doc for _, _, doc in slots) and '"mac"' not in account[1]
    key = b"k" * 32
    kernel.set_document_key(key)
    kernel.mark_all_changed()
    slots, account = kernel.drain_documents("k", now=1.0)
    assert account is not None
    assert all(mac_verifies(doc, key) for _, _, doc in slots) and mac_verifies(account[1], key)
    assert not mac_verifies(account[1].replace('"version"', '"version" '), key)
    assert json.loads(account[1])["cut"] == {"slots": 3, "digest": digest([0, 0, 0])}
    with pytest.raises(ValueError, match="document_key"):
        kernel.set_document_key(b"")


def drained(kernel: ExecutionKernel) -> tuple[dict[str, str], str]:
    kernel.mark_all_changed()
    slots, account = kernel.drain_documents()
    assert account is not None
    return {key: doc for key, _, doc in slots}, account[1]


def test_a_refused_slot_counts_at_its_checkpoint_version_and_a_missing_one_at_its_first() -> None:
    key = b"k" * 32
    kernel = ExecutionKernel(max_slots=4, venue=MockVenueAdapter(seed=2), document_key=key)
    kernel.set_seed_capital(1_000.0)
    checkpoint = kernel.checkpoint()
    kid = kernel.kernel_id
    for slot in (0, 2):
        kernel.process_intent(
            KernelIntent(
                action="ENTER", slot_id=slot, trade_id=f"t{slot}", asset="BTC-PERP", side="LONG",
                target_size=1.0, reference_price=100.0,
            )
        )  # fmt: skip
    slots, account = drained(kernel)
    old = Kernel.restore(checkpoint)
    moved = [i for i in range(4) if kernel.slot(i).version > old.slot(i).version]
    assert moved == [0, 2], "two slots moved on, two not"
    still = next(i for i in range(4) if i not in moved)

    # Junk over a slot the kernel never moved after its checkpoint: the cut still
    # proves the rest, which is adopted; the junk is reported.
    core = Kernel.restore(checkpoint)
    recovery = reconcile_with_projections(
        core, {**slots, f"{kid}:{still}": "junk"}, account, kernel_id=kid, document_key=key
    )
    assert recovery.slots_from_projection == moved and recovery.account_from_projection, recovery.describe()
    assert f"{kid}:{still}" in recovery.refused

    # Junk over a slot it did move: that slot's newer state is unknown, so nothing is taken.
    core = Kernel.restore(checkpoint)
    recovery = reconcile_with_projections(
        core, {**slots, f"{kid}:{moved[0]}": "junk"}, account, kernel_id=kid, document_key=key
    )
    assert not recovery.adopted and recovery.not_adopted.startswith("torn"), recovery.describe()
    # A moved slot's document gone: counted at version 0, torn too.
    gone = {k: v for k, v in slots.items() if k != f"{kid}:{moved[0]}"}
    recovery = reconcile_with_projections(core, gone, account, kernel_id=kid, document_key=key)
    assert not recovery.adopted and recovery.not_adopted.startswith("torn"), recovery.describe()
    assert state(core) == state(old)
