"""A real Spark standalone cluster from the pyspark package: one master and one worker (one
core, 1 GiB), both `bin/spark-class` JVMs in the foreground on 127.0.0.1 free ports, each in
its own process group so `stop()` ends them and the executors and Python workers they started.
The driver is the test process (`spark.master: spark://127.0.0.1:<port>`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyspark

from spark_connect import _free_port

__all__ = ["SparkStandalone"]

_MASTER = "org.apache.spark.deploy.master.Master"
_WORKER = "org.apache.spark.deploy.worker.Worker"


class SparkStandalone:
    def __init__(self, timeout: float = 120.0) -> None:
        home = Path(pyspark.__file__).parent
        self.port = _free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="repast-spark-standalone-"))
        env = {
            **os.environ,
            "SPARK_HOME": str(home),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_WORKER_DIR": str(self._dir / "work"),
            "SPARK_LOG_DIR": str(self._dir),
        }
        spark_class = str(home / "bin" / "spark-class")
        self._processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        try:
            self._start(
                [spark_class, _MASTER, "--host", "127.0.0.1", "--port", str(self.port),
                 "--webui-port", str(_free_port())],
                env, "master",
            )  # fmt: skip
            self._wait(timeout, "master", "I have been elected leader")
            self._start(
                [spark_class, _WORKER, "--host", "127.0.0.1", "--port", str(_free_port()),
                 "--webui-port", str(_free_port()), "--cores", "1", "--memory", "1g",
                 self.url],
                env, "worker",
            )  # fmt: skip
            self._wait(timeout, "worker", "Successfully registered with master")
        except BaseException:
            self.stop()
            raise

    def _start(self, command: list[str], env: dict[str, str], name: str) -> None:
        log = self._dir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._processes.append((process, log))

    def _wait(self, timeout: float, name: str, line: str) -> None:
        process, log = self._processes[-1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in log.read_text(errors="replace"):
                return
            if process.poll() is not None:
                raise RuntimeError(f"Spark {name} exited: {self.logs()}")
            time.sleep(0.3)
        raise RuntimeError(f"Spark {name} not ready in {timeout}s: {self.logs()}")

    def logs(self) -> str:
        """The tail of every process's log (for a failure's message)."""
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for _, log in self._processes
        )

    def stop(self) -> None:
        for process, _ in reversed(self._processes):  # the worker, then the master
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
