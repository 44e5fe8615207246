"""The `dita` command's errors: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import socket
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


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DITA_SLOTS": "twenty"}, "DITA_SLOTS='twenty': 'twenty' is not a whole number"),
        ({"DITA_SLOTS": "0"}, "DITA_SLOTS='0': 0 must be at least 1"),
        ({"DITA_START_MODE": "PAUSED"}, "DITA_START_MODE='PAUSED': 'PAUSED' is not one of ACTIVE"),
        ({"DITA_METRICS_PORT": "99999"}, "DITA_METRICS_PORT='99999': 99999 is not a port number"),
    ],
)
def test_a_bad_environment_value_names_its_variable(env: dict[str, str], says: str) -> None:
    result = dita("run", "--no-local-member", "--steps", "1", env=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"dita: error: {says}"), result.stderr
    assert "dita: kernel" not in result.stdout, "nothing ran"


def test_environment_defaults_apply_and_flags_beat_them() -> None:
    env = {"DITA_KERNEL_ID": "from-env", "DITA_SLOTS": "3", "DITA_START_MODE": "REDUCE_ONLY"}
    ran = dita("run", "--no-local-member", "--steps", "1", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "kernel from-env, 3 slots" in ran.stdout and "mode REDUCE_ONLY" in ran.stdout
    flagged = dita("run", "--no-local-member", "--steps", "1", "--slots", "2", "--kernel-id", "flag", env=env)
    assert flagged.returncode == 0, flagged.stderr
    assert "kernel flag, 2 slots" in flagged.stdout


def test_run_help_names_the_variable_each_flag_reads() -> None:
    result = dita("run", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for flag, variable in [
        ("--kernel-id", "DITA_KERNEL_ID"),
        ("--slots", "DITA_SLOTS"),
        ("--start-mode", "DITA_START_MODE"),
        ("--hazelcast", "DITA_HAZELCAST"),
        ("--cluster", "DITA_CLUSTER"),
        ("--control-key-file", "DITA_CONTROL_KEY_FILE"),
        ("--metrics-port", "DITA_METRICS_PORT"),
        ("--metrics-host", "DITA_METRICS_HOST"),
    ]:
        # The flag's own help line says which variable it reads.
        help_of_flag = text.split(f" {flag} ", 1)[1].split(" --", 1)[0]
        assert f"${variable}" in help_of_flag, (flag, help_of_flag)
    assert "DITA_CONTROL_KEY " in text


def test_a_run_whose_metrics_port_is_taken_stops_before_anything_starts() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        flagged = dita("run", "--no-local-member", "--metrics-port", str(port))
        from_env = dita("run", "--no-local-member", env={"DITA_METRICS_PORT": str(port)})
    for result, source in ((flagged, "--metrics-port"), (from_env, "DITA_METRICS_PORT")):
        assert result.returncode == 2
        assert result.stderr.strip() == (
            f"dita: error: {source} {port}: 127.0.0.1:{port} is already in use "
            f"(another dita run?); pick another port"
        )
        assert "dita: kernel" not in result.stdout, "no kernel started"
