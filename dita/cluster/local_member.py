"""Fetch the Hazelcast jars and run a real Hazelcast member on this machine.

Tests, the demo and CI need a member, and these machines have Java but no
Docker engine, so the member runs straight from the jars on Maven Central.
Standard library only: this must work before the project is installed.

    member = LocalMember(port=find_free_port())
    with member:                      # start() ... stop()
        connect_a_client(member.address)

    with LocalCluster(3, cluster_name="drill") as trio:   # three members, one cluster
        connect_a_client(*trio.addresses)

Command line (see ops/README.md):

    python -m dita.cluster.local_member start|stop|status|fetch [--port N]
        [--cluster NAME] [--foreground]

Files live under the dita cache root, ``$DITA_CACHE`` or ``~/.cache/dita``:
jars in ``hazelcast/<version>/``, member logs and pid files in
``hazelcast/run/``.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Self

if TYPE_CHECKING:
    from http.client import HTTPResponse
    from types import TracebackType

Log = Callable[[str], None]
StrPath = str | os.PathLike[str]

# 5.7.0 is the newest 5.x on Maven Central with a matching hazelcast-sql, is
# Apache-2.0 licensed and is built for Java 17 (class files version 61).
HAZELCAST_VERSION = "5.7.0"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
# hazelcast-sql shades its planner (Calcite) and needs nothing but hazelcast.
ARTIFACTS = ("hazelcast", "hazelcast-sql")

HOST = "127.0.0.1"
DEFAULT_PORT = 5701
DEFAULT_CLUSTER = "dita"
DEFAULT_HEAP = "512m"
MIN_JAVA = 17
MAIN_CLASS = "com.hazelcast.core.server.HazelcastMemberStarter"
# Shipped inside the package so an installed dita finds it; ops/hazelcast/member.yaml links here.
DEFAULT_CONFIG = Path(__file__).resolve().with_name("member.yaml")
# Members given a join list (a LocalCluster's); see LocalMember._join_options.
JOIN_WAIT_SECONDS = 1
NO_HEARTBEAT_SECONDS = 10

_STARTED = re.compile(r"\bis STARTED\b")
# Printed by every member on each change of the member list it sees.
_MEMBERS = re.compile(r"\bMembers \{size:(\d+), ver:(\d+)\}")
_PORT_BUSY = re.compile(r"already in use|BindException")
_LOG_TAIL_LINES = 25
_CHUNK = 256 * 1024

# A member that answers within milliseconds, every time, on a 2-core box:
# - ZGC: the serial collector stopped the member for 7 to 20 ms every few
#   seconds under load (its young collections copy the same ~15 MB of
#   survivors each time), and those pauses were the projection lag's p99;
#   ZGC's pauses are under a millisecond;
# - C1 only: C2 kept a quarter of a core compiling through the first tens
#   of seconds under load, taken from the kernels and readers beside it;
#   C1's code is plenty for a loopback member;
# - no hsperfdata file in /tmp; fail loudly instead of limping on when the
#   heap runs out.
_JVM_FLAGS = (
    "-XX:+UseZGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true",
)
# Hazelcast reaches into JDK internals (direct buffers, NIO, OS metrics);
# without these Java 17 denies it and the member logs warnings and loses
# metrics.
_JAVA17_ACCESS_FLAGS = (
    "--add-modules", "java.se",
    "--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.management/sun.management=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
)  # fmt: skip


class MemberError(RuntimeError):
    """A local member could not be fetched, started or stopped."""


class FetchError(MemberError):
    """A jar could not be downloaded or failed its checksum."""


class JavaNotFoundError(MemberError):
    """No usable Java runtime (missing, not executable, or too old)."""


class PortInUseError(MemberError):
    """The member's port is already taken by another process."""


class MemberStartError(MemberError):
    """The member process died early or did not report STARTED in time."""


# ---------------------------------------------------------------- paths


