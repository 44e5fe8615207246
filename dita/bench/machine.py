"""The machine a report was measured on: CPU, cores, memory, OS, Python, rustc, Hazelcast."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any


def build_profile() -> str:
    """How the native module was compiled ("release" or "debug"). A module
    built before it said so is taken as release, as `pip install` builds."""
    import dita._native

    return str(getattr(dita._native, "BUILD_PROFILE", "release"))


def describe() -> dict[str, Any]:
    from dita.cluster.local_member import HAZELCAST_VERSION

    try:
        import hazelcast

        client = f"Python client {hazelcast.__version__}"
    except ImportError:
        client = "no Python client"
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": _cpu_model(),
        "cores": f"{cores}" + (f" ({usable} usable by this process)" if usable != cores else ""),
        "cores_count": cores,
        "memory": _memory(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "rustc": _rustc(),
        "hazelcast": f"{HAZELCAST_VERSION} (the member the benchmarks start), {client}",
        "build": f"{build_profile()} build",
        "load": " / ".join(f"{x:.2f}" for x in load) if load is not None else "unknown",
        "load_average": list(load) if load is not None else None,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory() -> str:
    total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if not total and hasattr(os, "sysconf"):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            total = 0
    return f"{total / 2**30:.1f} GiB" if total else "unknown"


def _rustc() -> str:
    """The toolchain on PATH now (the one `pip install` would build with), which
    need not be the one that built the installed module."""
    rustc = shutil.which("rustc")
    if rustc is None:
        return "not on PATH"
    try:
        done = subprocess.run([rustc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "did not answer"
    return done.stdout.strip() or "did not answer"
