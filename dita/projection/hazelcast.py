"""Kernel state streamed into Hazelcast maps, beside the hot path.

The kernel never calls this module. Each attached kernel is handed to the
native store writer (`dita._native.StoreWriter`), whose feed thread takes
what changed as soon as it changes (a kernel call wakes it when it sleeps)
and, after a hand-over, pauses `flush_interval` so that further changes
coalesce. The documents are built and encoded in Rust and written by the
writer's own threads, which pipeline `Map.putAll` requests; none of them
ever holds the interpreter lock, so the kernel's thread and the writer do
not take turns. While the cluster is unreachable nothing is written and the
backlog holds at most one document per key; when a cluster answers again
(it may be a new one that lost everything) every key is written anew and
readers see the kernels converge.

The Hazelcast client given to the projection carries the rest: each kernel's
`dita.kernels` status entry, and reading the store when a kernel restarts
under an id already there.

A RUNNING entry does not expire (`status_ttl` 0): a kernel that dies without
stopping leaves its last beat behind, and readers tell it DEAD by the beat's
age for as long as its slots and account are in the maps. A clean stop
writes a STOPPED entry that lives `STOPPED_TTL_S` (24 h).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dita._native import StoreUnreachable, StoreWriter
from dita.projection.base import ACCOUNTS_MAP, KERNELS_MAP, SLOTS_MAP
from dita.projection.documents import document_version, read_document

log = logging.getLogger("dita.projection")

#: How long a cleanly stopped kernel's STOPPED entry stays in `dita.kernels`: a day
#: of seeing that it stopped, and when, before the entry goes.
STOPPED_TTL_S = 24 * 3600.0

class ProjectionError(RuntimeError):
    """The projection cannot reach or use its cluster."""


class DocumentSource(Protocol):
    """What the Hazelcast projection reads from a kernel."""

    @property
    def kernel_id(self) -> str: ...

    def attach_to(self, writer: StoreWriter) -> None: ...

    def status(self) -> dict[str, Any]: ...


def connect(
    members: Sequence[str] = ("127.0.0.1:5701",),
    cluster_name: str = "dita",
    *,
    connect_timeout: float = 10.0,
    client_name: str | None = None,
) -> Any:
    """A Hazelcast client that fails fast at startup and never gives up later.

    It is hardened (`dita.cluster.serialization.harden`): whoever can write
    the cluster's maps must not run code in, or crash, what reads them.

    No member within `connect_timeout` is a clear `ProjectionError`, not a
    hang. Once connected, the client reconnects for as long as it takes
    (a bounded `cluster_connect_timeout` would shut it down after an outage of
    that length), and calls fail at once while the cluster is away (ASYNC),
    so a writer keeps its backlog instead of blocking for 120 s.
    """
    from hazelcast.client import HazelcastClient
    from hazelcast.config import ReconnectMode

    from dita.cluster.serialization import harden

    connected = threading.Event()

    def on_state(state: str) -> None:
        if state == "CONNECTED":
            connected.set()

    client = HazelcastClient(
        cluster_members=list(members),
        cluster_name=cluster_name,
        client_name=client_name,
        async_start=True,
        reconnect_mode=ReconnectMode.ASYNC,
        lifecycle_listeners=[on_state],
        # Loopback and small clusters: one connection is enough, and writes
        # need not wait for a partition table.
        smart_routing=False,
    )
    harden(client)
    if not connected.wait(connect_timeout):
        client.shutdown()
        raise ProjectionError(
            f"cannot reach Hazelcast cluster {cluster_name!r} at {', '.join(members)} "
            f"within {connect_timeout:g} s: is a member running there, with that cluster name?"
        )
    return client


def _stored_version(value: Any) -> int | None:
    doc = read_document(value)
    return document_version(doc) if doc is not None else None


@dataclass
class ProjectionStats:
    """Failures of the status entries, which the Python client writes; the
    writer's own counters come from `StoreWriter.stats()`."""

    status_errors: int = 0
    last_status_error: str = ""


def writer_target(client: Any) -> tuple[list[str], str]:
    """The members and cluster name a client was configured with: the store
    writer connects where the client does (through the same addresses, so a
    path that cuts one cuts both)."""
    config = getattr(client, "_config", None)
    members = list(getattr(config, "cluster_members", None) or [])
    if not members:
        members = [f"{m.address.host}:{m.address.port}" for m in client.cluster_service.get_members()]
    return members, str(getattr(config, "cluster_name", "dev"))


