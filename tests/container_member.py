"""A Hazelcast member in a Docker container, started through testcontainers.

The `cluster` fixture's testcontainers backend (DITA_TEST_BACKEND=testcontainers,
see tests/conftest.py). A ContainerMember offers what tests do to a LocalMember
they own: `address`, `start(timeout=...)`, `stop()`, `kill()`; a stop keeps
the container, so `start()` starts the same one again (an empty member, as a
restarted LocalMember is), and `remove()` ends it for good.

The container runs on the host's network, on a port of 127.0.0.1 of its own
(never a Docker bridge network); it gets dita/cluster/member.yaml of this
checkout mounted read-only, and port and cluster name as `-Dhz.*` options
in JAVA_OPTS, which both the local image (ops/build-hazelcast-image) and
hazelcast/hazelcast read. The engine must run on this machine.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import time
from typing import Any

from dita.cluster.local_member import (
    DEFAULT_CONFIG,
    DEFAULT_HEAP,
    HAZELCAST_VERSION,
    HOST,
    MemberStartError,
    port_answers,
)

CONFIG_IN_CONTAINER = "/opt/hazelcast/config_ext/hazelcast.yaml"
# On every container made here, so leftovers of a killed run can be found and removed.
LABEL = "dita.test"
_STARTED = re.compile(rb"\bis STARTED\b")
_LOG_TAIL_LINES = 25


class ContainerMember:
    """One Hazelcast member in a container of `image`, on 127.0.0.1:`port`."""

    def __init__(
        self,
        image: str,
        *,
        port: int,
        cluster_name: str,
        heap: str = DEFAULT_HEAP,
    ) -> None:
        self.image = image
        self.port = port
        self.cluster_name = cluster_name
        self.heap = heap
        self.startup_seconds: float | None = None
        self._testcontainer: Any = None  # testcontainers' DockerContainer, made on the first start

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def name(self) -> str:
        return f"dita-test-hazelcast-{self.port}"

    def _container(self) -> Any:
        """The docker-py container, reloaded (None before the first start)."""
        if self._testcontainer is None:
            return None
        container = self._testcontainer.get_wrapped_container()
        container.reload()
        return container

    def is_running(self) -> bool:
        container = self._container()
        return container is not None and container.status == "running"

    def start(self, timeout: float = 180.0) -> None:
        """Starts the container (made on the first call) and returns once the
        member logged "is STARTED" and its port accepts connections."""
        began = time.monotonic()
        container = self._container()
        if container is None:
            self._create()
            seen = 0
        elif container.status == "running":
            return
        else:
            seen = len(_STARTED.findall(container.logs()))
            container.start()
        self._wait_started(seen, began + timeout, timeout)
        self.startup_seconds = time.monotonic() - began

    def _create(self) -> None:
        from testcontainers.core.container import DockerContainer

        java_opts = [
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            f"-Dhazelcast.config={CONFIG_IN_CONTAINER}",
            f"-Dhz.cluster-name={self.cluster_name}",
            f"-Dhz.network.port.port={self.port}",
            "-Dhazelcast.phone.home.enabled=false",
        ]
        testcontainer = (
            DockerContainer(self.image)
            .with_name(self.name)
            .with_env("JAVA_OPTS", " ".join(java_opts))
            .with_env("HAZELCAST_CONFIG", CONFIG_IN_CONTAINER)
            .with_volume_mapping(str(DEFAULT_CONFIG), CONFIG_IN_CONTAINER, "ro")
            # The host's network: docker-py makes `network="host"` network_mode host, and a
            # network given keeps testcontainers from attaching the container to one it picks.
            .with_kwargs(network="host", labels={LABEL: "hazelcast"})
        )
        self._check_image(testcontainer)
        try:
            testcontainer.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                testcontainer.stop()
            raise MemberStartError(
                f"cannot start a container of {self.image} for {self.address}: {exc} (where "
                f"testcontainers' reaper image cannot be pulled, set TESTCONTAINERS_RYUK_DISABLED=true)"
            ) from exc
        self._testcontainer = testcontainer
        atexit.register(self.remove)

    def _check_image(self, testcontainer: Any) -> None:
        # A local image that is missing would be looked for on Docker Hub; say how to build it instead.
        if self.image.startswith("dita/") and not testcontainer.get_docker_client().client.images.list(
            name=self.image
        ):
            raise MemberStartError(
                f"no local image {self.image}: build it with `make hazelcast-image` "
                f"(ops/build-hazelcast-image; it tags dita/hazelcast:{HAZELCAST_VERSION})"
            )

    def _wait_started(self, seen: int, deadline: float, timeout: float) -> None:
        while True:
            container = self._container()
            logs = container.logs()
            if container.status in ("exited", "dead"):
                code = container.attrs["State"]["ExitCode"]
                raise MemberStartError(
                    f"member container {self.name} ({self.image}) on {self.address} exited with code {code} "
                    f"before it started; last log lines:\n{_tail(logs)}"
                )
            if len(_STARTED.findall(logs)) > seen and port_answers(self.port):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise MemberStartError(
                    f"member container {self.name} ({self.image}) on {self.address} did not start "
                    f"within {timeout:.0f}s; last log lines:\n{_tail(logs)}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """`docker stop`: SIGTERM, then SIGKILL after `timeout`; the container stays."""
        if self.is_running():
            self._container().stop(timeout=int(timeout))

    def kill(self) -> None:
        """`docker kill`: SIGKILL at once, as a crash would; the container stays."""
        if self.is_running():
            self._container().kill()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        container = self._container()
        return "" if container is None else _tail(container.logs(), lines)

    def remove(self) -> None:
        """Stops and removes the container; the member is gone for good."""
        atexit.unregister(self.remove)
        testcontainer, self._testcontainer = self._testcontainer, None
        if testcontainer is not None:
            testcontainer.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"ContainerMember({self.address}, {self.image}, cluster={self.cluster_name!r}, {state})"


def _tail(logs: bytes, lines: int = _LOG_TAIL_LINES) -> str:
    text = logs.decode("utf-8", "replace")
    return "\n".join("  " + line for line in text.splitlines()[-lines:]) or "  (the log is empty)"
