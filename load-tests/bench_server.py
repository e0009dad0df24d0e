"""The feature server under load: `repast serve` + Redis on loopback, driven by a low-overhead
asyncio HTTP/1.1 generator pinned to another CPU.

    .venv/bin/python load-tests/bench_server.py                     # 3 repeats x 8 s per scenario
    .venv/bin/python load-tests/bench_server.py --repeats 1 --duration 3    # quicker
    .venv/bin/python load-tests/bench_server.py --with-feast        # also Feast's server, ratios

Layout on a 2-core machine: the server and redis-server share CPU 0 (`taskset`), the load
generator runs alone on CPU 1; `--redis-cpu 1` puts redis-server beside the generator
instead, as if Redis ran on a host of its own. Server and Redis CPU time per request are
reported apart. Data: 10 000 drivers written with `write_to_online_store`
(views of 50 and 250 features: float32, float64 and int64 in turn, ttl 0).

Scenarios (issue 5 targets):
- `1x50@1000`: 1 entity x 50 features at a fixed 1 000 requests/s (open loop: latency counts
  from the scheduled send time, so a stalled server cannot hide its queue).
- `1x50@max`: closed loop, 32 connections: the throughput and its p99.
- `agg1x30@1000` (issue 17): 1 entity x 30 aggregated features (10 aggregations x 1 h, 1 d,
  7 d windows, 5-minute tiles; 50 events per driver over the last 7 days, written into tiles
  with `write_to_online_store`) at 1 000 requests/s.
- `100x50@300`, `100x250@50`: fixed rates; `100x50@max`: closed loop.
- `push1@500`: `/push` of one row at 500/s; `push1000@max`: `/push` of 1 000 rows per request,
  closed loop (rows/s); plus a read-after-write check.
Each scenario runs `--repeats` times; the medians of p50, p99 and throughput are reported.
Writes JSON to `load-tests/results/bench_server.json` (or `--out`) and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from feast_server import build_feast_repo, ratios  # noqa: E402
from services import free_ports, start_redis_server  # noqa: E402

DRIVERS = 10_000
NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)
BODIES_PER_SCENARIO = 500
SERVER_CPU, LOADGEN_CPU = "0", "1"


# -- the load generator (runs in its own process: `bench_server.py _load <spec.json>`) -------------


@dataclass
class Spec:
    port: int
    path: str
    bodies: list[str]
    duration: float
    rate: float | None  # None: closed loop
    connections: int


def _request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _drive(spec: Spec) -> dict[str, Any]:
    requests = [_request(spec.port, spec.path, b.encode()) for b in spec.bodies]
    latencies: list[float] = []
    errors = reconnects = dropped = 0
    loop = asyncio.get_running_loop()
    hard_deadline = time.perf_counter() + 2 * spec.duration + 5
    deadline = loop.time() + spec.duration
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def connection(index: int) -> None:
        nonlocal errors, reconnects, dropped
        reader, writer = await asyncio.open_connection("127.0.0.1", spec.port)
        i = index
        try:
            while True:
                if spec.rate is None:
                    if loop.time() >= deadline:
                        return
                    scheduled, payload = time.perf_counter(), requests[i % len(requests)]
                    i += spec.connections
                else:
                    item = await queue.get()
                    if item is None:
                        return
                    scheduled, payload = item
                    if time.perf_counter() > hard_deadline:
                        # An overloaded server: stop the run in bounded time; what was not
                        # sent counts as dropped (and shows in the throughput).
                        dropped += 1
                        continue
                try:
                    writer.write(payload)
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    # A server that recycles workers (Feast's gunicorn --max-requests) closes
                    # keep-alive connections: reconnect and send the request again.
                    reconnects += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", spec.port)
                    writer.write(payload)
                    status = await _read_response(reader)
                latencies.append(time.perf_counter() - scheduled)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    async def producer() -> None:
        assert spec.rate is not None
        interval = 1.0 / spec.rate
        start = time.perf_counter()
        end = start + spec.duration
        n = 0
        while True:
            scheduled = start + n * interval
            if scheduled >= end:
                break
            # The loop's timers tick in whole milliseconds, which at 1,000 requests/s would
            # send each request up to 1 ms late and count that as server latency: sleep to
            # within 2 ms, then yield to the connections until the exact time (this process
            # has a CPU of its own).
            delay = scheduled - time.perf_counter()
            if delay > 0.002:
                await asyncio.sleep(delay - 0.002)
            while time.perf_counter() < scheduled:
                await asyncio.sleep(0)
            queue.put_nowait((scheduled, requests[n % len(requests)]))
            n += 1
        for _ in range(spec.connections):
            queue.put_nowait(None)

    started = time.perf_counter()
    tasks = [asyncio.create_task(connection(i)) for i in range(spec.connections)]
    if spec.rate is not None:
        tasks.append(asyncio.create_task(producer()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "reconnects": reconnects,
        "dropped": dropped,
        "seconds": round(elapsed, 3),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 3) if len(ms) else None,
        "max_ms": round(float(ms.max()), 3) if len(ms) else None,
    }


def _load_main(spec_file: str) -> None:
    spec = Spec(**json.loads(Path(spec_file).read_text()))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_drive(spec))))


def run_load(spec: Spec, workdir: Path) -> dict[str, Any]:
    spec_file = workdir / "spec.json"
    spec_file.write_text(json.dumps(spec.__dict__))
    command = [sys.executable, __file__, "_load", str(spec_file)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", LOADGEN_CPU, *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise RuntimeError(f"load generator failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- server CPU time (a figure that other load on a shared machine distorts less) -----------------


def _descendants(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            pids += _descendants(int(child))
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (Linux /proc)."""
    total = 0
    for p in _descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


