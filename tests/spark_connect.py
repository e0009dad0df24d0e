"""A real Spark Connect server from the pyspark package (`SparkConnectServer` in its jars),
started on 127.0.0.1 with `spark-submit` in the foreground so the test owns its process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyspark

__all__ = ["SparkConnectServer"]

_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SparkConnectServer:
    def __init__(self, timeout: float = 120.0) -> None:
        home = Path(pyspark.__file__).parent
        self.port = _free_port()
        self.url = f"sc://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the process
            prefix="spark-connect-", suffix=".log", delete=False
        )
        env = {
            **os.environ,
            "SPARK_HOME": str(home),
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1",
        }
        command = [
            str(home / "bin" / "spark-submit"),
            "--class", _CLASS,
            "--master", "local[2]",
            "--conf", f"spark.connect.grpc.binding.port={self.port}",
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf", "spark.driver.bindAddress=127.0.0.1",
            "--conf", "spark.driver.host=127.0.0.1",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.sql.shuffle.partitions=4",
            "--conf", f"spark.sql.warehouse.dir={tempfile.mkdtemp(prefix='repast-connect-wh-')}",
            "spark-internal",
        ]  # fmt: skip
        # Its own process group: stop() ends the JVM and the Python workers it started.
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Spark Connect server exited: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"Spark Connect server did not listen in {timeout}s: {self.log()[-2000:]}"
        )

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
