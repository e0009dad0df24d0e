"""A real single-node Apache Kafka broker (KRaft, combined broker + controller) for the tests.

The broker is the official Kafka server from Maven Central's `kafka_2.13` artifact, fetched by
scripts/fetch-kafka.sh into a cache outside the repo and run straight off its jars with `java`:
no Docker, no tarball, nothing but Java 17+ and Maven on the machine. It binds 127.0.0.1 only,
on free ports, with its data in a temp dir that is removed when it stops.

    with running_kafka_broker() as broker:
        use(broker.bootstrap_servers)   # "127.0.0.1:<port>"

tests/kafka_fixtures.py wraps this as the session fixture `kafka_broker`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Keep in step with the default in scripts/fetch-kafka.sh (test_kafka_service.py checks they
# match); KAFKA_VERSION in the environment overrides both, e.g. to try a newer broker.
DEFAULT_KAFKA_VERSION = "4.4.0"
KAFKA_VERSION = os.environ.get("KAFKA_VERSION", DEFAULT_KAFKA_VERSION)

REPO_ROOT = Path(__file__).resolve().parent.parent
FETCH_SCRIPT = REPO_ROOT / "scripts" / "fetch-kafka.sh"

# Main classes inside kafka_2.13: in Kafka 4.x the storage formatter is still the Scala
# `kafka.tools.StorageTool` (what bin/kafka-storage.sh runs) and the server is `kafka.Kafka`.
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
SERVER_MAIN = "kafka.Kafka"

# A test broker holds little data: a 512 MiB heap cap is plenty, and the serial collector keeps
# the footprint and the thread count down on CI's 2 cores (G1, Kafka's default, is tuned for
# big heaps and short pauses, neither of which matters here).
DEFAULT_JVM_OPTS: tuple[str, ...] = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
)

# Everything that makes a stock broker slow to start or heavy in a test, turned down. Tests pass
# `config=` to override any of these (or anything else) per broker.
TEST_BROKER_CONFIG: dict[str, str] = {
    "auto.create.topics.enable": "true",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    # Internal topics default to 50 partitions and replication 3: a single node cannot satisfy
    # 3, and creating 50 partitions is most of the first consumer group's join time.
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "share.coordinator.state.topic.num.partitions": "1",
    # The default 3 s wait for more members before the first rebalance only slows tests down.
    "group.initial.rebalance.delay.ms": "0",
    # Small segments and indexes: the data dir is a temp dir and tests write little.
    "log.segment.bytes": str(16 * 1024 * 1024),
    "log.index.size.max.bytes": str(1024 * 1024),
    "offsets.topic.segment.bytes": str(16 * 1024 * 1024),
    # The compactor allocates its whole dedupe buffer (128 MiB by default) on the heap at start.
    "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
    "log.cleaner.threads": "1",
    # Fewer threads: less memory and less contention on a 2-core machine.
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "num.replica.fetchers": "1",
}

# Kafka's loggers are chatty at INFO, but the start-up sequence is what a failure report needs;
# only the config dumps (hundreds of lines each) are silenced.
LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d{HH:mm:ss,SSS}] %p %m (%c{1})%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
logger.kconfig.name = kafka.server.KafkaConfig
logger.kconfig.level = warn
"""

READY_TOPIC = "__repast_ready"
LOG_TAIL_LINES = 60


class KafkaStartError(RuntimeError):
    """The broker could not be fetched, formatted or started; the message holds why."""


@dataclass(frozen=True)
class KafkaBroker:
    """A running broker: where to reach it and where its files are."""

    bootstrap_servers: str
    controller_address: str
    data_dir: Path
    log_path: Path
    pid: int
    version: str

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return _tail(self.log_path, lines)