class HazelcastProjection:
    """Writes `dita.slots`, `dita.accounts` and `dita.kernels` for attached kernels.

    Keyword arguments:
        client: a connected `hazelcast.HazelcastClient` (not closed by `close()`,
            but hardened in place: from then on it refuses to unpickle values);
            without one, a client is made from `members` and `cluster_name`
            (and closed by `close()`). The store writer connects to the members
            the client was configured with.
        members: ["host:port", ...] (default ["127.0.0.1:5701"]).
        cluster_name: the cluster to join (default "dita").
        flush_interval: seconds the writer's feed pauses after handing over a
            kernel's changes, so that changes arriving meanwhile go as one batch
            (default 0.0005).
        idle_interval: the longest the feed sleeps while no kernel changes; a
            kernel call wakes it at once, this bounds how soon it notices a
            reconnected writer with nothing changing (default 0.05).
        heartbeat_interval: seconds between two `dita.kernels` entries (default 1.0).
        status_ttl: seconds a RUNNING `dita.kernels` entry lives after its last beat
            (default 0: it does not expire, so a kernel that died is seen as dead).
        stopped_ttl: seconds the STOPPED entry of a cleanly stopped kernel lives
            (default `STOPPED_TTL_S`, 24 h).
        write_timeout: seconds `flush`, `detach` and `close` wait for writes (default 5.0).
        max_in_flight: `putAll` requests awaiting an answer before the writer holds
            back and lets changes coalesce (default 512).
        connect_timeout: seconds to find a member (default 10.0).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        members: Sequence[str] = ("127.0.0.1:5701",),
        cluster_name: str = "dita",
        flush_interval: float = 0.0005,
        idle_interval: float = 0.05,
        heartbeat_interval: float = 1.0,
        status_ttl: float = 0.0,
        stopped_ttl: float | None = None,
        write_timeout: float = 5.0,
        max_in_flight: int = 512,
        connect_timeout: float = 10.0,
    ) -> None:
        import hazelcast

        from dita.cluster.serialization import harden

        self._owns_client = client is None
        self.client = harden(
            client if client is not None else connect(members, cluster_name, connect_timeout=connect_timeout)
        )
        self.heartbeat_interval = heartbeat_interval
        self.status_ttl = status_ttl
        self.stopped_ttl = STOPPED_TTL_S if stopped_ttl is None else stopped_ttl
        self.write_timeout = write_timeout
        targets, cluster = writer_target(self.client)
        try:
            self.writer = StoreWriter(
                targets,
                cluster,
                slots_map=SLOTS_MAP,
                accounts_map=ACCOUNTS_MAP,
                client_version=hazelcast.__version__,
                connect_timeout=min(connect_timeout, 5.0),
                max_in_flight=max_in_flight,
                gap=flush_interval,
                idle=max(idle_interval, flush_interval),
            )
        except StoreUnreachable as e:
            if self._owns_client:
                self.client.shutdown()
            raise ProjectionError(f"the projection writer cannot reach cluster {cluster!r}: {e}") from None
        self._slots = self.client.get_map(SLOTS_MAP)
        self._accounts = self.client.get_map(ACCOUNTS_MAP)
        self._kernels = self.client.get_map(KERNELS_MAP)
        self._lock = threading.Lock()
        self._sources: dict[str, DocumentSource] = {}
        self._client_connected = threading.Event()
        self._client_connected.set()
        self._stop = threading.Event()
        self._kick = threading.Event()
        self.counters = ProjectionStats()
        self._last_beat = 0.0
        self.client.lifecycle_service.add_listener(self._on_lifecycle)
        self._thread = threading.Thread(target=self._run, name="dita-projection", daemon=True)
        self._thread.start()

    # ----- KernelProjection ------------------------------------------------------

    def attach(self, source: Any) -> None:
        """Starts projecting a kernel. A kernel that restarts under an id already
        in the maps first lifts its versions above the documents there, so that
        readers see versions only grow (it then overwrites them all)."""
        self._raise_above_store(source)
        with self._lock:
            self._sources[source.kernel_id] = source
        source.attach_to(self.writer)
        self._beat_soon()

    def _raise_above_store(self, source: Any) -> None:
        raise_versions = getattr(source, "raise_versions", None)
        if raise_versions is None or not self.connected:
            return
        kid = source.kernel_id
        slot_of_key = {f"{kid}:{i}": i for i in range(source.max_slots)}
        try:
            found = self._slots.blocking().get_all(list(slot_of_key))
            account = self._accounts.blocking().get(kid)
        except Exception as e:  # an unreachable store has nothing to be above
            log.warning("projection: reading %s's documents failed: %s", kid, e)
            return
        # Anyone can write the maps: a document without a sound version is no
        # kernel's, so there is nothing to be above; the kernel's next write of
        # the key replaces it.
        malformed: list[str] = []
        slots: dict[int, int] = {}
        for key, value in found.items():
            version = _stored_version(value)
            if version is None or key not in slot_of_key:
                malformed.append(str(key))
            else:
                slots[slot_of_key[key]] = version
        account_version = _stored_version(account) if account is not None else None
        if account is not None and account_version is None:
            malformed.append(kid)
        if malformed:
            shown = ", ".join(sorted(malformed)[:5]) + (", ..." if len(malformed) > 5 else "")
            log.warning(
                "projection: %d of kernel %s's documents in the store are malformed and ignored: %s",
                len(malformed),
                kid,
                shown,
            )
        if slots or account_version is not None:
            raise_versions(slots, account_version)

    def detach(self, kernel_id: str) -> None:
        self.flush(self.write_timeout)
        with self._lock:
            source = self._sources.pop(kernel_id, None)
        self.writer.detach(kernel_id)
        if source is not None:
            status = {**source.status(), "state": "STOPPED", "heartbeat_at": time.time()}
            self._wait(self._send_status(kernel_id, status, ttl=self.stopped_ttl))

    def flush(self, timeout: float | None = None) -> None:
        """Returns once everything changed before the call is written, or after `timeout`."""
        self.writer.drain()
        self.writer.flush(self.write_timeout if timeout is None else timeout)

    def close(self) -> None:
        for kernel_id in list(self._sources):
            self.detach(kernel_id)
        self._stop.set()
        self._kick.set()
        self._thread.join(timeout=self.write_timeout + 1)
        self.writer.close()
        if self._owns_client:
            self.client.shutdown()

    def stats(self) -> dict[str, Any]:
        """writes, batches, errors, resyncs, backlog, in_flight, last_error,
        last_write_at, lag_ms_p50, lag_ms_max, connected."""
        s = self.writer.stats()
        errors = int(s["errors"]) + self.counters.status_errors
        last_error = s["last_error"] or self.counters.last_status_error
        return {**s, "errors": errors, "last_error": last_error}

    def stats_dict(self) -> dict[str, Any]:
        return self.stats()

    def beat_now(self) -> None:
        """Publishes every kernel's `dita.kernels` entry at once (after a control
        change, so operators see it within milliseconds). It only sends: safe
        on the client's I/O thread, where the control listener calls it."""
        if not self._client_connected.is_set():
            return  # reconnecting beats at once
        for source in self._attached():
            self._send_status(source.kernel_id, source.status()).add_done_callback(self._count_failure)

    def _count_failure(self, future: Any) -> None:
        if future.exception() is not None:
            self._count_error(f"status: {future.exception()}")  # the next beat tries again

    def _count_error(self, message: str) -> None:
        self.counters.status_errors += 1
        self.counters.last_status_error = message

    def backlog(self) -> int:
        """Documents not yet acknowledged by the cluster (at most one per key)."""
        return self.writer.backlog

    @property
    def connected(self) -> bool:
        return self.writer.connected

    # ----- the worker ------------------------------------------------------------------

    def _attached(self) -> list[DocumentSource]:
        with self._lock:
            return list(self._sources.values())

    def _on_lifecycle(self, state: str) -> None:
        # Runs on the client's I/O thread: only flip flags, never block.
        if state == "DISCONNECTED":
            self._client_connected.clear()
        elif state == "CONNECTED":
            self._client_connected.set()
            self._beat_soon()

    def _beat_soon(self) -> None:
        self._last_beat = 0.0
        self._kick.set()

    def _run(self) -> None:
        # The writer's feed moves the kernels' changes; this thread only beats.
        while not self._stop.is_set():
            self._kick.wait(max(0.0, self._last_beat + self.heartbeat_interval - time.monotonic()))
            self._kick.clear()
            if self._stop.is_set():
                return
            try:
                self._last_beat = time.monotonic()
                self.beat_now()
            except Exception as e:  # never let the worker die; count and go on
                self._count_error(f"{type(e).__name__}: {e}")
                log.warning("projection heartbeat failed: %s", self.counters.last_status_error)

    def _wait(self, future: Any) -> bool:
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(self.write_timeout):
            self._count_error(f"status not acknowledged within {self.write_timeout:g} s")
            return False
        try:
            future.result()
        except Exception as e:
            self._count_error(f"status: {type(e).__name__}: {e}")
            return False
        return True

    def _send_status(self, kernel_id: str, status: dict[str, Any], *, ttl: float | None = None) -> Any:
        """Sends one `dita.kernels` entry with its TTL (default `status_ttl`; 0: none);
        returns the future, waits for nothing."""
        from hazelcast.core import HazelcastJsonValue

        doc = {**status, "projection": self.stats()}
        lives = self.status_ttl if ttl is None else ttl
        return self._kernels.put(kernel_id, HazelcastJsonValue(json.dumps(doc)), ttl=lives)