# -- data and servers ------------------------------------------------------------------------------


def _columns(width: int, rng: np.random.Generator) -> dict[str, Any]:
    import pyarrow as pa

    arrow = [pa.float32(), pa.float64(), pa.int64()]
    return {
        f"f{i}": pa.array(rng.random(DRIVERS) * 100, pa.float64()).cast(arrow[i % 3], safe=False)
        for i in range(width)
    }


def build_repast_repo(repo: Path, redis_connection: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from repast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
    from repast.types import Float32, Float64, Int64

    repo.mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        f"project: bench\nregistry: {repo / 'registry.json'}\n"
        f"online_store:\n  type: redis\n  connection_string: {redis_connection}\n"
    )
    store = FeatureStore(repo_path=repo)
    rng = np.random.default_rng(1)
    ids = pa.array(np.arange(DRIVERS), pa.int64())
    ts = pa.array([NOW] * DRIVERS, pa.timestamp("us", tz="UTC"))
    driver = Entity(name="driver", join_keys=["driver_id"])
    types = [Float32, Float64, Int64]
    objects: list[Any] = [driver]
    tables = {}
    for width in (50, 250):
        table = pa.table({"driver_id": ids, "event_timestamp": ts, **_columns(width, rng)})
        path = repo / f"wide{width}.parquet"
        pq.write_table(table, path)
        source = FileSource(name=f"src{width}", path=str(path), timestamp_field="event_timestamp")
        fields = [Field(name=f"f{i}", dtype=types[i % 3]) for i in range(width)]
        schema = [Field(name="driver_id", dtype=Int64), *fields]
        objects.append(
            FeatureView(name=f"wide{width}", entities=[driver], schema=schema, source=source)
        )
        tables[f"wide{width}"] = table
        if width == 50:
            push = PushSource(name="bench_push", batch_source=source)
            objects += [
                push,
                FeatureView(name="pushed", entities=[driver], schema=schema, source=push),
            ]
    objects += aggregated_view(repo, driver)
    store.apply(objects)
    for name, table in tables.items():
        store.write_to_online_store(name, table)
    store.write_to_online_store("agg30", aggregation_events(rng))
    store.online_store.close()


AGG_FUNCTIONS = ["sum", "count", "mean", "min", "max", "last", "stddev", "var", "count_distinct"]
AGG_EVENTS_PER_DRIVER = 50


