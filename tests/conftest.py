"""Shared fixtures: a real Hazelcast cluster for integration tests.

DITA_TEST_BACKEND=testcontainers: a member in a container of
DITA_HAZELCAST_IMAGE (default `hazelcast/hazelcast:<version>`; CI builds and
names `dita/hazelcast:<version>`, see ops/build-hazelcast-image) on the
host's network and a free port of 127.0.0.1 (tests/container_member.py).

Otherwise (DITA_TEST_BACKEND unset or `local`), in order: an address in
DITA_HAZELCAST (with DITA_CLUSTER for its name); a member started from the
Hazelcast jars when Java is here (the default on these machines); a container
as above when a Docker engine answers. Tests that need a cluster skip, naming
why, only when none of the three is available, and never under CI, where they
must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from dita.cluster.local_member import HAZELCAST_VERSION, LocalMember, find_free_port

BACKENDS = ("local", "testcontainers")
_DEFAULT_IMAGE = f"hazelcast/hazelcast:{HAZELCAST_VERSION}"


class Member(Protocol):
    """A member the tests own: a LocalMember, or a ContainerMember under testcontainers."""

    @property
    def address(self) -> str: ...

    def start(self, timeout: float = ...) -> None: ...

    def stop(self) -> None: ...

    def kill(self) -> None: ...


@dataclass
class Cluster:
    """A reachable cluster; `member` is set when the tests own it and may stop it."""

    members: list[str]
    cluster_name: str
    member: Member | None = None

    def client(self, **config: Any) -> Any:
        from hazelcast.client import HazelcastClient
        from hazelcast.config import ReconnectMode

        defaults: dict[str, Any] = {
            "cluster_members": self.members,
            "cluster_name": self.cluster_name,
            "reconnect_mode": ReconnectMode.ASYNC,
            "smart_routing": False,
        }
        defaults.update(config)
        return HazelcastClient(**defaults)


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Polls until `predicate()` is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout:g} s")
        time.sleep(0.01)


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"no Hazelcast cluster for the integration tests, and CI must run them: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    backend = os.environ.get("DITA_TEST_BACKEND") or "local"
    if backend not in BACKENDS:
        pytest.fail(f"DITA_TEST_BACKEND={backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "testcontainers":
        if not _docker_answers():
            pytest.fail("DITA_TEST_BACKEND=testcontainers, but no Docker engine answers (`docker info`)")
        yield from _container_cluster(os.environ.get("DITA_HAZELCAST_IMAGE") or _DEFAULT_IMAGE)
        return
    address = os.environ.get("DITA_HAZELCAST")
    if address:
        yield Cluster(address.split(","), os.environ.get("DITA_CLUSTER", "dita"))
        return
    if shutil.which("java") is not None:
        member = LocalMember(port=find_free_port(), cluster_name="dita-test", log=lambda _line: None)
        member.start(timeout=180)
        try:
            yield Cluster([member.address], "dita-test", member)
        finally:
            member.stop()
        return
    if _docker_answers():
        yield from _container_cluster(os.environ.get("DITA_HAZELCAST_IMAGE") or _DEFAULT_IMAGE)
        return
    _unavailable("no DITA_HAZELCAST address, no java to start a member, no Docker engine")


def _container_cluster(image: str) -> Iterator[Cluster]:
    """A member in a container of `image` for the session; removed at its end."""
    from tests.container_member import ContainerMember

    member = ContainerMember(image, port=find_free_port(), cluster_name="dita-test")
    try:
        member.start(timeout=180)
        yield Cluster([member.address], "dita-test", member)
    finally:
        member.remove()


def reset_control(client: Any) -> None:
    """Empties `dita.control` and its history, as on a new cluster: operators' writes build
    on what the history holds, so a test that starts from no control must clear both."""
    client.get_map("dita.control").blocking().clear()
    client.get_map("dita.control.history").blocking().clear()
