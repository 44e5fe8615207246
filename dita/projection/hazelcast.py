"""Kernel state streamed into Hazelcast maps, beside the hot path.

The kernel never calls this module. A background thread pulls what changed
(JSON documents built in Rust) every `flush_interval`, keeps only the newest
version of each key, and writes batches with `put_all`. While the cluster is
unreachable nothing is written and the backlog holds at most one document per
key; when a cluster answers again every key is written anew (it may be a new
cluster that lost everything) and readers see the kernels converge.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dita.projection.base import ACCOUNTS_MAP, KERNELS_MAP, SLOTS_MAP

log = logging.getLogger("dita.projection")


class ProjectionError(RuntimeError):
    """The projection cannot reach or use its cluster."""


class DocumentSource(Protocol):
    """What the Hazelcast projection reads from a kernel."""

    @property
    def kernel_id(self) -> str: ...

    def drain_documents(self) -> tuple[list[tuple[str, int, str]], tuple[int, str] | None]: ...

    def mark_all_changed(self) -> None: ...

    def status(self) -> dict[str, Any]: ...


def connect(
    members: Sequence[str] = ("127.0.0.1:5701",),
    cluster_name: str = "dita",
    *,
    connect_timeout: float = 10.0,
    client_name: str | None = None,
) -> Any:
    """A Hazelcast client that fails fast at startup and never gives up later.

    No member within `connect_timeout` is a clear `ProjectionError`, not a
    hang. Once connected, the client reconnects for as long as it takes
    (a bounded `cluster_connect_timeout` would shut it down after an outage of
    that length), and calls fail at once while the cluster is away (ASYNC),
    so a writer keeps its backlog instead of blocking for 120 s.
    """
    from hazelcast.client import HazelcastClient
    from hazelcast.config import ReconnectMode

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
    if not connected.wait(connect_timeout):
        client.shutdown()
        raise ProjectionError(
            f"cannot reach Hazelcast cluster {cluster_name!r} at {', '.join(members)} "
            f"within {connect_timeout:g} s: is a member running there, with that cluster name?"
        )
    return client


@dataclass
class ProjectionStats:
    writes: int = 0
    batches: int = 0
    errors: int = 0
    resyncs: int = 0
    last_error: str = ""
    last_write_at: float = 0.0
    lag_ms: list[float] = field(default_factory=list)

    def as_dict(self, backlog: int) -> dict[str, Any]:
        lags = sorted(self.lag_ms[-1000:])
        return {
            "writes": self.writes,
            "batches": self.batches,
            "errors": self.errors,
            "resyncs": self.resyncs,
            "backlog": backlog,
            "last_error": self.last_error,
            "last_write_at": self.last_write_at,
            "lag_ms_p50": lags[len(lags) // 2] if lags else 0.0,
            "lag_ms_max": lags[-1] if lags else 0.0,
        }


class HazelcastProjection:
    """Writes `dita.slots`, `dita.accounts` and `dita.kernels` for attached kernels.

    Keyword arguments:
        client: a connected `hazelcast.HazelcastClient` (not closed by `close()`);
            without one, a client is made from `members` and `cluster_name`
            (and closed by `close()`).
        members: ["host:port", ...] (default ["127.0.0.1:5701"]).
        cluster_name: the cluster to join (default "dita").
        flush_interval: seconds between two drains of the kernels (default 0.002).
        heartbeat_interval: seconds between two `dita.kernels` entries (default 1.0).
        status_ttl: seconds a `dita.kernels` entry lives without a new beat (default 10.0).
        write_timeout: seconds to wait for one batch before counting it failed (default 5.0).
        connect_timeout: seconds to find a member when making the client (default 10.0).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        members: Sequence[str] = ("127.0.0.1:5701",),
        cluster_name: str = "dita",
        flush_interval: float = 0.002,
        heartbeat_interval: float = 1.0,
        status_ttl: float = 10.0,
        write_timeout: float = 5.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._owns_client = client is None
        self.client = (
            client if client is not None else connect(members, cluster_name, connect_timeout=connect_timeout)
        )
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self.status_ttl = status_ttl
        self.write_timeout = write_timeout
        self._slots = self.client.get_map(SLOTS_MAP)
        self._accounts = self.client.get_map(ACCOUNTS_MAP)
        self._kernels = self.client.get_map(KERNELS_MAP)
        self._lock = threading.Lock()
        self._sources: dict[str, DocumentSource] = {}
        # key -> (version, json, drained_at): the newest unsent document per key
        self._pending_slots: dict[str, tuple[int, str, float]] = {}
        self._pending_accounts: dict[str, tuple[int, str, float]] = {}
        self._written: dict[str, int] = {}
        self._connected = threading.Event()
        self._connected.set()
        self._resync = threading.Event()
        self._stop = threading.Event()
        self._flushed = threading.Condition()
        self._round = 0
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
        source.mark_all_changed()
        self._last_beat = 0.0

    def _raise_above_store(self, source: Any) -> None:
        raise_versions = getattr(source, "raise_versions", None)
        if raise_versions is None or not self.connected:
            return
        kid = source.kernel_id
        keys = [f"{kid}:{i}" for i in range(source.max_slots)]
        try:
            found = self._slots.blocking().get_all(keys)
            account = self._accounts.blocking().get(kid)
        except Exception as e:  # an unreachable store has nothing to be above
            log.warning("projection: reading %s's documents failed: %s", kid, e)
            return
        slots = {
            int(k.rsplit(":", 1)[1]): int(json.loads(v.to_string())["version"]) for k, v in found.items()
        }
        account_version = int(json.loads(account.to_string())["version"]) if account is not None else None
        if slots or account_version is not None:
            raise_versions(slots, account_version)

    def detach(self, kernel_id: str) -> None:
        self.flush(self.write_timeout)
        with self._lock:
            source = self._sources.pop(kernel_id, None)
        if source is not None:
            status = {**source.status(), "state": "STOPPED", "heartbeat_at": time.time()}
            self._put_status(kernel_id, status)

    def flush(self, timeout: float | None = None) -> None:
        """Returns once everything changed before the call is written, or after `timeout`."""
        deadline = time.monotonic() + (self.write_timeout if timeout is None else timeout)
        with self._flushed:
            # Two rounds: the one running now may have drained before the call.
            target = self._round + 2
            while not self._stop.is_set() and (self._round < target or self.backlog()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._flushed.wait(left)

    def close(self) -> None:
        for kernel_id in list(self._sources):
            self.detach(kernel_id)
        self._stop.set()
        self._thread.join(timeout=self.write_timeout + 1)
        if self._owns_client:
            self.client.shutdown()

    def stats_dict(self) -> dict[str, Any]:
        return self.counters.as_dict(self.backlog())

    def stats(self) -> dict[str, Any]:
        return self.stats_dict()

    def beat_now(self) -> None:
        """Publishes every kernel's `dita.kernels` entry at once (after a control
        change, so operators see it within milliseconds). It only sends: safe
        on the client's I/O thread, where the control listener calls it."""
        if not self._connected.is_set():
            self._last_beat = 0.0
            return
        with self._lock:
            sources = list(self._sources.values())
        for source in sources:
            self._send_status(source.kernel_id, source.status()).add_done_callback(self._count_failure)

    def _count_failure(self, future: Any) -> None:
        if future.exception() is not None:
            self.counters.errors += 1
            self.counters.last_error = f"status: {future.exception()}"
            self._last_beat = 0.0  # the next cycle tries again

    def backlog(self) -> int:
        with self._lock:
            return len(self._pending_slots) + len(self._pending_accounts)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ----- the worker ------------------------------------------------------------------

    def _on_lifecycle(self, state: str) -> None:
        # Runs on the client's I/O thread: only flip flags, never block.
        if state == "DISCONNECTED":
            self._connected.clear()
        elif state == "CONNECTED":
            if not self._connected.is_set():
                self._resync.set()
            self._connected.set()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self._cycle()
            except Exception as e:  # never let the worker die; count and go on
                self.counters.errors += 1
                self.counters.last_error = f"{type(e).__name__}: {e}"
                log.warning("projection cycle failed: %s", self.counters.last_error)
            with self._flushed:
                self._round += 1
                self._flushed.notify_all()
        try:
            self._cycle()
        except Exception as e:
            log.warning("final projection flush failed: %s", e)

    def _cycle(self) -> None:
        with self._lock:
            sources = list(self._sources.values())
        if self._resync.is_set() and self._connected.is_set():
            self._resync.clear()
            self.counters.resyncs += 1
            self._written.clear()
            for source in sources:
                source.mark_all_changed()
            self._last_beat = 0.0
        now = time.time()
        for source in sources:
            slots, account = source.drain_documents()
            with self._lock:
                for key, version, doc in slots:
                    self._keep(self._pending_slots, key, version, doc, now)
                if account is not None:
                    self._keep(self._pending_accounts, source.kernel_id, account[0], account[1], now)
        if not self._connected.is_set():
            return
        # Both maps in flight at once: one round trip per cycle, not two.
        writes = [
            self._send(self._slots, self._pending_slots),
            self._send(self._accounts, self._pending_accounts),
        ]
        for write in writes:
            if write is not None:
                self._settle(*write)
        if time.monotonic() - self._last_beat >= self.heartbeat_interval:
            self._last_beat = time.monotonic()
            for source in sources:
                self._put_status(source.kernel_id, source.status())

    def _keep(
        self, pending: dict[str, tuple[int, str, float]], key: str, version: int, doc: str, at: float
    ) -> None:
        old = pending.get(key)
        if old is None or old[0] <= version:
            pending[key] = (version, doc, old[2] if old else at)

    def _send(self, imap: Any, pending: dict[str, tuple[int, str, float]]) -> tuple[Any, Any, Any] | None:
        from hazelcast.core import HazelcastJsonValue

        with self._lock:
            batch = {k: v for k, v in pending.items() if self._written.get(k, -1) < v[0]}
            for k in list(pending):
                if k not in batch:
                    del pending[k]  # a stale version never replaces a newer written one
        if not batch:
            return None
        return imap.put_all({k: HazelcastJsonValue(v[1]) for k, v in batch.items()}), batch, pending

    def _settle(self, future: Any, batch: dict[str, tuple[int, str, float]], pending: dict[str, Any]) -> None:
        if not self._wait(future):
            return
        now = time.time()
        with self._lock:
            for key, (version, _, drained_at) in batch.items():
                self._written[key] = max(self._written.get(key, -1), version)
                current = pending.get(key)
                if current is not None and current[0] <= version:
                    del pending[key]
                self.counters.lag_ms.append((now - drained_at) * 1e3)
            if len(self.counters.lag_ms) > 10_000:
                del self.counters.lag_ms[:-1_000]
        self.counters.writes += len(batch)
        self.counters.batches += 1
        self.counters.last_write_at = now

    def _wait(self, future: Any) -> bool:
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(self.write_timeout):
            self.counters.errors += 1
            self.counters.last_error = f"write not acknowledged within {self.write_timeout:g} s"
            return False
        try:
            future.result()
        except Exception as e:
            self.counters.errors += 1
            self.counters.last_error = f"{type(e).__name__}: {e}"
            return False
        return True

    def _put_status(self, kernel_id: str, status: dict[str, Any]) -> None:
        self._wait(self._send_status(kernel_id, status))

    def _send_status(self, kernel_id: str, status: dict[str, Any]) -> Any:
        """Sends one `dita.kernels` entry with its TTL; returns the future, waits for nothing.
        The backlog is read without the lock, so the I/O thread never waits on the worker."""
        from hazelcast.core import HazelcastJsonValue

        backlog = len(self._pending_slots) + len(self._pending_accounts)
        doc = {**status, "projection": self.counters.as_dict(backlog)}
        return self._kernels.put(kernel_id, HazelcastJsonValue(json.dumps(doc)), ttl=self.status_ttl)
