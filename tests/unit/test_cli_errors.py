"""The `dita` command's errors: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dita.cluster.local_member import find_free_port


def dita(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DITA_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dita.cli", *args], capture_output=True, text=True, timeout=120, env=full_env
    )


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["control", "show"], {}, "no cluster given"),
        (
            ["control", "show", "--hazelcast", f"127.0.0.1:{find_free_port()}", "--connect-timeout", "1"],
            {},
            "cannot reach Hazelcast cluster",
        ),
        (
            ["control", "set", "--mode", "HALTED", "--reason", "x", "--require-signing"],
            {"DITA_HAZELCAST": "127.0.0.1:1"},
            "no control key was given",
        ),
        (
            ["control", "set", "--reason", "x"],
            {"DITA_HAZELCAST": "127.0.0.1:1", "DITA_CONTROL_KEY": "k"},
            "cannot reach",
        ),
    ],
)
def test_errors_are_one_clear_line(args: list[str], env: dict[str, str], says: str) -> None:
    result = dita(*args, env=env)
    assert result.returncode != 0
    assert says in result.stderr and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dita: error: "), result.stderr


def test_a_wrong_mode_name_lists_the_choices() -> None:
    result = dita(
        "control", "set", "--mode", "PAUSED", "--reason", "x", env={"DITA_HAZELCAST": "127.0.0.1:1"}
    )
    assert result.returncode == 2 and "PAUSED" in result.stderr and "HALTED" in result.stderr