def cache_root() -> Path:
    """The dita cache root: ``$DITA_CACHE`` or ``~/.cache/dita``."""
    env = os.environ.get("DITA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dita"


def jar_dir(version: str = HAZELCAST_VERSION) -> Path:
    """Where the jars of one Hazelcast version are cached by default."""
    return cache_root() / "hazelcast" / version


def run_dir() -> Path:
    """Where member logs and pid files go, keyed by port."""
    return cache_root() / "hazelcast" / "run"


def pid_file(port: int) -> Path:
    return run_dir() / f"member-{port}.pid"


def default_log_file(port: int) -> Path:
    return run_dir() / f"member-{port}.log"


# ---------------------------------------------------------------- fetching


def fetch_jars(
    version: str = HAZELCAST_VERSION,
    cache_dir: StrPath | None = None,
    log: Log = print,
) -> list[Path]:
    """Download the member's jars from Maven Central unless already cached.

    Each jar is checked against Maven Central's ``.sha1`` and written under a
    temporary name, then renamed, so an interrupted download never leaves a
    jar that looks complete. Returns the jar paths, classpath order.
    """
    target = Path(cache_dir) if cache_dir is not None else jar_dir(version)
    target.mkdir(parents=True, exist_ok=True)
    return [_fetch_artifact(name, version, target, log) for name in ARTIFACTS]


def _fetch_artifact(artifact: str, version: str, target: Path, log: Log) -> Path:
    name = f"{artifact}-{version}.jar"
    jar = target / name
    sidecar = target / f"{name}.sha1"
    # The sidecar is written only after a verified download, so a match here
    # needs no network: starts stay offline once the cache is warm.
    if jar.is_file() and sidecar.is_file() and _sha1_of(jar) == _read_text(sidecar):
        return jar
    url = f"{MAVEN_CENTRAL}/com/hazelcast/{artifact}/{version}/{name}"
    expected = _fetch_sha1(f"{url}.sha1")
    if not (jar.is_file() and _sha1_of(jar) == expected):
        _download(url, jar, expected, log)
    _write_atomic(sidecar, expected.encode())
    return jar


def _fetch_sha1(url: str) -> str:
    with _http_get(url) as response:
        body = response.read(1024).decode("ascii", "replace")
    # Some .sha1 files carry "<hash>  <filename>"; the hash comes first.
    digest = body.split()[0].lower() if body.split() else ""
    if not re.fullmatch(r"[0-9a-f]{40}", digest):
        raise FetchError(f"unexpected checksum file at {url}: {body[:80]!r}")
    return digest


def _http_get(url: str) -> HTTPResponse:
    try:
        # Always an https:// URL built from MAVEN_CENTRAL, never user input.
        response: HTTPResponse = urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot fetch {url}: {reason}") from exc
    return response


def _download(url: str, dest: Path, expected_sha1: str, log: Log) -> None:
    started = time.monotonic()
    with _http_get(url) as response:
        total = int(response.headers.get("Content-Length") or 0)
        log(f"fetching {dest.name} ({_mb(total)}) from {url}")
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _copy_with_progress(response, out, dest.name, total, log)
                out.flush()
                os.fsync(out.fileno())
            _check_digest(dest.name, digest, expected_sha1)
            tmp.replace(dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    log(f"  {dest.name}: done, sha1 verified, {time.monotonic() - started:.1f}s")


def _check_digest(label: str, digest: str, expected: str) -> None:
    if digest != expected:
        raise FetchError(
            f"checksum mismatch for {label}: got sha1 {digest}, "
            f"Maven Central says {expected}; nothing was kept"
        )


def _copy_with_progress(src: BinaryIO, out: BinaryIO, label: str, total: int, log: Log) -> str:
    # A transfer checksum, as Maven Central publishes it; not a security check.
    hasher = hashlib.sha1(usedforsecurity=False)
    done = 0
    next_report = 10
    while chunk := src.read(_CHUNK):
        out.write(chunk)
        hasher.update(chunk)
        done += len(chunk)
        percent = done * 100 // total if total else 0
        if total and percent >= next_report:
            log(f"  {label}: {percent:3d}%  {_mb(done)} of {_mb(total)}")
            next_report = percent // 10 * 10 + 10
    if total and done != total:
        raise FetchError(f"{label}: connection closed after {done} of {total} bytes")
    return hasher.hexdigest()


def _sha1_of(path: Path) -> str:
    hasher = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            hasher.update(chunk)
    return hasher.hexdigest()


def _read_text(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace").strip()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    Path(tmp).replace(path)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size else "size unknown"


# ---------------------------------------------------------------- sockets


def find_free_port() -> int:
    """A loopback port nobody listens on right now (racy, but fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_answers(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _ensure_port_free(port: int) -> None:
    hint = f"pick another port, or see `ops/hazelcast-member status --port {port}`"
    if port_answers(port):
        raise PortInUseError(f"port {port} on {HOST} is already in use; {hint}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option Java sets, so a socket lingering in TIME_WAIT after a
        # stop does not count as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise PortInUseError(f"port {port} on {HOST} cannot be bound ({exc.strerror}); {hint}") from exc


# ---------------------------------------------------------------- java


def resolve_java(java: str | None = None) -> str:
    """The Java executable to run: ``java``, else ``$JAVA_HOME/bin/java``, else PATH."""
    if java is None:
        home = os.environ.get("JAVA_HOME")
        java = str(Path(home) / "bin" / "java") if home else "java"
    found = shutil.which(java)
    if found is None:
        raise JavaNotFoundError(
            f"cannot run Java: {java!r} was not found or is not executable. "
            f"Hazelcast needs a Java {MIN_JAVA}+ runtime: install one "
            f"(Debian/Ubuntu: apt-get install openjdk-17-jre-headless), "
            f"then put `java` on PATH, set JAVA_HOME, or pass java=/path/to/java (--java)"
        )
    _check_java_version(found)
    return found


def _check_java_version(java: str) -> None:
    # An old Java would die with UnsupportedClassVersionError deep in a log;
    # asking first gives the reason in one line.
    try:
        probe = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaNotFoundError(f"cannot run {java} -version: {exc}") from exc
    found = re.search(r'version "(\d+)(?:\.(\d+))?', probe.stderr)
    if found is None:
        raise JavaNotFoundError(f"cannot tell the Java version of {java}: {probe.stderr.strip()[:200]!r}")
    major = int(found.group(1))
    if major == 1 and found.group(2):  # "1.8.0_392" style
        major = int(found.group(2))
    if major < MIN_JAVA:
        raise JavaNotFoundError(
            f"{java} is Java {major}; Hazelcast {HAZELCAST_VERSION} needs Java {MIN_JAVA}+ "
            f"(Debian/Ubuntu: apt-get install openjdk-17-jre-headless, then set JAVA_HOME)"
        )


def _resolve_config(config: StrPath | None) -> Path:
    path = Path(config or os.environ.get("DITA_HAZELCAST_CONFIG") or DEFAULT_CONFIG)
    if not path.is_file():
        raise MemberError(f"member config not found at {path}; pass config= or set DITA_HAZELCAST_CONFIG")
    return path.resolve()


# ---------------------------------------------------------------- the member


class _ParentDeath:
    """Ask Linux to SIGKILL the child when its parent dies.

    An attached member must not outlive a test run that was killed, or it
    keeps its port and 0.5 GB. The libc function is looked up here, in the
    parent, so the child only makes one plain call between fork and exec.
    """

    _PR_SET_PDEATHSIG = 1

    def __init__(self) -> None:
        self._prctl: Callable[..., int] | None = None
        if sys.platform.startswith("linux"):
            try:
                self._prctl = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):
                self._prctl = None

    def hook(self) -> Callable[[], None] | None:
        # Linux ties the signal to the thread that forked, not the process:
        # from a worker thread the member would die when that thread ends.
        if self._prctl is None or threading.current_thread() is not threading.main_thread():
            return None
        prctl = self._prctl

        def set_parent_death_signal() -> None:
            prctl(self._PR_SET_PDEATHSIG, int(signal.SIGKILL))

        return set_parent_death_signal


class LocalMember:
    """One Hazelcast member process on 127.0.0.1, started from the jars.

    Keyword arguments (all optional):
      port: TCP port, default 5701; never moves to another port if busy.
      cluster_name: default "dita"; clients must use the same name.
      version: Hazelcast version, default HAZELCAST_VERSION.
      cache_dir: directory of the jars, default ``jar_dir(version)``.
      heap: JVM -Xms/-Xmx, default "512m".
      java: the java executable, default $JAVA_HOME/bin/java or java on PATH.
      config: member config file, default ops/hazelcast/member.yaml
        (or $DITA_HAZELCAST_CONFIG); port and cluster name override it.
      jvm_options: extra JVM arguments, after ours so they win (for example
        "-XX:-TieredStopAtLevel" brings C2 back for peak speed).
      log: where progress lines go, default print.
      log_file: the member's stdout and stderr, default
        ``run_dir()/member-<port>.log`` (appended to).
      detach: run the member in its own session so it outlives this
        process (the CLI's daemon mode); otherwise it is stopped at exit.
      join: "host:port" of every member of the cluster this one forms with
        others over TCP/IP (this one may be listed too); default empty: a
        cluster of one with every discovery off. See LocalCluster.
    """

    def __init__(
        self,
        *,
        port: int = DEFAULT_PORT,
        cluster_name: str = DEFAULT_CLUSTER,
        version: str = HAZELCAST_VERSION,
        cache_dir: StrPath | None = None,
        heap: str = DEFAULT_HEAP,
        java: str | None = None,
        config: StrPath | None = None,
        jvm_options: Sequence[str] = (),
        log: Log = print,
        log_file: StrPath | None = None,
        detach: bool = False,
        join: Sequence[str] = (),
    ) -> None:
        self.port = port
        self.cluster_name = cluster_name
        self.version = version
        self.cache_dir = cache_dir
        self.heap = heap
        self.java = java
        self.config = config
        self.jvm_options = tuple(jvm_options)
        self.log = log
        self.log_file = Path(log_file) if log_file is not None else default_log_file(port)
        self.detach = detach
        self.join = tuple(join)
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def address(self) -> str:
        """``"127.0.0.1:<port>"``, as Hazelcast clients take it."""
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        """Whether the process this object started is still alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 120.0) -> None:
        """Fetch the jars if needed, launch the member and wait until it serves.

        Returns once the member logged "is STARTED" and its port accepts
        connections. Raises JavaNotFoundError, PortInUseError, FetchError or
        MemberStartError (with the last lines of the member log), each
        saying why. Does nothing if this member already runs.
        """
        if self.is_running():
            return
        self._await_start(self._begin_start(), timeout)

    def _begin_start(self) -> float:
        """Launches the member without waiting for it; returns when it began."""
        began = time.monotonic()
        java = resolve_java(self.java)
        config = _resolve_config(self.config)
        _ensure_port_free(self.port)
        jars = fetch_jars(self.version, self.cache_dir, self.log)
        self.log(f"starting Hazelcast {self.version} member on {self.address} "
                 f"(cluster {self.cluster_name!r}, log {self.log_file})")  # fmt: skip
        self._launch(self._command(java, config, jars))
        return began

    def _await_start(self, began: float, timeout: float) -> None:
        self._wait_started(began + timeout, timeout)
        self.startup_seconds = time.monotonic() - began
        self.log(f"member up on {self.address} after {self.startup_seconds:.1f}s")

    def cluster_size(self) -> int:
        """How many members this member last said its cluster has (0 before it
        said, or when it is not running): read from its log since its start."""
        if not self.is_running():
            return 0
        seen = _MEMBERS.findall(self._log_since_start())
        # The list with the highest version is the newest, whatever order lines landed in.
        return int(max(seen, key=lambda m: int(m[1]))[0]) if seen else 0

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if the member is still alive after timeout."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL at once, as a crash would: no shutdown hooks run."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._forget()

    def restart(self, timeout: float = 120.0) -> None:
        self.stop()
        self.start(timeout)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines this member wrote since its latest start."""
        return "\n".join(self._log_since_start().splitlines()[-lines:])

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running() else "stopped"
        return f"LocalMember({self.address}, cluster={self.cluster_name!r}, {state})"

    # -- internals

    def _command(self, java: str, config: Path, jars: Sequence[Path]) -> list[str]:
        return [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *_JVM_FLAGS,
            *_JAVA17_ACCESS_FLAGS,
            f"-Dhazelcast.config={config}",
            # Hazelcast applies hz.* properties on top of the config file.
            f"-Dhz.cluster-name={self.cluster_name}",
            f"-Dhz.network.port.port={self.port}",
            "-Dhazelcast.phone.home.enabled=false",
            *self._join_options(),
            *self.jvm_options,
            "-cp",
            os.pathsep.join(str(jar) for jar in jars),
            MAIN_CLASS,
        ]

    def _join_options(self) -> list[str]:
        if not self.join:
            return []
        return [
            # member.yaml turns every discovery off; a join list turns on TCP/IP
            # to exactly these addresses, so no other local member can merge in.
            "-Dhz.network.join.tcp-ip.enabled=true",
            f"-Dhz.network.join.tcp-ip.members={','.join(self.join)}",
            # The master holds a join back this long to batch joiners (default 5 s);
            # on loopback members that start together arrive within a second.
            f"-Dhazelcast.wait.seconds.before.join={JOIN_WAIT_SECONDS}",
            # A member that stops answering heartbeats is dropped after this
            # (default 60 s): on loopback a silent member is a dead one.
            f"-Dhazelcast.max.no.heartbeat.seconds={NO_HEARTBEAT_SECONDS}",
        ]

    def _launch(self, command: list[str]) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            out.write(f"\n=== dita: {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.address}\n".encode())
            out.flush()
            self._log_offset = out.tell()
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.log_file.parent,  # Hazelcast may write files into its cwd
                start_new_session=self.detach,
                preexec_fn=None if self.detach else _PARENT_DEATH.hook(),
            )
        if not self.detach:
            atexit.register(self.stop)

    def _wait_started(self, deadline: float, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            raise MemberStartError(f"member on {self.address} was never launched")
        while True:
            text = self._log_since_start()
            code = proc.poll()
            if code is not None:
                self._forget()
                raise self._early_exit_error(code, text)
            if _STARTED.search(text) and port_answers(self.port):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise MemberStartError(
                    f"member on {self.address} did not start within {timeout:.0f}s (log: {self.log_file})\n"
                    f"last log lines:\n{_tail(text)}"
                )
            time.sleep(0.1)

    def _early_exit_error(self, code: int, text: str) -> MemberError:
        where = f"(log: {self.log_file})\nlast log lines:\n{_tail(text)}"
        if _PORT_BUSY.search(text):
            return PortInUseError(f"member could not bind {self.address}: port already in use {where}")
        return MemberStartError(f"member on {self.address} exited with code {code} before it started {where}")

    def _log_since_start(self) -> str:
        try:
            with self.log_file.open("rb") as f:
                f.seek(self._log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _forget(self) -> None:
        self._proc = None
        atexit.unregister(self.stop)


_PARENT_DEATH = _ParentDeath()


class LocalCluster:
    """Several LocalMembers on 127.0.0.1 forming one cluster over TCP/IP.

    Each member lists every member's address as its join list (see
    LocalMember's `join`), so they find each other and nothing else. The
    first member starts alone and becomes the master; the others are then
    launched together and join it. The maps' backups (member.yaml: one
    synchronous backup of every entry) keep every entry through the loss
    of one member.

      size: number of members, at least 2.
      ports: their ports (default: free ones).
      cluster_name: as for LocalMember; give each cluster a name of its own.
      log_dir: where each member's log goes, as member-<port>.log
        (default: LocalMember's default).
      Any other keyword (heap, java, config, jvm_options, log, version,
      cache_dir) is passed to every member.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        ports: Sequence[int] | None = None,
        cluster_name: str = DEFAULT_CLUSTER,
        log_dir: StrPath | None = None,
        **member_options: Any,
    ) -> None:
        if size < 2:
            raise ValueError(f"size = {size}: a cluster of one is a LocalMember")
        chosen = list(ports) if ports is not None else _free_ports(size)
        if len(chosen) != size or len(set(chosen)) != size:
            raise ValueError(f"ports = {chosen}: need {size} distinct ports")
        self.cluster_name = cluster_name
        join = [f"{HOST}:{port}" for port in chosen]
        self.members = [
            LocalMember(
                port=port,
                cluster_name=cluster_name,
                join=join,
                log_file=Path(log_dir) / f"member-{port}.log" if log_dir is not None else None,
                **member_options,
            )
            for port in chosen
        ]

    @property
    def addresses(self) -> list[str]:
        return [member.address for member in self.members]

    def start(self, timeout: float = 180.0) -> None:
        """Starts every member and returns once each sees the whole cluster.

        Raises what LocalMember.start raises, or MemberStartError when the
        members run but have not formed one cluster within `timeout`; either
        way no member is left running.
        """
        began = time.monotonic()
        try:
            first, *rest = self.members
            first.start(timeout)
            # Launched from this thread (the parent-death signal is tied to the
            # thread that forks), then awaited together: their JVMs start side by side.
            launched = [(member, member._begin_start()) for member in rest if not member.is_running()]
            for member, member_began in launched:
                member._await_start(member_began, max(timeout - (member_began - began), 1.0))
            self.wait_size(len(self.members), max(timeout - (time.monotonic() - began), 1.0))
        except BaseException:
            self.stop()
            raise

    def wait_size(self, size: int, timeout: float = 60.0) -> None:
        """Returns once every running member says the cluster has `size` members."""
        deadline = time.monotonic() + timeout
        while True:
            running = [m for m in self.members if m.is_running()]
            sizes = {m.address: m.cluster_size() for m in running}
            if running and all(n == size for n in sizes.values()):
                return
            if time.monotonic() > deadline:
                raise MemberStartError(
                    f"cluster {self.cluster_name!r} did not reach {size} members within {timeout:.0f}s "
                    f"(members report {sizes}; logs: {', '.join(str(m.log_file) for m in self.members)})"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalCluster({self.cluster_name!r}, {self.members})"


def _free_ports(count: int) -> list[int]:
    # Bound all at once, so the OS cannot hand out the same port twice.
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join("  " + line for line in text.splitlines()[-lines:]) or "  (the log is empty)"


# ---------------------------------------------------------------- daemon control


def read_pid(port: int) -> int | None:
    """The pid recorded by ``start`` for this port, if its process still runs."""
    try:
        pid = int(pid_file(port).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_member_process(pid) else None


def _is_member_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A recycled pid must not get our SIGTERM: check it still runs Hazelcast.
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or MAIN_CLASS.encode() in cmdline.read_bytes()


def stop_daemon(port: int, timeout: float = 30.0, log: Log = print) -> bool:
    """Stop the member that ``start`` left running on this port.

    Returns False if there was none. Raises MemberError if something else
    holds the port, since that process is not ours to kill.
    """
    pid = read_pid(port)
    if pid is None:
        pid_file(port).unlink(missing_ok=True)
        if port_answers(port):
            raise MemberError(
                f"something answers on {HOST}:{port} but no member started by this tool "
                f"runs there (no live pid in {pid_file(port)}); stop it by hand"
            )
        log(f"no member running on {HOST}:{port}")
        return False
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        log(f"member pid {pid} ignored SIGTERM for {timeout:.0f}s; sending SIGKILL")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 10.0)
    pid_file(port).unlink(missing_ok=True)
    log(f"stopped member pid {pid} on {HOST}:{port}")
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_member_process(pid):
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hazelcast-member",
        description="Fetch, start, stop or check a local Hazelcast member on 127.0.0.1.",
    )
    parser.add_argument("command", choices=("start", "stop", "status", "fetch"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    parser.add_argument("--cluster", default=DEFAULT_CLUSTER, help="cluster name, default %(default)s")
    parser.add_argument("--foreground", action="store_true", help="start: stay attached until Ctrl-C")
    parser.add_argument("--heap", default=DEFAULT_HEAP, help="JVM heap, default %(default)s")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait, default %(default)s",
    )
    parser.add_argument("--java", help="java executable, default $JAVA_HOME/bin/java or java on PATH")
    parser.add_argument("--hz-version", default=HAZELCAST_VERSION, help="default %(default)s")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except MemberError as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "fetch":
        for jar in fetch_jars(args.hz_version):
            print(jar)
        return 0
    if args.command == "status":
        return _status(args.port)
    if args.command == "stop":
        stop_daemon(args.port, args.timeout)
        return 0
    member = LocalMember(
        port=args.port,
        cluster_name=args.cluster,
        version=args.hz_version,
        heap=args.heap,
        java=args.java,
        detach=not args.foreground,
    )
    return _foreground(member, args.timeout) if args.foreground else _daemon(member, args.timeout)


def _status(port: int) -> int:
    pid = read_pid(port)
    owner = f" (pid {pid}, log {default_log_file(port)})" if pid else ""
    if port_answers(port):
        print(f"a member answers on {HOST}:{port}{owner}")
        return 0
    print(f"no member answers on {HOST}:{port}")
    return 3  # LSB's "program is not running"


def _daemon(member: LocalMember, timeout: float) -> int:
    member.start(timeout)
    path = pid_file(member.port)
    _write_atomic(path, f"{member.pid}\n".encode())
    print(f"member running on {member.address}, pid {member.pid}; "
          f"stop it with: ops/hazelcast-member stop --port {member.port}")  # fmt: skip
    return 0


def _foreground(member: LocalMember, timeout: float) -> int:
    # SIGTERM (from a supervisor or CI) should stop the member like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: _raise_interrupt())
    member.start(timeout)
    print(f"member running on {member.address}; log {member.log_file}; Ctrl-C stops it")
    try:
        while member.is_running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        member.stop()
        print("member stopped")
        return 0
    print(
        f"error: member exited on its own; last log lines:\n{member.log_tail()}",
        file=sys.stderr,
    )
    return 1


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