def aggregated_view(repo: Path, driver: Any) -> list[Any]:
    """`agg30`: 10 aggregations x 3 windows (1 h, 1 d, 7 d) = 30 features `f0..f29`, tiles of
    5 minutes, over a push source (issue 17's server scenario)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from repast import Aggregation, Field, FileSource, PushSource, StreamFeatureView
    from repast.types import Float64, Int64

    path = repo / "trips.parquet"
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([], pa.int64()),
                "event_timestamp": pa.array([], pa.timestamp("us", tz="UTC")),
                "trips": pa.array([], pa.int64()),
                "fare": pa.array([], pa.float64()),
            }
        ),
        path,
    )
    source = FileSource(name="trips", path=str(path), timestamp_field="event_timestamp")
    push = PushSource(name="trips_push", batch_source=source)
    aggregations = []
    for window in (timedelta(hours=1), timedelta(days=1), timedelta(days=7)):
        pairs = [(f, "fare") for f in AGG_FUNCTIONS if f != "count_distinct"]
        pairs += [("count_distinct", "trips"), ("sum", "trips")]
        for function, column in pairs:
            name = f"f{len(aggregations)}"
            aggregations.append(Aggregation(column, function, window, name=name))
    view = StreamFeatureView(
        name="agg30",
        entities=[driver],
        source=push,
        schema=[
            Field(name="driver_id", dtype=Int64),
            Field(name="trips", dtype=Int64),
            Field(name="fare", dtype=Float64),
        ],
        aggregations=aggregations,
        timestamp_field="event_timestamp",
        enable_tiling=True,
        tiling_hop_size=timedelta(minutes=5),
    )
    return [push, view]


def aggregation_events(rng: np.random.Generator) -> Any:
    """`AGG_EVENTS_PER_DRIVER` events per driver over the last 7 days (wall clock: online
    windows end now)."""
    import pyarrow as pa

    n = DRIVERS * AGG_EVENTS_PER_DRIVER
    now_us = int(time.time() * 1_000_000)
    ago = rng.integers(0, 7 * 86_400 * 1_000_000, n)
    return pa.table(
        {
            "driver_id": pa.array(np.repeat(np.arange(DRIVERS), AGG_EVENTS_PER_DRIVER)),
            "event_timestamp": pa.array(now_us - ago, pa.timestamp("us", tz="UTC")),
            "trips": pa.array(rng.integers(0, 5, n)),
            "fare": pa.array(rng.random(n) * 50),
        }
    )


@contextmanager
def started(
    command: list[str], url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    import httpx

    if shutil.which("taskset"):
        command = ["taskset", "-c", SERVER_CPU, *command]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command} exited:\n{log.read_text()[-3000:]}")
                try:
                    httpx.get(url + "/health", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{command} did not answer:\n{log.read_text()[-3000:]}"
                        ) from None
                    time.sleep(0.2)
            yield process
        finally:
            process.terminate()
            process.wait(30)


# -- scenarios -----------------------------------------------------------------------------------


def read_bodies(view: str, width: int, entities: int, rng: np.random.Generator) -> list[str]:
    features = [f"{view}:f{i}" for i in range(width)]
    return [
        json.dumps(
            {
                "entities": {"driver_id": rng.integers(0, DRIVERS, entities).tolist()},
                "features": features,
            }
        )
        for _ in range(BODIES_PER_SCENARIO)
    ]


def push_bodies(rows: int, rng: np.random.Generator) -> list[str]:
    bodies = []
    for n in range(BODIES_PER_SCENARIO if rows == 1 else 20):
        ts = datetime(2025, 1, 1, tzinfo=UTC).timestamp() + n
        stamp = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
        df: dict[str, Any] = {
            "driver_id": rng.integers(0, DRIVERS, rows).tolist(),
            "event_timestamp": [stamp] * rows,
        }
        for i in range(50):
            values = rng.random(rows) * 100
            df[f"f{i}"] = values.round().astype(int).tolist() if i % 3 == 2 else values.tolist()
        bodies.append(json.dumps({"push_source_name": "bench_push", "df": df, "to": "online"}))
    return bodies


SCENARIOS: list[tuple[str, str, str, int, int, float | None, int]] = [
    # name, path, view, width, entities (or push rows), rate (None: closed loop), connections
    ("1x50@1000", "/get-online-features", "wide50", 50, 1, 1000, 32),
    # Issue 17: 1 entity x 10 aggregations x 3 windows, from tiles.
    ("agg1x30@1000", "/get-online-features", "agg30", 30, 1, 1000, 32),
    ("1x50@4000", "/get-online-features", "wide50", 50, 1, 4000, 64),
    ("1x50@max", "/get-online-features", "wide50", 50, 1, None, 32),
    ("100x50@300", "/get-online-features", "wide50", 50, 100, 300, 32),
    ("100x50@max", "/get-online-features", "wide50", 50, 100, None, 16),
    ("100x250@50", "/get-online-features", "wide250", 250, 100, 50, 16),
    ("push1@200", "/push", "pushed", 50, 1, 200, 32),
    ("push1@500", "/push", "pushed", 50, 1, 500, 32),
    ("push1000@max", "/push", "pushed", 50, 1000, None, 4),
]


def run_scenarios(
    port: int,
    workdir: Path,
    duration: float,
    repeats: int,
    only: set[str] | None,
    pid: int,
    redis_pid: int | None = None,
) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    out: dict[str, Any] = {}
    for name, path, view, width, entities, rate, connections in SCENARIOS:
        if only and name not in only:
            continue
        if path == "/push":
            bodies = push_bodies(entities, rng)
        else:
            bodies = read_bodies(view, width, entities, rng)
        # One unmeasured second first: the server opens its store connections and builds
        # its read plans, the generator its sockets.
        run_load(Spec(port, path, bodies, min(1.0, duration), rate, connections), workdir)
        runs = []
        for _ in range(repeats):
            spec = Spec(port, path, bodies, duration, rate, connections)
            before = cpu_seconds(pid)
            redis_before = cpu_seconds(redis_pid) if redis_pid else 0.0
            run = run_load(spec, workdir)
            used = cpu_seconds(pid) - before
            requests = max(run["requests"], 1)
            run["server_cpu_ms_per_request"] = round(1000 * used / requests, 3)
            if redis_pid:
                redis_used = cpu_seconds(redis_pid) - redis_before
                run["redis_cpu_ms_per_request"] = round(1000 * redis_used / requests, 3)
            runs.append(run)
        summary = {
            key: statistics.median(r[key] for r in runs if r[key] is not None)
            for key in ("throughput_rps", "p50_ms", "p99_ms", "server_cpu_ms_per_request")
        }
        if redis_pid:
            summary["redis_cpu_ms_per_request"] = statistics.median(
                r["redis_cpu_ms_per_request"] for r in runs
            )
        summary["errors"] = sum(r["errors"] for r in runs)
        if path == "/push":
            summary["rows_per_s"] = round(summary["throughput_rps"] * entities, 1)
        out[name] = {"summary": summary, "runs": runs}
        print(name, json.dumps(summary), flush=True)
    return out


def read_after_write(url: str) -> bool:
    import httpx

    body = {
        "push_source_name": "bench_push",
        "df": {
            "driver_id": [424242],
            "event_timestamp": ["2030-01-01T00:00:00Z"],
            **{f"f{i}": [7 if i % 3 == 2 else 7.5] for i in range(50)},
        },
    }
    httpx.post(url + "/push", json=body).raise_for_status()
    read = {"entities": {"driver_id": [424242]}, "features": ["pushed:f0", "pushed:f2"]}
    got = httpx.post(url + "/get-online-features", json=read).json()
    return [r["values"][0] for r in got["results"][1:]] == [7.5, 7]


# -- main ------------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        # Other work on the machine skews every figure: record how busy it was.
        "load_average_at_start": os.getloadavg(),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_load":
        _load_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    parser.add_argument("--with-feast", action="store_true", help="also run `feast serve`")
    parser.add_argument(
        "--serve-only",
        action="store_true",
        help="load the data, start the server on --port and wait (for locust); Ctrl-C stops",
    )
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument(
        "--redis-cpu",
        default=SERVER_CPU,
        help=f"CPU to pin redis-server to: {SERVER_CPU} (default, beside the server) or "
        f"{LOADGEN_CPU} (beside the generator, as if Redis ran on a host of its own)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "load-tests" / "results" / "bench_server.json"
    )
    args = parser.parse_args()
    only = set(args.only) if args.only else None
    results: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join(["load-tests/bench_server.py", *sys.argv[1:]]),
        "redis_cpu": args.redis_cpu,
        "started": datetime.now(UTC).isoformat(),
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        redis = start_redis_server(tmp / "redis")
        try:
            # The fixture keeps its process private; pin it beside the server when visible.
            redis_process = getattr(getattr(redis, "_proc", None), "process", None)
            redis_pid = redis_process.pid if redis_process is not None else None
            if shutil.which("taskset") and redis_process is not None:
                pin = ["taskset", "-pc", args.redis_cpu, str(redis_process.pid)]
                subprocess.run(pin, check=True, capture_output=True)
            repo = tmp / "repast"
            build_repast_repo(repo, redis.connection_string)
            port = args.port or free_ports(1)[0]
            url = f"http://127.0.0.1:{port}"
            command = [str(Path(sys.executable).parent / "repast"), "-c", str(repo), "serve"]
            command += ["-p", str(port), "--no-access-log", "-w", "1"]
            if args.serve_only:
                with started(command, url, tmp / "repast.log") as process:
                    print(f"serving the benchmark repo on {url}; Ctrl-C stops", flush=True)
                    # A background job ignores SIGINT: let SIGTERM stop it cleanly as well.
                    signal.signal(signal.SIGTERM, _interrupt)
                    with suppress(KeyboardInterrupt):
                        process.wait()
                return
            with started(command, url, tmp / "repast.log") as process:
                results["read_after_write"] = read_after_write(url)
                results["repast"] = run_scenarios(
                    port, tmp, args.duration, args.repeats, only, process.pid, redis_pid
                )
            if args.with_feast:
                redis.flushall()
                python = build_feast_repo(tmp / "feast", repo, redis.connection_string)
                port = free_ports(1)[0]
                url = f"http://127.0.0.1:{port}"
                command = [str(python.parent / "feast"), "-c", str(tmp / "feast"), "serve"]
                command += ["-p", str(port), "--no-access-log", "-w", "1"]
                # Feast's default recycles its gunicorn worker every ~1000 requests, which
                # would take the worker's CPU time out of the measurement.
                command += ["--max-requests", "100000000"]
                with started(command, url, tmp / "feast.log") as process:
                    results["feast"] = run_scenarios(
                        port, tmp, args.duration, args.repeats, only, process.pid, redis_pid
                    )
                results["ratios"] = ratios(results["repast"], results["feast"])
        finally:
            redis.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    table(results)
    print(f"\nwritten: {args.out}")


def table(results: dict[str, Any]) -> None:
    print(
        f"\n{'scenario':<14} {'server':<7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'cpu ms/req':>10} {'redis ms/req':>12} {'errors':>7}"
    )
    for server in ("repast", "feast"):
        for name, data in results.get(server, {}).items():
            s = data["summary"]
            print(
                f"{name:<14} {server:<7} {s['throughput_rps']:>9.0f} {s['p50_ms']:>8.3f} "
                f"{s['p99_ms']:>8.3f} {s['server_cpu_ms_per_request']:>10.3f} "
                f"{s.get('redis_cpu_ms_per_request', float('nan')):>12.3f} {s['errors']:>7}"
            )
    for name, r in results.get("ratios", {}).items():
        print(
            f"ratio {name}: throughput x{r['throughput_x']}, "
            f"Feast p99 / Repast p99 = {r['feast_p99_over_repast_p99']}, "
            f"Feast CPU / Repast CPU per request = {r['feast_cpu_over_repast_cpu']}"
        )
    print(f"read-after-write visible at once: {results.get('read_after_write')}")


if __name__ == "__main__":
    main()
