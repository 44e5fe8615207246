"""Control entries: every malformed, stale or unsigned entry is refused with its reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dita.controlplane import ControlRefusal, effective_control, parse_entry, sign_entry, verify_signature
from dita.controlplane.entries import ControlEntry

KEY = b"operators-and-kernels-share-this"


def entry(**fields: Any) -> str:
    doc: dict[str, Any] = {"mode": "HALTED", "rev": 5, "author": "ops", "reason": "drill", "issued_at": 1.0}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not None})


def signed(key: str = "global", **fields: Any) -> str:
    doc = json.loads(entry(**fields))
    doc["signature"] = sign_entry(doc, KEY, key)
    return json.dumps(doc)


MALFORMED: list[tuple[str, str, Any, str]] = [
    ("unknown field", "global", entry(speed=3), "unknown field"),
    ("unknown mode", "global", entry(mode="PAUSED"), "mode = 'PAUSED'"),
    ("lower-case mode", "global", entry(mode="halted"), "mode = 'halted'"),
    ("mode as number", "global", entry(mode=1), "mode = 1"),
    ("unknown verbosity", "global", entry(verbosity="LOUD"), "verbosity"),
    ("journal as text", "global", entry(journal="true"), "journal"),
    ("rev as text", "global", entry(rev="6"), "rev = '6'"),
    ("rev zero", "global", entry(rev=0), "rev = 0"),
    ("rev as bool", "global", entry(rev=True), "rev = True"),
    ("rev missing", "global", entry(rev=None), "rev = None"),
    ("old rev", "global", entry(rev=3), "not above the last applied rev 4"),
    ("same rev replayed", "global", entry(rev=4), "not above"),
    ("nothing set", "global", entry(mode=None), "sets none of"),
    ("not JSON", "global", "mode=HALTED", "not JSON"),
    ("JSON list", "global", "[1, 2]", "not a JSON object"),
    ("JSON string", "global", '"HALTED"', "not a JSON object"),
    ("huge value", "global", entry(reason="x" * 10_000), "bytes, more than"),
    ("author too long", "global", entry(author="a" * 1_001), "author"),
    ("author as number", "global", entry(author=7), "author"),
    ("issued_at as text", "global", entry(issued_at="now"), "issued_at"),
    ("bad key", "kernels", entry(), "unknown key"),
    ("empty kernel key", "kernel:", entry(), "unknown key"),
    ("binary value", "global", b"\x00\x01", "not JSON"),
    ("NaN issued_at", "global", entry(issued_at=float("nan")), "not JSON"),
    (
        "Infinity issued_at",
        "global",
        entry().replace('"issued_at": 1.0', '"issued_at": Infinity'),
        "not JSON",
    ),
    (
        "overflowing issued_at",
        "global",
        entry().replace('"issued_at": 1.0', '"issued_at": 1e400'),
        "1e400 is beyond a double",
    ),
    ("deeply nested", "global", "[" * 2_000 + "]" * 2_000, "not JSON"),
    ("rev past 64 bits", "global", entry(rev=2**70), "an integer of 22 digits"),
    ("rev past the bound", "global", entry(rev=2**63), "must be an integer from 1 to"),
    ("clear with a mode", "global", entry(clear=True), "sets nothing else"),
    ("clear as text", "global", entry(mode=None, clear="yes"), "clear = 'yes'"),
    ("cancel_working as number", "global", entry(cancel_working=1), "cancel_working = 1"),
    ("a dict object, not text", "global", {"mode": "HALTED"}, "not a JSON document"),
]


@pytest.mark.parametrize(("name", "key", "raw", "why"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_entries_are_refused_with_their_reason(name: str, key: str, raw: Any, why: str) -> None:
    with pytest.raises(ControlRefusal) as refused:
        parse_entry(key, raw, last_rev=4)
    assert why in refused.value.reason
    assert refused.value.key == key


SIGNING: list[tuple[str, Any, str]] = [
    ("unsigned", entry(), "unsigned"),
    ("forged", entry(signature="0" * 64), "does not match"),
    ("altered after signing", json.dumps({**json.loads(signed()), "mode": "ACTIVE"}), "does not match"),
    (
        "signed with another key",
        json.dumps({**json.loads(entry()), "signature": sign_entry(json.loads(entry()), b"other", "global")}),
        "does not match",
    ),
    # A kernel's signed override copied to `global` would become every kernel's.
    ("copied from a kernel's key", signed("kernel:A"), "under key 'global'"),
]


@pytest.mark.parametrize(("name", "raw", "why"), SIGNING, ids=[s[0] for s in SIGNING])
def test_with_a_control_key_only_rightly_signed_entries_pass(name: str, raw: Any, why: str) -> None:
    with pytest.raises(ControlRefusal, match=why):
        parse_entry("global", raw, control_key=KEY)


def test_a_signed_replay_of_an_old_rev_is_refused() -> None:
    old = signed(rev=2)
    assert parse_entry("global", old, control_key=KEY).rev == 2
    with pytest.raises(ControlRefusal, match="not above"):
        parse_entry("global", old, last_rev=2, control_key=KEY)


def test_valid_entries_parse_and_signatures_verify() -> None:
    e = parse_entry(
        "kernel:k1", signed("kernel:k1", verbosity="TRACE", journal=True), last_rev=4, control_key=KEY
    )
    assert (e.mode, e.verbosity, e.journal, e.rev, e.author) == ("HALTED", "TRACE", True, 5, "ops")
    assert verify_signature(json.loads(signed()), KEY, "global")
    assert not verify_signature(json.loads(signed()), KEY, "kernel:k1")


def test_a_signed_entry_copied_to_another_kernel_is_refused() -> None:
    copied = signed("kernel:A", mode="ACTIVE")
    assert parse_entry("kernel:A", copied, control_key=KEY).mode == "ACTIVE"
    with pytest.raises(ControlRefusal, match="forged, altered or copied"):
        parse_entry("kernel:B", copied, control_key=KEY)


def test_entries_older_than_the_window_are_refused_as_replays() -> None:
    raw = signed(issued_at=1_000.0)
    assert parse_entry("global", raw, control_key=KEY, now=1_000.0 + 86_400, max_age_s=2 * 86_400).rev == 5
    with pytest.raises(ControlRefusal, match="a replay"):
        parse_entry("global", raw, control_key=KEY, now=1_000.0 + 3 * 86_400, max_age_s=2 * 86_400)
    with pytest.raises(ControlRefusal, match="in the future"):
        parse_entry("global", raw, control_key=KEY, now=1_000.0 - 3_600, max_age_s=2 * 86_400)


def test_a_clearing_entry_sets_nothing() -> None:
    tomb = parse_entry("kernel:k", signed("kernel:k", mode=None, clear=True), control_key=KEY)
    assert tomb.clear and tomb.values() == {}
    default = {"mode": "ACTIVE", "verbosity": "NORMAL", "journal": False}
    glob = ControlEntry("global", 3, mode="HALTED")  # type: ignore[arg-type]
    assert effective_control(default, glob, tomb).sources["mode"] == "global"


def test_effective_control_is_field_by_field() -> None:
    default = {"mode": "ACTIVE", "verbosity": "NORMAL", "journal": False}
    glob = ControlEntry("global", 3, mode="REDUCE_ONLY", verbosity="VERBOSE")  # type: ignore[arg-type]
    own = ControlEntry("kernel:k", 1, mode="HALTED")  # type: ignore[arg-type]
    eff = effective_control(default, glob, own)
    assert (eff.mode, eff.verbosity, eff.journal) == ("HALTED", "VERBOSE", False)
    assert eff.sources == {"mode": "kernel:k", "verbosity": "global", "journal": "default"}
    assert effective_control(default, glob, None).mode == "REDUCE_ONLY"
    assert effective_control(default, None, None).mode == "ACTIVE"
