"""compose/: the Docker Compose stack, checked as files (there is no Docker engine to run it here).

What would break the stack without anyone noticing until someone runs it:
an image that drifts from the Hazelcast version the tests run, a member
config that is not mounted or does not name every member, Prometheus
scraping a port the kernel does not serve, a kernel command with a flag
`dita run` does not take.
"""

from __future__ import annotations

import json
import re
import shlex
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from dita.cli import build_parser
from dita.cluster.local_member import HAZELCAST_VERSION, jar_dir

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
MEMBERS = ("member-1", "member-2", "member-3")


def load(name: str) -> Any:
    return yaml.safe_load((COMPOSE / name).read_text())


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    stack: dict[str, Any] = load("compose.yaml")
    return dict(stack["services"])


def host_ports(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port, from "HOST:CONTAINER" entries."""
    pairs = (str(p).split(":") for p in service.get("ports", []))
    return {int(container): int(host) for host, container in pairs}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (relative to compose/), read-only flags dropped."""
    found = {}
    for volume in service.get("volumes", []):
        host, container, *_ = str(volume).split(":")
        found[container] = host
    return found


def kernel_command() -> list[str]:
    """The CMD of compose/Dockerfile (exec form, continuation lines joined)."""
    text = (COMPOSE / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.startswith("CMD ")]
    assert len(lines) == 1, "one CMD"
    command: list[str] = json.loads(lines[0].removeprefix("CMD "))
    return command


def test_every_service_of_the_stack_is_there(services: dict[str, Any]) -> None:
    assert set(services) == {*MEMBERS, "management-center", "kernel", "prometheus"}


def test_every_image_is_pinned_and_the_members_run_the_tested_hazelcast(services: dict[str, Any]) -> None:
    for name in MEMBERS:
        assert services[name]["image"] == f"hazelcast/hazelcast:{HAZELCAST_VERSION}", name
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a release"
    # Management Center 5.x is the line that manages Hazelcast 5.x members.
    assert services["management-center"]["image"].startswith("hazelcast/management-center:5.")
    for line in (COMPOSE / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            image = line.split()[1]
            assert re.search(r":\d+\.\d+(\.\d+)?-", image), f"Dockerfile: {image} is not pinned"


def test_ports_reach_every_service_from_the_host(services: dict[str, Any]) -> None:
    member_ports = [host_ports(services[name]) for name in MEMBERS]
    assert all(5701 in ports for ports in member_ports)
    assert sorted(ports[5701] for ports in member_ports) == [5701, 5702, 5703]
    assert host_ports(services["management-center"]) == {8080: 8080}
    assert host_ports(services["prometheus"]) == {9090: 9090}
    assert host_ports(services["kernel"]) == {9464: 9464}


def test_the_member_config_is_mounted_into_every_member_and_loaded(services: dict[str, Any]) -> None:
    for name in MEMBERS:
        service = services[name]
        config_path = next(
            container for container, host in mounts(service).items() if host == "./hazelcast/member.yaml"
        )
        java_opts = service["environment"]["JAVA_OPTS"]
        assert f"-Dhazelcast.config={config_path}" in shlex.split(java_opts), name
        assert service["environment"]["HAZELCAST_CONFIG"] == config_path


def test_the_member_config_joins_exactly_the_three_members() -> None:
    config = load("hazelcast/member.yaml")["hazelcast"]
    assert config["cluster-name"] == "dita"
    join = config["network"]["join"]
    assert join["tcp-ip"]["enabled"] is True
    assert {entry.split(":")[0] for entry in join["tcp-ip"]["member-list"]} == set(MEMBERS)
    assert join["multicast"]["enabled"] is False and join["auto-detection"]["enabled"] is False
    assert config["jet"]["enabled"] is True
    assert config["properties"]["hazelcast.phone.home.enabled"] is False
    # The image's healthcheck asks this endpoint; without it every member reports unhealthy.
    assert config["network"]["rest-api"]["endpoint-groups"]["HEALTH_CHECK"]["enabled"] is True


def test_the_member_config_is_valid_for_the_pinned_hazelcast() -> None:
    import jsonschema

    jar = jar_dir(HAZELCAST_VERSION) / f"hazelcast-{HAZELCAST_VERSION}.jar"
    if not jar.is_file():
        pytest.skip(f"no Hazelcast jar cached at {jar} (the integration tests fetch it)")
    minor = ".".join(HAZELCAST_VERSION.split(".")[:2])
    # The schema Hazelcast itself validates YAML configs with; a misspelled key fails the member's start.
    schema = json.loads(zipfile.ZipFile(jar).read(f"hazelcast-config-{minor}.json"))
    jsonschema.validate(load("hazelcast/member.yaml"), schema)


def test_management_center_is_pointed_at_the_cluster(services: dict[str, Any]) -> None:
    env = services["management-center"]["environment"]
    assert env["MC_DEFAULT_CLUSTER"] == load("hazelcast/member.yaml")["hazelcast"]["cluster-name"]
    assert {m.split(":")[0] for m in env["MC_DEFAULT_CLUSTER_MEMBERS"].split(",")} == set(MEMBERS)


def test_the_kernel_command_is_one_dita_run_accepts() -> None:
    command = kernel_command()
    assert command[0] == "dita"
    args = build_parser().parse_args(command[1:])  # a flag it does not take exits here
    assert args.command == "run"
    assert args.steps == 0, "runs until stopped"
    assert {m.split(":")[0] for m in args.hazelcast.split(",")} == set(MEMBERS)
    assert args.cluster == load("hazelcast/member.yaml")["hazelcast"]["cluster-name"]
    assert args.metrics_port == 9464
    assert args.metrics_host == "0.0.0.0", "reachable from the Prometheus container"


def test_prometheus_scrapes_the_kernels_metrics_port(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    assert mounts(prometheus)["/etc/prometheus/prometheus.yml"] == "./prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    args = build_parser().parse_args(kernel_command()[1:])
    jobs = load("prometheus.yml")["scrape_configs"]
    targets = [t for job in jobs for config in job["static_configs"] for t in config["targets"]]
    assert f"kernel:{args.metrics_port}" in targets
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs)
    assert args.metrics_port in host_ports(services["kernel"])


def test_the_kernel_is_built_from_this_repository(services: dict[str, Any]) -> None:
    build = services["kernel"]["build"]
    context = (COMPOSE / build["context"]).resolve()
    assert (context / "pyproject.toml").is_file() and (context / build["dockerfile"]).resolve() == (
        COMPOSE / "Dockerfile"
    )
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    assert re.search(r"FROM python:3\.11", dockerfile) and "pip install" in dockerfile
    assert "rust" in dockerfile
    ignored = (COMPOSE / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and "native/target" in ignored, "the build context stays small"
