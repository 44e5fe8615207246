"""Prometheus metrics of a running kernel, served on `/metrics` (`dita run --metrics-port`).

Every kernel call runs the observer that `CallCounters` hands to
`ExecutionKernel.observe_calls`, on the hot path, so it does as little as
Python allows: one increment of a plain dict and one append to a bounded
deque. Nothing of prometheus_client runs there. `KernelCollector` turns the
counts, the latencies and what the kernel and its projection report into
metric families when Prometheus scrapes; a background fold every second
moves latencies into histogram buckets between scrapes, so a slow scrape
interval does not overflow the deque.

Metrics, each series labelled with `kernel_id`:

- dita_kernel_calls_total{kind}: `process_intent` ("intent") and
  `on_venue_event` ("venue_event") calls;
- dita_kernel_diagnostics_total{kind, code}: their outcomes by diagnostic code;
- dita_kernel_outcome_latency_seconds{kind}: histogram of the time from a
  call to its outcome (the venue's immediate answers included), and
  dita_kernel_outcome_latency_dropped_total{kind}: calls whose latency was
  not bucketed because the buffer was full;
- dita_kernel_slots, dita_kernel_open_positions: gauges;
- dita_projection_backlog: documents waiting to be written;
  dita_projection_lag_p50_seconds / _max_seconds: kernel change to
  acknowledged write over the newest 1,000 writes;
  dita_projection_writes_total, _errors_total, _resyncs_total;
  dita_projection_connected: 1 while the cluster is reachable;
- dita_control_rev: rev of the control in force; dita_control_mode{mode} and
  dita_control_verbosity{verbosity}: 1 for the value in force, 0 for the others;
- the process_* figures of prometheus_client (CPU, memory, open files).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import start_http_server
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from dita.enums import KernelDiagnosticCode, KernelMode, KernelVerbosity

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from dita.contracts import KernelOutcome
    from dita.kernel import ExecutionKernel

log = logging.getLogger(__name__)

CALL_KINDS = ("intent", "venue_event")
# A call alone is about a microsecond; with the mock venue answering, tens of
# microseconds; a call that stalls on the GIL or the venue, milliseconds.
LATENCY_BUCKETS = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 5e-2, 0.25,
)  # fmt: skip
# Enough for 65,000 calls between two folds (one a second) before any latency is dropped.
LATENCY_BUFFER = 1 << 16
FOLD_INTERVAL = 1.0

Observer = Callable[[str, "KernelOutcome", float], None]


class _KindCounts:
    """One call kind: outcomes by code (their sum is the call count) and latencies not yet bucketed."""

    __slots__ = ("bucket_counts", "codes", "dropped", "folded", "latencies", "latency_sum")

    def __init__(self, buffer_size: int) -> None:
        # Every known code from the start: the observer then never grows the
        # dict while a scrape copies it, and each series exists from zero.
        self.codes: dict[Any, int] = dict.fromkeys(KernelDiagnosticCode, 0)
        self.latencies: deque[float] = deque(maxlen=buffer_size)
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.folded = 0
        self.dropped = 0


class CallCounters:
    """What the hot path records: outcomes by kind and code, and a bounded buffer of latencies.

    `observe` is the observer to pass to `ExecutionKernel.observe_calls`.
    Everything else runs off the hot path, under this object's lock.
    """

    def __init__(self, buffer_size: int = LATENCY_BUFFER) -> None:
        self._buffer_size = buffer_size
        self._kinds = {kind: _KindCounts(buffer_size) for kind in CALL_KINDS}
        self._lock = threading.Lock()
        self.observe: Observer = self._observer()

    def _observer(self) -> Observer:
        # A closure over plain dicts: no attribute lookups, no method calls but
        # the deque's append (a C call). Only the kernel's thread calls it.
        per_kind = {kind: (c.codes, c.latencies.append) for kind, c in self._kinds.items()}

        def observe(kind: str, outcome: KernelOutcome, seconds: float) -> None:
            try:
                codes, keep = per_kind[kind]
            except KeyError:
                codes, keep = per_kind[kind] = self._new_kind(kind)
            code = outcome.diagnostic_code
            try:
                codes[code] += 1
            except KeyError:  # a code newer than this module: count it all the same
                codes[code] = 1
            keep(seconds)

        return observe

    def _new_kind(self, kind: str) -> tuple[dict[Any, int], Callable[[float], None]]:
        counts = _KindCounts(self._buffer_size)
        with self._lock:
            self._kinds[kind] = counts
        return counts.codes, counts.latencies.append

    def fold(self) -> None:
        """Moves buffered latencies into histogram buckets."""
        with self._lock:
            for counts in list(self._kinds.values()):
                self._fold_kind(counts)

    @staticmethod
    def _fold_kind(counts: _KindCounts) -> None:
        buckets = counts.bucket_counts
        take = counts.latencies.popleft
        folded = 0
        total = 0.0
        while True:
            try:
                seconds = take()
            except IndexError:
                break
            # bisect_left: a latency equal to a bound counts in that bound's bucket (le).
            buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
            total += seconds
            folded += 1
        counts.folded += folded
        counts.latency_sum += total
        # Calls so far = folded + still buffered + dropped by the full deque. Reading
        # the calls before the buffer can only undercount, and drops never shrink.
        calls = sum(list(counts.codes.values()))
        counts.dropped = max(counts.dropped, calls - counts.folded - len(counts.latencies))

    def families(self, kernel_id: str) -> Iterator[Metric]:
        self.fold()
        calls = CounterMetricFamily(
            "dita_kernel_calls", "Kernel calls by kind.", labels=["kernel_id", "kind"]
        )
        codes = CounterMetricFamily(
            "dita_kernel_diagnostics",
            "Kernel call outcomes by diagnostic code.",
            labels=["kernel_id", "kind", "code"],
        )
        latency = HistogramMetricFamily(
            "dita_kernel_outcome_latency_seconds",
            "Seconds from a kernel call to its outcome, venue answers included.",
            labels=["kernel_id", "kind"],
        )
        dropped = CounterMetricFamily(
            "dita_kernel_outcome_latency_dropped",
            "Calls whose latency was not bucketed because the buffer was full.",
            labels=["kernel_id", "kind"],
        )
        with self._lock:
            for kind, counts in self._kinds.items():
                by_code = list(counts.codes.items())
                calls.add_metric([kernel_id, kind], sum(n for _, n in by_code))
                for code, n in by_code:
                    codes.add_metric([kernel_id, kind, str(code)], n)
                cumulative = 0
                buckets = []
                for bound, n in zip((*LATENCY_BUCKETS, float("inf")), counts.bucket_counts, strict=True):
                    cumulative += n
                    buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
                latency.add_metric([kernel_id, kind], buckets, counts.latency_sum)
                dropped.add_metric([kernel_id, kind], counts.dropped)
        yield from (calls, codes, latency, dropped)


class KernelCollector:
    """A prometheus_client collector: reads the counters, the kernel and its projection at scrape time."""

    def __init__(self, counters: CallCounters) -> None:
        self.counters = counters
        self.kernel: ExecutionKernel | None = None

    def attach(self, kernel: ExecutionKernel) -> None:
        self.kernel = kernel
        kernel.observe_calls(self.counters.observe)

    def collect(self) -> Iterator[Metric]:
        kernel = self.kernel
        if kernel is None:  # the run is still connecting: nothing to say yet
            return
        kid = kernel.kernel_id
        yield from self.counters.families(kid)
        yield from _guarded("kernel", lambda: _kernel_families(kernel, kid))
        yield from _guarded("projection", lambda: _projection_families(kernel, kid))
        yield from _control_families(kernel, kid)


def _guarded(what: str, families: Callable[[], list[Metric]]) -> list[Metric]:
    # A scrape must still answer when one source fails (the kernel busy on
    # another thread, a projection without some figure): leave its families out.
    try:
        return families()
    except Exception as e:
        log.warning("metrics: %s figures unavailable: %s", what, e)
        return []


def _gauge(name: str, doc: str, kid: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["kernel_id"])
    family.add_metric([kid], value)
    return family


def _counter(name: str, doc: str, kid: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["kernel_id"])
    family.add_metric([kid], value)
    return family


def _kernel_families(kernel: ExecutionKernel, kid: str) -> list[Metric]:
    account = kernel.account
    return [
        _gauge("dita_kernel_slots", "Trade slots of the kernel.", kid, kernel.max_slots),
        _gauge("dita_kernel_open_positions", "Open positions.", kid, float(account["open_positions"])),
    ]


def _projection_families(kernel: ExecutionKernel, kid: str) -> list[Metric]:
    stats = kernel.projection.stats()
    out: list[Metric] = [
        _gauge("dita_projection_backlog", "Documents waiting to be written.", kid, stats.get("backlog", 0)),
        _counter("dita_projection_writes", "Documents written.", kid, stats.get("writes", 0)),
        _counter("dita_projection_errors", "Failed projection writes.", kid, stats.get("errors", 0)),
    ]
    if "resyncs" in stats:
        out.append(
            _counter("dita_projection_resyncs", "Full rewrites after a reconnect.", kid, stats["resyncs"])
        )
    if "lag_ms_p50" in stats:
        lag = "Seconds from a kernel change to its acknowledged write, over the newest 1,000 writes"
        for stat, what in (("p50", "median"), ("max", "maximum")):
            seconds = stats[f"lag_ms_{stat}"] / 1e3
            out.append(_gauge(f"dita_projection_lag_{stat}_seconds", f"{lag}: {what}.", kid, seconds))
    connected = getattr(kernel.projection, "connected", None)
    if isinstance(connected, bool):
        out.append(_gauge("dita_projection_connected", "1 while the cluster is reachable.", kid, connected))
    return out


def _control_families(kernel: ExecutionKernel, kid: str) -> list[Metric]:
    control = kernel.control
    mode = GaugeMetricFamily(
        "dita_control_mode", "1 for the mode in force, 0 for the others.", labels=["kernel_id", "mode"]
    )
    for m in KernelMode:
        mode.add_metric([kid, m.value], 1.0 if control.mode is m else 0.0)
    verbosity = GaugeMetricFamily(
        "dita_control_verbosity",
        "1 for the verbosity in force, 0 for the others.",
        labels=["kernel_id", "verbosity"],
    )
    for v in KernelVerbosity:
        verbosity.add_metric([kid, v.value], 1.0 if control.verbosity is v else 0.0)
    return [
        _gauge("dita_control_rev", "Rev of the control in force.", kid, control.rev),
        mode,
        verbosity,
    ]


class MetricsPortError(RuntimeError):
    """The metrics endpoint could not listen where it was asked to."""


class MetricsServer:
    """`/metrics` over HTTP for one kernel; `attach` the kernel once it exists.

    `start()` listens at once (a busy port fails before anything else
    starts); until a kernel is attached the page holds process figures only.
    `source` names where the port came from in errors (a flag or a variable).
    """

    def __init__(self, host: str, port: int, *, source: str = "--metrics-port") -> None:
        self.host = host
        self.port = port
        self.source = source
        self.counters = CallCounters()
        self.collector = KernelCollector(self.counters)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)
        self._httpd: WSGIServer | None = None
        self._stop = threading.Event()
        self._folder = threading.Thread(target=self._fold_loop, name="dita-metrics-fold", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> None:
        try:
            self._httpd, _ = start_http_server(self.port, addr=self.host, registry=self.registry)
        except socket.gaierror as e:
            raise MetricsPortError(
                f"--metrics-host {self.host}: not an address of this machine ({e.strerror})"
            ) from None
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise MetricsPortError(
                    f"{self.source} {self.port}: {self.host}:{self.port} is already in use "
                    f"(another dita run?); pick another port"
                ) from None
            if e.errno == errno.EACCES:
                raise MetricsPortError(
                    f"{self.source} {self.port}: not allowed to listen on it (ports below 1024 need root)"
                ) from None
            raise MetricsPortError(
                f"--metrics-host {self.host} {self.source} {self.port}: cannot listen: {e.strerror or e}"
            ) from None
        self._folder.start()

    def attach(self, kernel: ExecutionKernel) -> None:
        self.collector.attach(kernel)

    def close(self) -> None:
        kernel = self.collector.kernel
        if kernel is not None:
            kernel.observe_calls(None)
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _fold_loop(self) -> None:
        while not self._stop.wait(FOLD_INTERVAL):
            self.counters.fold()