def kafka_libs(version: str = KAFKA_VERSION) -> Path:
    """The folder of the broker's jars, fetching them first (scripts/fetch-kafka.sh) if needed."""
    cache_root = Path(os.environ.get("REPAST_CACHE") or Path.home() / ".cache" / "repast")
    libs = cache_root / "kafka" / version / "libs"
    # The script writes this marker last, so its presence means a complete classpath.
    if (libs / ".complete").is_file():
        return libs
    result = subprocess.run(
        ["bash", str(FETCH_SCRIPT)],
        env={**os.environ, "KAFKA_VERSION": version},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise KafkaStartError(
            f"{FETCH_SCRIPT.name} failed (exit {result.returncode}):\n{result.stderr.strip()}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaStartError("no `java` on PATH (and no JAVA_HOME): Kafka needs Java 17+")
    return java


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _random_cluster_id() -> str:
    # Kafka's cluster ids are a random UUID in URL-safe base64 without padding (22 characters),
    # the same as `kafka-storage random-uuid` prints. Like Kafka's own generator, draw again when
    # the id starts with '-': the storage tool's argument parser takes it for an option (1 start
    # in 64 failed with "argument --cluster-id/-t: expected one argument").
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask Linux to SIGTERM the broker when the test
    # process dies, so a killed or crashed pytest run never leaves a JVM holding ports and RAM.
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _server_properties(
    data_dir: Path, broker_port: int, controller_port: int, config: Mapping[str, str]
) -> str:
    props = {
        # One JVM is both the KRaft controller (quorum of one, static voter) and the broker.
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": (
            f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        **TEST_BROKER_CONFIG,
        **config,
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


async def _round_trip(bootstrap_servers: str) -> None:
    """Produce one message and read it back through a consumer group with a commit.

    An open port only means the socket server is up; this proves metadata, auto topic creation,
    produce, fetch, the group coordinator and offset commits all work, and it creates the
    __consumer_offsets topic now so the first test's group join doesn't pay for it.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    try:
        await producer.start()
        await producer.send_and_wait(READY_TOPIC, b"ready")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        READY_TOPIC,
        bootstrap_servers=bootstrap_servers,
        group_id=READY_TOPIC,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=10_000,
    )
    try:
        await consumer.start()
        await asyncio.wait_for(consumer.getone(), timeout=20)
        await consumer.commit()
    finally:
        await consumer.stop()


def _run_round_trip(bootstrap_servers: str, timeout: float) -> None:
    asyncio.run(asyncio.wait_for(_round_trip(bootstrap_servers), timeout))


def _stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> bool:
    """Stop the broker; True if it shut down by itself (False: it hung and was killed)."""
    if proc.poll() is not None:
        return True
    # SIGTERM runs Kafka's orderly shutdown (seconds); SIGKILL only if it hangs.
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False
    return True


@dataclass(frozen=True)
class _ClassDataSharing:
    """JVM flags for a class-data-sharing (AppCDS) archive of the broker's classes.

    Most of a cold start is the JVM loading and verifying ~45 jars' worth of classes; mapping
    them from an archive instead starts the broker about a third faster (measured 10.5 s -> 6.3 s
    on a loaded 2-core machine). The first broker on a machine has no archive yet: it runs with
    -XX:ArchiveClassesAtExit, the JVM writes the archive as it exits, and later starts use it.
    """

    use: tuple[str, ...]  # flags for every JVM (broker and storage tool) when the archive exists
    dump: tuple[str, ...]  # flags for the broker when it does not: write it at exit
    pending: Path | None  # where that broker writes it, published by `publish` once it stopped
    archive: Path | None

    def publish(self) -> None:
        if self.pending is None or self.archive is None:
            return
        # Renamed into place only when complete, so a concurrent start never maps a half file.
        if self.pending.is_file() and self.pending.stat().st_size > 0:
            os.replace(self.pending, self.archive)
        else:
            self.pending.unlink(missing_ok=True)

    def discard(self) -> None:
        if self.pending is not None:
            self.pending.unlink(missing_ok=True)


def _class_data_sharing(libs: Path, java: str) -> _ClassDataSharing:
    if os.environ.get("REPAST_KAFKA_CDS", "1") == "0":
        return _ClassDataSharing((), (), None, None)
    # An archive is only valid for the JVM build that wrote it: key it by the java binary
    # (resolved through Debian's alternatives symlinks) so a JDK upgrade gets a fresh one. The
    # JVM also checks the archive itself and silently runs without it on any mismatch.
    real_java = Path(java).resolve()
    key = uuid.uuid5(uuid.NAMESPACE_URL, f"{real_java}:{real_java.stat().st_mtime_ns}").hex[:12]
    archive = libs.parent / f"broker-{key}.jsa"
    if archive.is_file():
        return _ClassDataSharing((f"-XX:SharedArchiveFile={archive}",), (), None, archive)
    # A run killed before it could publish leaves its ~50 MB temp archive behind: sweep old ones.
    for stale in libs.parent.glob("broker-*.jsa.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 3600:
                stale.unlink()
    pending = libs.parent / f"broker-{key}.jsa.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp"
    return _ClassDataSharing((), (f"-XX:ArchiveClassesAtExit={pending}",), pending, archive)


def _bind_failed(log_path: Path) -> bool:
    text = _tail(log_path, 400)
    return "BindException" in text or "Address already in use" in text


@contextlib.contextmanager
def running_kafka_broker(
    *,
    config: Mapping[str, str] | None = None,
    jvm_opts: tuple[str, ...] = DEFAULT_JVM_OPTS,
    startup_timeout: float = 90.0,
    version: str = KAFKA_VERSION,
) -> Iterator[KafkaBroker]:
    """Start a fresh single-node KRaft broker on 127.0.0.1, yield it, stop it and delete its data.

    Raises KafkaStartError, with the tail of the broker's log, if it does not come up within
    `startup_timeout` seconds: a test that needs Kafka fails loudly rather than being skipped.
    """
    libs = kafka_libs(version)
    java = _java()
    classpath = f"{libs}/*"
    cds = _class_data_sharing(libs, java)
    # A port picked free here can be taken by another process before the broker binds it; that
    # race is rare but real on a busy CI machine, so a bind failure gets fresh ports.
    attempts = 3
    for attempt in range(1, attempts + 1):
        workdir = Path(tempfile.mkdtemp(prefix="repast-kafka-"))
        try:
            broker, proc, log_file = _start(
                java,
                classpath,
                workdir,
                dict(config or {}),
                jvm_opts,
                cds,
                startup_timeout,
                version,
            )
        except _PortTakenError:
            cds.discard()
            shutil.rmtree(workdir, ignore_errors=True)
            if attempt == attempts:
                raise KafkaStartError(
                    f"Kafka could not bind its ports in {attempts} attempts"
                ) from None
            continue
        except KafkaStartError:
            # Keep the broker's files: the error names its log, which holds more than the tail.
            cds.discard()
            raise
        except BaseException:
            cds.discard()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        try:
            yield broker
        finally:
            # Writing the archive happens during exit and can take several seconds on a busy
            # machine, so a dumping broker gets longer before it is killed.
            if _stop(proc, grace=60.0 if cds.dump else 20.0):
                cds.publish()
            else:
                cds.discard()
            log_file.close()
            shutil.rmtree(workdir, ignore_errors=True)
        return


class _PortTakenError(Exception):
    pass


def _start(
    java: str,
    classpath: str,
    workdir: Path,
    config: dict[str, str],
    jvm_opts: tuple[str, ...],
    cds: _ClassDataSharing,
    startup_timeout: float,
    version: str,
) -> tuple[KafkaBroker, subprocess.Popen[bytes], IO[bytes]]:
    data_dir = workdir / "data"
    log_path = workdir / "broker.log"
    props_path = workdir / "server.properties"
    log4j_path = workdir / "log4j2.properties"
    broker_port, controller_port = _free_port(), _free_port()
    props_path.write_text(_server_properties(data_dir, broker_port, controller_port, config))
    log4j_path.write_text(LOG4J2_PROPERTIES)
    log4j_opt = f"-Dlog4j2.configurationFile={log4j_path}"

    # The storage tool is a short-lived JVM: C1 only and a small heap start it faster.
    fmt = subprocess.run(
        [
            java,
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            *cds.use,
            log4j_opt,
            "-cp",
            classpath,
            STORAGE_TOOL_MAIN,
            "format",
            "--cluster-id",
            _random_cluster_id(),
            "--config",
            str(props_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if fmt.returncode != 0:
        raise KafkaStartError(
            f"formatting Kafka storage failed (exit {fmt.returncode}):\n"
            f"{fmt.stdout[-3000:]}\n{fmt.stderr[-3000:]}"
        )

    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [
            java,
            *jvm_opts,
            *cds.use,
            *cds.dump,
            log4j_opt,
            "-cp",
            classpath,
            SERVER_MAIN,
            str(props_path),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    broker = KafkaBroker(
        bootstrap_servers=f"127.0.0.1:{broker_port}",
        controller_address=f"127.0.0.1:{controller_port}",
        data_dir=data_dir,
        log_path=log_path,
        pid=proc.pid,
        version=version,
    )
    try:
        _wait_ready(proc, broker, startup_timeout)
    except BaseException:
        _stop(proc, grace=5.0)
        log_file.close()
        raise
    return broker, proc, log_file


def _raise_if_exited(proc: subprocess.Popen[bytes], broker: KafkaBroker) -> None:
    if proc.poll() is None:
        return
    # Checked in both waiting phases: whoever took the port may be listening on it, so the port
    # can look open while the broker is in fact dying of the bind failure.
    if _bind_failed(broker.log_path):
        raise _PortTakenError
    raise KafkaStartError(
        f"Kafka exited with code {proc.returncode} during start-up; "
        f"last lines of {broker.log_path}:\n{broker.log_tail()}"
    )


def _wait_ready(proc: subprocess.Popen[bytes], broker: KafkaBroker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    host, port = broker.bootstrap_servers.rsplit(":", 1)
    last_error: BaseException | None = None
    # First the cheap check: poll until the broker's port accepts a TCP connection.
    while True:
        _raise_if_exited(proc, broker)
        if time.monotonic() > deadline:
            raise KafkaStartError(
                f"Kafka did not accept connections on {broker.bootstrap_servers} within "
                f"{timeout:.0f}s; last lines of {broker.log_path}:\n{broker.log_tail()}"
            )
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 0.5):
            break
        time.sleep(0.1)
    # Then a real round trip, retried: the port opens a moment before the broker has finished
    # registering with its controller, and early requests can fail with retriable errors.
    while time.monotonic() < deadline:
        _raise_if_exited(proc, broker)
        remaining = max(1.0, deadline - time.monotonic())
        try:
            # In a worker thread with its own event loop, so this also works when called from
            # async code (e.g. a pytest-asyncio test) that already runs a loop in this thread.
            with ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(_run_round_trip, broker.bootstrap_servers, remaining).result()
            return
        except Exception as exc:  # aiokafka raises several unrelated types here; any means retry
            last_error = exc
            time.sleep(0.5)
    raise KafkaStartError(
        f"Kafka at {broker.bootstrap_servers} did not complete a produce/consume round trip "
        f"within {timeout:.0f}s (last error: {last_error!r}); "
        f"last lines of {broker.log_path}:\n{broker.log_tail()}"
    )
