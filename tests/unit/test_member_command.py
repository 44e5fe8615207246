"""`dita member`: its help, and the errors a person can act on, each one line and a non-zero exit.

The errors are dita's own handling, so the environment is faked where that
is the point: a PATH without Java, a `java` that reports an old version, a
port held by a plain socket, a Maven Central that does not answer. One test
runs a real member in the background, as `dita member start` leaves it.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dita import cli
from dita.cluster import local_member
from dita.cluster.local_member import find_free_port, stop_daemon


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


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dita: error: "), result.stderr
    return lines[0]


def fake_java(directory: Path, version: str) -> Path:
    """A `java` that only answers `-version`, as a JDK of that version does (on stderr)."""
    directory.mkdir(parents=True, exist_ok=True)
    java = directory / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2024-01-16' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return java


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def no_java_env(tmp_path: Path, path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env.update({"PATH": path, "DITA_CACHE": str(tmp_path / "cache")})
    return env


def test_help_names_the_actions_and_their_flags() -> None:
    top = dita("--help")
    assert top.returncode == 0 and "member" in top.stdout
    member = dita("member", "--help")
    assert member.returncode == 0
    for action in ("start", "stop", "status"):
        assert action in member.stdout
    start = dita("member", "start", "--help")
    assert start.returncode == 0
    for flag in ("--port", "--cluster", "--foreground", "--heap", "--java", "--timeout"):
        assert flag in start.stdout


def test_no_action_or_a_bad_port_is_one_line() -> None:
    missing = dita("member")
    assert missing.returncode == 2 and "start,stop,status" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad = dita("member", "status", "--port", "70000")
    assert bad.returncode == 2 and "--port" in bad.stderr and "70000" in bad.stderr


def test_start_without_java_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    line = one_error_line(
        dita("member", "start", "--port", str(find_free_port()), env=no_java_env(tmp_path, str(empty)))
    )
    assert "Java" in line and "not found" in line
    assert not (tmp_path / "cache").exists(), "nothing was fetched or written"


def test_start_with_an_old_java_names_its_version(tmp_path: Path) -> None:
    fake_java(tmp_path / "bin", "11.0.20")
    line = one_error_line(
        dita(
            "member",
            "start",
            "--port",
            str(find_free_port()),
            env=no_java_env(tmp_path, str(tmp_path / "bin")),
        )
    )
    assert "Java 11" in line and "17" in line


def test_start_on_a_port_in_use_names_the_port(tmp_path: Path, held_port: int) -> None:
    fake_java(tmp_path / "bin", "17.0.10")
    line = one_error_line(
        dita("member", "start", "--port", str(held_port), env=no_java_env(tmp_path, str(tmp_path / "bin")))
    )
    assert str(held_port) in line and "in use" in line


def test_a_jar_that_cannot_be_fetched_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An empty cache and a Maven repository nobody listens on: the first start must download and cannot.
    monkeypatch.setattr(local_member, "MAVEN_CENTRAL", f"http://127.0.0.1:{find_free_port()}/maven2")
    monkeypatch.setenv("DITA_CACHE", str(tmp_path / "cache"))
    java = fake_java(tmp_path / "bin", "17.0.10")
    port = find_free_port()
    assert cli.main(["member", "start", "--port", str(port), "--java", str(java)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dita: error: cannot fetch "), err
    assert "hazelcast" in lines[0]
    assert not list((tmp_path / "cache").rglob("*.jar")), "no partial jar is left behind"
    assert not local_member.pid_file(port).exists()


def test_status_says_whether_something_runs(held_port: int) -> None:
    down = dita("member", "status", "--port", str(find_free_port()))
    assert down.returncode == 1 and down.stdout.startswith("not running")
    up = dita("member", "status", "--port", str(held_port))
    assert up.returncode == 0 and up.stdout.startswith("running") and str(held_port) in up.stdout


def test_stop_leaves_a_process_it_did_not_start_alone(held_port: int) -> None:
    line = one_error_line(dita("member", "stop", "--port", str(held_port)))
    assert str(held_port) in line and "by hand" in line
    nothing = dita("member", "stop", "--port", str(find_free_port()))
    assert nothing.returncode == 0 and "no member running" in nothing.stdout


@pytest.mark.hazelcast
@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java to run a real member")
def test_a_started_member_outlives_the_command_until_stopped() -> None:
    port = find_free_port()
    try:
        started = dita("member", "start", "--port", str(port), "--cluster", "dita-member-test", timeout=240)
        assert started.returncode == 0, started.stderr
        assert f"127.0.0.1:{port}" in started.stdout and "pid" in started.stdout
        assert "starting Hazelcast" in started.stderr, "progress reaches the terminal"
        # `dita member start` has exited; the member is still there.
        status = dita("member", "status", "--port", str(port))
        assert status.returncode == 0 and status.stdout.startswith("running") and "pid" in status.stdout
        again = dita("member", "start", "--port", str(port))
        assert again.returncode == 0 and "already running" in again.stdout
        stopped = dita("member", "stop", "--port", str(port))
        assert stopped.returncode == 0 and "stopped member" in stopped.stdout
        after = dita("member", "status", "--port", str(port))
        assert after.returncode == 1 and after.stdout.startswith("not running")
    finally:
        stop_daemon(port, log=lambda _line: None)
