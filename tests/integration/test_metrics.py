"""`dita run --metrics-port`: what Prometheus scrapes from a live kernel.

The first test runs `dita run` as an operator does, against the real member,
scrapes /metrics as Prometheus would and steers the kernel with
`dita control set`. The second drives a kernel in this process, to reach
what the demo strategy never calls (`on_venue_event`) and to read exact counts.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from dita.cluster.local_member import find_free_port
from dita.contracts import KernelIntent, VenueEvent
from dita.controlplane.operator import ControlOperator
from dita.kernel import ExecutionKernel
from dita.metrics import CallCounters, KernelCollector, MetricsServer
from dita.venue import SilentVenue
from tests.conftest import Cluster, reset_control, wait_until
from tests.integration.test_run_restart import dita, finish

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text page, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include `labels`."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        return parse(response.read().decode())


def scraped(port: int) -> Samples | None:
    """A scrape, or None while the run has not opened its endpoint or attached its kernel."""
    try:
        samples = scrape(port)
    except OSError:
        return None
    return samples if any(n == "dita_kernel_calls_total" for n, _ in samples) else None


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = cluster.client()
    # Other tests leave global entries behind; this kernel must start ACTIVE.
    reset_control(c)
    yield c
    c.shutdown()


@pytest.mark.hazelcast
def test_a_live_run_serves_growing_counters_and_follows_control(cluster: Cluster, client: Any) -> None:
    port = find_free_port()
    kid = "metrics-1"
    run = dita(
        cluster,
        "run", "--kernel-id", kid, "--slots", "8", "--steps", "0", "--interval", "0.002",
        "--metrics-port", str(port), "--json",
    )  # fmt: skip
    try:
        wait_until(
            lambda: (
                (page := scraped(port)) is not None
                and value(page, "dita_kernel_calls_total", kind="intent") > 0
            ),
            timeout=60,
        )
        first = scrape(port)
        wait_until(
            lambda: (
                value(scrape(port), "dita_projection_writes_total")
                > value(first, "dita_projection_writes_total")
            ),
            timeout=30,
        )
        second = scrape(port)
        calls = value(second, "dita_kernel_calls_total", kernel_id=kid, kind="intent")
        assert calls > value(first, "dita_kernel_calls_total", kernel_id=kid, kind="intent")
        assert value(second, "dita_kernel_outcome_latency_seconds_count", kind="intent") > value(
            first, "dita_kernel_outcome_latency_seconds_count", kind="intent"
        )
        assert value(second, "dita_kernel_outcome_latency_seconds_sum", kind="intent") > 0
        assert value(second, "dita_kernel_diagnostics_total", kind="intent", code="OK") > 0
        assert value(second, "dita_projection_errors_total") == 0
        assert value(second, "dita_projection_backlog") >= 0
        assert value(second, "dita_projection_connected") == 1
        assert value(second, "dita_projection_lag_max_seconds") > 0
        assert value(second, "dita_kernel_slots") == 8
        assert 0 <= value(second, "dita_kernel_open_positions") <= 8
        assert value(second, "dita_control_mode", mode="ACTIVE") == 1
        assert value(second, "dita_control_mode", mode="REDUCE_ONLY") == 0
        rev_before = value(second, "dita_control_rev")

        steered = subprocess.run(
            [sys.executable, "-m", "dita.cli", "control", "set", "--kernel", kid, "--mode", "REDUCE_ONLY",
             "--reason", "metrics test", "--wait", "--hazelcast", ",".join(cluster.members),
             "--cluster", cluster.cluster_name],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert steered.returncode == 0, steered.stdout + steered.stderr
        wait_until(lambda: value(scrape(port), "dita_control_mode", mode="REDUCE_ONLY") == 1, timeout=10)
        steered_page = scrape(port)
        assert value(steered_page, "dita_control_mode", mode="ACTIVE") == 0
        assert value(steered_page, "dita_control_mode", mode="HALTED") == 0
        assert value(steered_page, "dita_control_rev") > rev_before
        # REDUCE_ONLY refuses the demo's entries: the refusals show up by code.
        wait_until(
            lambda: (
                value(scrape(port), "dita_kernel_diagnostics_total", kind="intent", code="MODE_BLOCKED") > 0
            ),
            timeout=30,
        )
        last = scrape(port)
    finally:
        run.send_signal(signal.SIGTERM)
    out = finish(run)
    ControlOperator(client).clear(kid, reason="metrics test done")
    summary = json.loads(out.strip().splitlines()[-1])
    # The run's own tally went on after the last scrape; it never counted less than the metrics did.
    assert value(last, "dita_kernel_calls_total", kind="intent") <= summary["calls"]
    for (name, labels), n in last.items():
        if name == "dita_kernel_diagnostics_total" and ("kind", "intent") in labels and n > 0:
            code = dict(labels)["code"]
            assert n <= summary["codes"][code], code
    with pytest.raises(OSError):
        scrape(port)  # the endpoint closed with the run


def test_counts_and_latencies_of_each_kind_of_call_are_exact() -> None:
    kernel = ExecutionKernel(max_slots=2, kernel_id="metrics-inproc", venue=SilentVenue())
    server = MetricsServer("127.0.0.1", find_free_port())
    server.attach(kernel)  # not started: the page is read straight from the registry
    try:
        entered = kernel.process_intent(
            KernelIntent(
                action="ENTER", slot_id=0, trade_id="t1", asset="BTC-PERP", side="LONG",
                target_size=1.0, reference_price=100.0, exit_leg_ratios=(1.0,),
            )
        )  # fmt: skip
        kernel.process_intent(KernelIntent(action="ENTER", slot_id=0, trade_id="t2", asset="BTC-PERP",
                                           side="LONG", target_size=1.0, reference_price=100.0))  # fmt: skip
        assert entered.order is not None
        ack = VenueEvent(event_id="a1", kind="ORDER_ACK", venue_client_id=entered.order.venue_client_id)
        for _ in range(3):
            kernel.on_venue_event(ack)
        kernel.on_venue_event(
            VenueEvent(event_id="x1", kind="FILL", venue_client_id="nobody", price=100.0, size=1.0)
        )
        page = parse(generate_latest(server.registry).decode())
    finally:
        server.close()
    assert value(page, "dita_kernel_calls_total", kernel_id="metrics-inproc", kind="intent") == 2
    assert value(page, "dita_kernel_calls_total", kind="venue_event") == 4
    assert value(page, "dita_kernel_diagnostics_total", kind="intent", code="OK") == 1
    assert value(page, "dita_kernel_diagnostics_total", kind="intent", code="SLOT_BUSY") == 1
    assert value(page, "dita_kernel_diagnostics_total", kind="venue_event", code="OK") == 1
    assert value(page, "dita_kernel_diagnostics_total", kind="venue_event", code="DUPLICATE_EVENT") == 2
    assert value(page, "dita_kernel_diagnostics_total", kind="venue_event", code="UNKNOWN_ORDER") == 1
    assert value(page, "dita_kernel_outcome_latency_seconds_count", kind="venue_event") == 4
    assert value(page, "dita_kernel_outcome_latency_seconds_bucket", kind="venue_event", le="+Inf") == 4
    assert value(page, "dita_kernel_outcome_latency_dropped_total", kind="venue_event") == 0
    assert value(page, "dita_kernel_open_positions") == 0
    assert value(page, "dita_control_mode", mode="ACTIVE") == 1


def test_a_full_latency_buffer_counts_what_it_dropped() -> None:
    kernel = ExecutionKernel(max_slots=1, kernel_id="metrics-small-buffer", venue=SilentVenue())
    collector = KernelCollector(CallCounters(buffer_size=4))
    collector.attach(kernel)
    registry = CollectorRegistry()
    registry.register(collector)
    for i in range(10):
        kernel.on_venue_event(VenueEvent(event_id=f"e{i}", kind="FILL", venue_client_id="nobody"))
    page = parse(generate_latest(registry).decode())
    assert value(page, "dita_kernel_calls_total", kind="venue_event") == 10
    assert value(page, "dita_kernel_outcome_latency_seconds_count", kind="venue_event") == 4
    assert value(page, "dita_kernel_outcome_latency_dropped_total", kind="venue_event") == 6
