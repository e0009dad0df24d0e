from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from repast.errors import RegistryConflictError, RegistryError
from repast.registry import FileRegistryStore, RegistryStore


def test_is_a_registry_store(tmp_path: Path) -> None:
    store = FileRegistryStore(tmp_path / "registry.json")
    assert isinstance(store, RegistryStore)
    assert store.describe() == str(tmp_path / "registry.json")


def test_create_read_update(tmp_path: Path) -> None:
    store = FileRegistryStore(tmp_path / "deep" / "dir" / "registry.json")
    assert store.read() is None
    token = store.write(b"one", None)
    assert token == hashlib.sha256(b"one").hexdigest()
    assert store.read() == (b"one", token)
    token2 = store.write(b"two", token)
    assert token2 != token
    assert store.read() == (b"two", token2)
    assert (tmp_path / "deep" / "dir" / "registry.json").read_bytes() == b"two"


def test_create_when_it_exists_conflicts(tmp_path: Path) -> None:
    store = FileRegistryStore(tmp_path / "registry.json")
    store.write(b"one", None)
    with pytest.raises(RegistryConflictError, match="registry .*registry.json exists already"):
        store.write(b"two", None)
    assert store.read()[0] == b"one"  # type: ignore[index]


def test_stale_update_conflicts(tmp_path: Path) -> None:
    store = FileRegistryStore(tmp_path / "registry.json")
    first = store.write(b"one", None)
    store.write(b"two", first)
    with pytest.raises(RegistryConflictError, match="changed since it was read"):
        store.write(b"three", first)
    assert store.read()[0] == b"two"  # type: ignore[index]


def test_update_of_deleted_file_conflicts(tmp_path: Path) -> None:
    store = FileRegistryStore(tmp_path / "registry.json")
    token = store.write(b"one", None)
    store.delete()
    with pytest.raises(RegistryConflictError):
        store.write(b"two", token)
    assert store.read() is None


def test_delete(tmp_path: Path) -> None:
    store = FileRegistryStore(tmp_path / "registry.json")
    store.delete()  # absent: nothing happens
    FileRegistryStore(tmp_path / "missing-dir" / "r.json").delete()
    assert not (tmp_path / "missing-dir").exists()
    store.write(b"x", None)
    store.delete()
    assert store.read() is None
    assert store.write(b"again", None)


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    store = FileRegistryStore(tmp_path / "registry.json")
    token = store.write(b"1", None)
    for i in range(5):
        token = store.write(str(i).encode(), token)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.json", "registry.json.lock"]


def test_file_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    store = FileRegistryStore(path)
    token = store.write(b"1", None)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    store.write(b"2", token)
    assert path.stat().st_mode & 0o777 == 0o600


def test_unwritable_location_is_a_registry_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = FileRegistryStore(tmp_path / "file" / "registry.json")
    with pytest.raises(RegistryError, match="cannot lock registry .*file/registry.json"):
        store.write(b"x", None)


def test_unreadable_location_is_a_registry_error(tmp_path: Path) -> None:
    (tmp_path / "registry.json").mkdir()
    with pytest.raises(RegistryError, match="cannot read registry .*registry.json"):
        FileRegistryStore(tmp_path / "registry.json").read()


def test_readers_never_see_a_partial_write(tmp_path: Path) -> None:
    store = FileRegistryStore(tmp_path / "registry.json")
    versions = [bytes([65 + i]) * (1 << 20) for i in range(4)]  # 1 MiB each
    token = store.write(versions[0], None)
    bad: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            got = store.read()
            if got is None or got[0] not in versions:
                bad.append(len(got[0]) if got else -1)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(40):
            token = store.write(versions[(i + 1) % len(versions)], token)
    finally:
        stop.set()
        thread.join()
    assert bad == []


def _cas_increment(path: str, count: int, barrier: threading.Barrier) -> None:
    """Child process: increment a counter stored as the file's text `count` times."""
    store = FileRegistryStore(path)
    barrier.wait()
    done = 0
    while done < count:
        stored = store.read()
        assert stored is not None
        value = int(stored[0])
        try:
            store.write(str(value + 1).encode(), stored[1])
        except RegistryConflictError:
            continue
        done += 1


def test_two_processes_compare_and_swap_without_lost_updates(tmp_path: Path) -> None:
    path = tmp_path / "counter"
    FileRegistryStore(path).write(b"0", None)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    count = 50
    procs = [ctx.Process(target=_cas_increment, args=(str(path), count, barrier)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(90)
        assert proc.exitcode == 0
    assert path.read_bytes() == str(2 * count).encode()


def test_lock_serializes_writers_in_one_process(tmp_path: Path) -> None:
    store = FileRegistryStore(tmp_path / "registry.json")
    token = store.write(b"0", None)
    results: list[str] = []

    def writer(data: bytes) -> None:
        try:
            results.append(store.write(data, token))
        except RegistryConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=writer, args=(f"w{i}".encode(),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("conflict") == 7
    assert os.path.exists(store.lock_path)
