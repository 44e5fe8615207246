"""The journal streamed into the cluster: a Hazelcast Ringbuffer per kernel.

The successor of the earlier kernel's central debug journal. `record` only
appends to a bounded in-memory queue (the kernel never waits on the network);
a background thread packs entries as msgpack and ships them in batches with
`add_all`. While the cluster is away entries wait in the queue; when it is
full the oldest are dropped and counted, never the kernel slowed.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

import msgpack

RINGBUFFER_PREFIX = "dita.journal."


def ringbuffer_name(kernel_id: str) -> str:
    return f"{RINGBUFFER_PREFIX}{kernel_id}"


class RingbufferJournal:
    """Ships journal entries to `dita.journal.<kernel_id>`.

    Keyword arguments:
        queue_capacity: entries held while the cluster is slow or away (default 100,000).
        batch_size: entries per `add_all` (default 500).
        flush_interval: seconds between two shipments (default 0.01).
    """

    def __init__(
        self,
        client: Any,
        kernel_id: str,
        *,
        queue_capacity: int = 100_000,
        batch_size: int = 500,
        flush_interval: float = 0.01,
    ) -> None:
        self._ring = client.get_ringbuffer(ringbuffer_name(kernel_id))
        self._queue: deque[Mapping[str, Any]] = deque()
        self._capacity = queue_capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.shipped = 0
        self.dropped = 0
        self.errors = 0
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dita-journal", daemon=True)
        self._thread.start()

    def record(self, entry: Mapping[str, Any]) -> None:
        with self._lock:
            if len(self._queue) >= self._capacity:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(entry)
            self._idle.clear()

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits until everything recorded so far is shipped; False on timeout."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self.flush()
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            while True:
                with self._lock:
                    batch = [self._queue[i] for i in range(min(self.batch_size, len(self._queue)))]
                if not batch:
                    self._idle.set()
                    break
                try:
                    # bytearray, not bytes: the client serializes bytes as text and fails.
                    items = [bytearray(msgpack.packb(dict(e), use_bin_type=True)) for e in batch]
                    self._ring.add_all(items).result()
                except Exception:  # the cluster is away: keep the entries, try again next round
                    self.errors += 1
                    break
                with self._lock:
                    for _ in batch:
                        self._queue.popleft()
                self.shipped += len(batch)


def read_ring_journal(
    client: Any, kernel_id: str, start: int = 0, limit: int = 10_000
) -> list[dict[str, Any]]:
    """Journal entries of one kernel from the cluster, oldest first, from sequence `start`
    (entries the ringbuffer already overwrote are skipped)."""
    ring = client.get_ringbuffer(ringbuffer_name(kernel_id)).blocking()
    head, tail = ring.head_sequence(), ring.tail_sequence()
    seq = max(start, head)
    out: list[dict[str, Any]] = []
    while seq <= tail and len(out) < limit:
        result = ring.read_many(seq, 0, min(500, limit - len(out)))
        items = list(result)
        if not items:
            break
        out.extend(msgpack.unpackb(bytes(item), raw=False) for item in items)
        seq += len(items)
    return out
