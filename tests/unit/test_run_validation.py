"""`dita run` and `dita watch` refuse a bad flag, file or variable before they touch anything.

Every case runs the real command line. The run is pointed at a listening
socket the test holds: a refused run must not even open a connection to it,
and must not have started a kernel (no "dita: kernel" line). A refusal is
one line that names the flag (or variable) and the value, and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Setup = Callable[[Path], tuple[list[str], dict[str, str]]]


def dita(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DITA_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dita.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port nobody answers on: connections to it queue up, so the test can count them."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(16)
        held.setblocking(False)
        yield held


def connections(held: socket.socket) -> int:
    count = 0
    for _ in range(16):
        try:
            conn, _ = held.accept()
        except BlockingIOError:
            break
        conn.close()
        count += 1
    return count


def scenario(*lines: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "bad.jsonl"
        path.write_text("".join(line + "\n" for line in lines))
        return path

    return make


def flag(*args: str) -> Setup:
    return lambda _tmp: (list(args), {})


def with_file(option: str, make: Callable[[Path], Path], *more: str) -> Setup:
    return lambda tmp: ([option, str(make(tmp)), *more], {})


def with_env(name: str, value: str | Callable[[Path], str], *more: str) -> Setup:
    return lambda tmp: (list(more), {name: value(tmp) if callable(value) else value})


def big_line(tmp: Path) -> Path:
    path = tmp / "big.jsonl"
    path.write_text('{"seed_capital": 100}\n{"mark": {"asset": "' + "B" * 100_000 + '", "price": 1}}\n')
    return path


def binary(tmp: Path) -> Path:
    path = tmp / "binary.jsonl"
    path.write_bytes(b'{"seed_capital": 100}\n\xff\xfe\x80garbage\n')
    return path


def nested(tmp: Path) -> Path:
    path = tmp / "nested.jsonl"
    path.write_text('{"exchange_config": ' + "[" * 30_000 + "]" * 30_000 + "}\n")
    return path


def empty_key(tmp: Path) -> Path:
    path = tmp / "empty.key"
    path.write_text("\n")
    return path


INTENT = {"action": "ENTER", "slot_id": 0, "trade_id": "t1", "asset": "BTC", "side": "LONG",
          "target_size": 1.0, "reference_price": 100.0}  # fmt: skip

# (case id, what the command line and environment add, what the one line must name)
CASES: list[tuple[str, Setup, list[str]]] = [
    ("duration nan", flag("--duration", "nan"), ["--duration", "nan"]),
    ("duration inf", flag("--duration", "inf"), ["--duration", "inf"]),
    ("duration negative", flag("--duration", "-1"), ["--duration", "-1"]),
    ("interval nan", flag("--interval", "nan"), ["--interval", "nan"]),
    ("interval inf", flag("--interval", "inf"), ["--interval", "inf"]),
    ("interval negative", flag("--interval", "-0.5"), ["--interval", "-0.5"]),
    ("checkpoint-every nan", flag("--checkpoint-every", "nan"), ["--checkpoint-every", "nan"]),
    ("checkpoint-every inf", flag("--checkpoint-every", "inf"), ["--checkpoint-every", "inf"]),
    ("checkpoint-every zero", flag("--checkpoint-every", "0"), ["--checkpoint-every", "0"]),
    ("connect-timeout negative", flag("--connect-timeout", "-1"), ["--connect-timeout", "-1"]),
    ("connect-timeout nan", flag("--connect-timeout", "nan"), ["--connect-timeout", "nan"]),
    ("connect-timeout zero", flag("--connect-timeout", "0"), ["--connect-timeout", "0"]),
    ("hazelcast not a port", flag("--hazelcast", "127.0.0.1:notaport"), ["--hazelcast", "notaport"]),
    ("hazelcast port 0", flag("--hazelcast", "127.0.0.1:0"), ["--hazelcast", "127.0.0.1:0"]),
    ("hazelcast port too big", flag("--hazelcast", "127.0.0.1:70000"), ["--hazelcast", "70000"]),
    ("hazelcast no port", flag("--hazelcast", "127.0.0.1"), ["--hazelcast", "127.0.0.1"]),
    ("hazelcast empty member", flag("--hazelcast", "127.0.0.1:5701,"), ["--hazelcast", "''"]),
    ("DITA_HAZELCAST", with_env("DITA_HAZELCAST", "127.0.0.1:notaport"), ["DITA_HAZELCAST", "notaport"]),
    ("kernel-id empty", flag("--kernel-id", ""), ["--kernel-id", "''"]),
    ("kernel-id blank", flag("--kernel-id", "   "), ["--kernel-id", "'   '"]),
    ("kernel-id control character", flag("--kernel-id", "k\x01"), ["--kernel-id", "'k\\x01'"]),
    ("slots zero", flag("--slots", "0"), ["--slots", "0"]),
    ("slots too many", flag("--slots", "2000000"), ["--slots", "2000000"]),
    ("steps negative", flag("--steps", "-3"), ["--steps", "-3"]),
    ("cluster empty", flag("--cluster", ""), ["--cluster", "''"]),
    (
        "checkpoint in a missing directory",
        lambda tmp: (["--checkpoint", str(tmp / "missing" / "k.cp")], {}),
        ["--checkpoint", "missing"],
    ),
    (
        "checkpoint is a directory",
        lambda tmp: (["--checkpoint", str(tmp)], {}),
        ["--checkpoint", "directory"],
    ),
    (
        "journal in a missing directory",
        lambda tmp: (["--journal", str(tmp / "missing" / "j.msgpack")], {}),
        ["--journal", "missing"],
    ),
    (
        "scenario missing",
        lambda tmp: (["--scenario", str(tmp / "nope.jsonl")], {}),
        ["--scenario", "nope.jsonl"],
    ),
    ("scenario is a directory", lambda tmp: (["--scenario", str(tmp)], {}), ["--scenario", "directory"]),
    ("scenario NaN seed", with_file("--scenario", scenario('{"seed_capital": NaN}')), ["line 1", "NaN"]),
    (
        "scenario Infinity price",
        with_file(
            "--scenario", scenario('{"seed_capital": 1}', '{"mark": {"asset": "B", "price": Infinity}}')
        ),
        ["line 2", "Infinity"],
    ),
    (
        "scenario overflowing float",
        with_file("--scenario", scenario('{"seed_capital": 1e400}')),
        ["line 1", "1e400"],
    ),
    (
        "scenario huge integer",
        with_file("--scenario", scenario('{"seed_capital": 1' + "0" * 400 + "}")),
        ["line 1", "out of range"],
    ),
    (
        "scenario NaN in an intent",
        with_file("--scenario", scenario(json.dumps({"intent": INTENT}).replace("1.0", "NaN"))),
        ["line 1", "NaN"],
    ),
    ("scenario 100 KB line", with_file("--scenario", big_line), ["line 2", "65536 bytes"]),
    ("scenario binary", with_file("--scenario", binary), ["line 2", "UTF-8"]),
    ("scenario /dev/zero", flag("--scenario", "/dev/zero"), ["line 1", "NUL"]),
    ("scenario nested too deep", with_file("--scenario", nested), ["line 1", "nested"]),
    (
        "scenario line the kernel cannot take",
        with_file("--scenario", scenario('{"account_event": {"kind": "WINDFALL", "event_id": "a"}}')),
        ["line 1", "WINDFALL"],
    ),
    (
        "control key file missing",
        lambda tmp: (["--control-key-file", str(tmp / "no.key")], {}),
        ["--control-key-file", "no.key"],
    ),
    ("control key file empty", with_file("--control-key-file", empty_key), ["--control-key-file", "empty"]),
    (
        "control key file /dev/zero",
        flag("--control-key-file", "/dev/zero"),
        ["--control-key-file", "/dev/zero"],
    ),
    (
        "DITA_CONTROL_KEY_FILE missing",
        with_env("DITA_CONTROL_KEY_FILE", lambda tmp: str(tmp / "env.key")),
        ["DITA_CONTROL_KEY_FILE", "env.key"],
    ),
    ("DITA_KERNEL_ID control character", with_env("DITA_KERNEL_ID", "k\x02"), ["DITA_KERNEL_ID"]),
    (
        "DITA_REQUIRE_SIGNING not a boolean",
        with_env("DITA_REQUIRE_SIGNING", "perhaps"),
        ["DITA_REQUIRE_SIGNING"],
    ),
    ("require signing without a key", flag("--require-signing"), ["--require-signing", "no control key"]),
    (
        "require signing from the environment",
        with_env("DITA_REQUIRE_SIGNING", "1"),
        ["DITA_REQUIRE_SIGNING=1", "no control key"],
    ),
]


@pytest.mark.parametrize(("setup", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_run_is_refused_in_one_line_before_it_connects(
    tmp_path: Path, listener: socket.socket, setup: Setup, names: list[str]
) -> None:
    args, env = setup(tmp_path)
    port = listener.getsockname()[1]
    base = ["--no-local-member", "--steps", "5", "--connect-timeout", "1"]
    if not any(a.startswith("--hazelcast") for a in args) and "DITA_HAZELCAST" not in env:
        base += ["--hazelcast", f"127.0.0.1:{port}"]
    if "--connect-timeout" in args:
        base = base[:3] + base[5:]
    result = dita("run", *base, *args, env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode not in (0, None) and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("dita"), result.stderr
    assert "unrecognized arguments" not in lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert "dita: kernel" not in result.stdout, "no kernel started"
    assert connections(listener) == 0, "a refused run connected to the cluster"


def test_the_control_key_file_flag_beats_the_key_in_the_environment(tmp_path: Path) -> None:
    # A flag beats its variable: a bad --control-key-file is refused even with DITA_CONTROL_KEY set.
    result = dita(
        "run", "--no-local-member", "--steps", "1", "--control-key-file", str(tmp_path / "no.key"),
        env={"DITA_CONTROL_KEY": "from-the-environment"},
    )  # fmt: skip
    assert result.returncode == 2 and "--control-key-file" in result.stderr, result.stderr


def test_the_control_key_file_flag_is_the_key_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from argparse import Namespace

    from dita.commands.common import EnvDefault, control_key

    key = tmp_path / "k.key"
    key.write_text("from-the-file\n")
    monkeypatch.setenv("DITA_CONTROL_KEY", "from-the-environment")
    assert control_key(Namespace(control_key_file=str(key))) == b"from-the-file"
    assert control_key(Namespace(control_key_file=None)) == b"from-the-environment"
    # DITA_CONTROL_KEY_FILE is a default, so DITA_CONTROL_KEY beats it, as before.
    from_env = EnvDefault(str(key), "DITA_CONTROL_KEY_FILE")
    assert control_key(Namespace(control_key_file=from_env)) == b"from-the-environment"
    monkeypatch.delenv("DITA_CONTROL_KEY")
    assert control_key(Namespace(control_key_file=from_env)) == b"from-the-file"


def test_require_signing_is_met_by_a_key_from_the_flag_or_the_environment(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    key.write_text("secret\n")
    from_flag = dita(
        "run", "--no-local-member", "--steps", "1", "--control-key-file", str(key), "--require-signing"
    )
    assert from_flag.returncode == 0, from_flag.stderr
    from_env = dita(
        "run",
        "--no-local-member",
        "--steps",
        "1",
        env={"DITA_CONTROL_KEY": "secret", "DITA_REQUIRE_SIGNING": "1"},
    )
    assert from_env.returncode == 0, from_env.stderr


def test_require_signing_can_be_turned_off_by_its_flag() -> None:
    result = dita(
        "run", "--no-local-member", "--steps", "1", "--no-require-signing", env={"DITA_REQUIRE_SIGNING": "1"}
    )
    assert result.returncode == 0, result.stderr


WATCH_CASES = [
    (["--interval", "nan"], ["--interval", "nan"]),
    (["--interval", "inf"], ["--interval", "inf"]),
    (["--interval", "-1"], ["--interval", "-1"]),
    (["--stale-after", "nan"], ["--stale-after", "nan"]),
    (["--stale-after", "inf"], ["--stale-after", "inf"]),
    (["--dead-after", "nan"], ["--dead-after", "nan"]),
    (["--stale-after", "10", "--dead-after", "5"], ["--dead-after", "5", "--stale-after"]),
    (["--connect-timeout", "nan"], ["--connect-timeout", "nan"]),
    (["--connect-timeout", "-1"], ["--connect-timeout", "-1"]),
    (["--hazelcast", "127.0.0.1:notaport"], ["--hazelcast", "notaport"]),
]


@pytest.mark.parametrize(("args", "names"), WATCH_CASES, ids=[" ".join(c[0]) for c in WATCH_CASES])
def test_a_bad_watch_flag_is_refused_in_one_line(
    listener: socket.socket, args: list[str], names: list[str]
) -> None:
    port = listener.getsockname()[1]
    base = ["--once", "--connect-timeout", "1"] if "--connect-timeout" not in args else ["--once"]
    if "--hazelcast" not in args:
        base += ["--hazelcast", f"127.0.0.1:{port}"]
    result = dita("watch", *base, *args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and "unrecognized arguments" not in lines[0], result.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert connections(listener) == 0, "a refused watch connected to the cluster"
