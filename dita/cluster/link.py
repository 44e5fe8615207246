"""A kernel configured for a cluster always joins it.

When the cluster answers at start, the kernel joins at once. When it does
not, the kernel trades on the control it was started with (say, HALTED with
`dita run --until-control HALTED`) on the in-memory projection, and a thread
of the link's own keeps trying to connect, pausing longer after each failure
(up to `MAX_PAUSE_S`). Once connected, the kernel publishes everything it
holds, reads `dita.control` and applies it before the link reports joined.
No kernel call ever waits for any of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dita.cluster.backoff import Backoff
from dita.control import KernelControlSnapshot
from dita.projection.hazelcast import ProjectionError, connect

log = logging.getLogger("dita.cluster")

#: The longest pause between two attempts to reach a cluster that did not answer.
MAX_PAUSE_S = 5.0


class ClusterLink:
    """Joins `kernel` (an `ExecutionKernel`) to a cluster, now or as soon as it answers.

    Keyword arguments:
        control_key: the key control entries are signed with (None: unsigned).
        control_entries: entries the kernel applied in an earlier life (its checkpoint).
        default_control: what fields no entry sets fall back to once the
            cluster's control is read (default: the kernel's control at start;
            a kernel started HALTED until the control is read passes its real
            start control here).
        connect_timeout: seconds each attempt waits for a member.
        check: called with the client before the kernel joins in the background
            (a caller joining at start checks first itself); a ValueError it
            raises (say, another live process runs this kernel id) is said, and
            the link gives up without joining.
        say: where one-line notices go (default: the log).
    """

    def __init__(
        self,
        kernel: Any,
        members: Sequence[str],
        cluster_name: str,
        *,
        control_key: bytes | None = None,
        control_entries: Mapping[str, Mapping[str, Any]] | None = None,
        default_control: KernelControlSnapshot | None = None,
        connect_timeout: float = 10.0,
        check: Callable[[Any], None] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.kernel = kernel
        self.members = list(members)
        self.cluster_name = cluster_name
        self.control_key = control_key
        self.control_entries = control_entries
        self.default_control = default_control or kernel.control
        self.connect_timeout = connect_timeout
        self.say = say or log.warning
        self.check = check
        self.refused = ""
        self.client: Any = None
        self.joined = threading.Event()
        self.attempts = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, client: Any = None) -> bool:
        """Joins with `client` (or a client made now); when the cluster does not
        answer, keeps trying in the background. Returns True if joined now."""
        if client is None:
            client = self._connect()
        if client is not None and self._join(client):
            return True
        self.start_in_background()
        return False

    def start_in_background(self) -> None:
        """Keeps trying to join from a thread of the link's own (the first attempt after a pause)."""
        self._thread = threading.Thread(target=self._keep_trying, name="dita-cluster-link", daemon=True)
        self._thread.start()

    def _connect(self) -> Any:
        self.attempts += 1
        try:
            return connect(self.members, self.cluster_name, connect_timeout=self.connect_timeout)
        except ProjectionError as e:
            self.last_error = str(e)
            return None

    def _checked(self, client: Any) -> bool:
        try:
            if self.check is not None:
                self.check(client)
        except ValueError as e:
            self.refused = str(e)
            self.say(f"dita: not joining cluster {self.cluster_name!r}: {e}")
            client.shutdown()
            self._stop.set()
            return False
        return True

    def _join(self, client: Any) -> bool:
        try:
            read = self.kernel.join_cluster(
                client,
                control_key=self.control_key,
                control_entries=self.control_entries,
                default_control=self.default_control,
            )
        except ProjectionError as e:
            self.last_error = str(e)
            client.shutdown()
            return False
        self.client = client
        self.joined.set()
        if not read:
            self.say(f"dita: joined cluster {self.cluster_name!r}; dita.control not read yet, trying on")
        return True

    def _keep_trying(self) -> None:
        backoff = Backoff(first=0.5, cap=MAX_PAUSE_S)
        started = time.monotonic()
        while not self._stop.wait(backoff.next_pause()):
            client = self._connect()
            if client is None:
                continue
            if self._stop.is_set():
                client.shutdown()
                return
            if not self._checked(client):
                return
            if self._join(client):
                control = self.kernel.control
                self.say(
                    f"dita: joined cluster {self.cluster_name!r} after {time.monotonic() - started:.1f} s "
                    f"({self.attempts} attempts); control from the cluster: mode {control.mode.value}"
                )
                return

    def close(self) -> None:
        """Stops trying, waiting for an attempt under way (each step of one is
        bounded), so that no join lands on a kernel being closed; the kernel's
        close() then detaches it, and `shutdown_client` ends the client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def shutdown_client(self) -> None:
        if self.client is not None:
            self.client.shutdown()
            self.client = None
