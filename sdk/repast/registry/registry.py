"""The caching Registry: immutable snapshots for readers, compare-and-swap commits for writers.

>>> import tempfile
>>> from repast.registry import FileRegistryStore, Registry, put_record
>>> registry = Registry(FileRegistryStore(tempfile.mkdtemp() + "/registry.json"))
>>> snap = registry.commit(lambda doc: put_record(doc, "demo", "entities", "driver", {}))
>>> registry.snapshot().records("demo", "entities").keys()
dict_keys(['driver'])
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from repast.errors import RegistryConflictError
from repast.registry import document
from repast.registry.file_store import FileRegistryStore
from repast.registry.store import RegistryStore

if TYPE_CHECKING:
    from repast.config import RepoConfig

__all__ = ["Record", "Registry", "RegistryRefresher", "RegistrySnapshot", "registry_from_config"]

logger = logging.getLogger("repast.registry")

_EMPTY: Mapping[str, Record] = MappingProxyType({})


class Record(dict[str, Any]):
    """One stored object, `{"spec": ..., "meta": ...}`, read-only.

    `spec` is the definition's `to_dict()`; `meta` holds the timestamps (and, for feature
    views, `materialization_intervals`). Both `record.spec` and `record["spec"]` work. The
    nested dicts belong to the snapshot: do not change them; `to_dict()` gives a private copy.
    """

    __slots__ = ()

    def __init__(self, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        super().__init__(spec=spec, meta=meta)

    @property
    def spec(self) -> Mapping[str, Any]:
        spec: Mapping[str, Any] = dict.__getitem__(self, "spec")
        return spec

    @property
    def meta(self) -> Mapping[str, Any]:
        meta: Mapping[str, Any] = dict.__getitem__(self, "meta")
        return meta

    def to_dict(self) -> dict[str, Any]:
        return {"spec": copy.deepcopy(dict(self.spec)), "meta": copy.deepcopy(dict(self.meta))}

    def __repr__(self) -> str:
        return f"Record(spec={self.spec!r}, meta={self.meta!r})"

    def __reduce__(self) -> tuple[type[Record], tuple[Mapping[str, Any], Mapping[str, Any]]]:
        return (Record, (self.spec, self.meta))

    def __copy__(self) -> Record:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Record:
        return Record(copy.deepcopy(self.spec, memo), copy.deepcopy(self.meta, memo))

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("registry records are read-only; use record.to_dict() for a copy")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only


class RegistrySnapshot:
    """The registry document as read at one moment; it never changes after construction."""

    __slots__ = ("_doc", "_records", "exists", "loaded_at", "location", "token")

    def __init__(
        self, doc: dict[str, Any], *, token: str | None, location: str, loaded_at: float
    ) -> None:
        self._doc = doc
        self.token = token
        """The store's version token this was read at (None: no registry stored yet)."""
        self.exists = token is not None
        self.location = location
        self.loaded_at = loaded_at
        """`time.monotonic()` when this was read from the store."""
        self._records: dict[tuple[str, str], Mapping[str, Record]] = {
            (project, kind): MappingProxyType(
                {
                    name: Record(spec=rec["spec"], meta=rec["meta"])
                    for name, rec in body.get(kind, {}).items()
                }
            )
            for project, body in doc["projects"].items()
            for kind in document.KINDS
        }

    def _reloaded_at(self, loaded_at: float) -> RegistrySnapshot:
        """The same content read again (the store's token did not change): share the parsed
        records, restart the TTL."""
        snap = object.__new__(RegistrySnapshot)
        for name in RegistrySnapshot.__slots__:
            object.__setattr__(snap, name, getattr(self, name))
        snap.loaded_at = loaded_at
        return snap

    def __repr__(self) -> str:
        return (
            f"RegistrySnapshot({self.location!r}, version_id={self.version_id!r}, "
            f"projects={list(self.projects())!r})"
        )

    @property
    def version_id(self) -> str:
        return str(self._doc["version_id"])

    @property
    def last_updated(self) -> str:
        return str(self._doc["last_updated"])

    def projects(self) -> tuple[str, ...]:
        return tuple(sorted(self._doc["projects"]))

    def has_project(self, project: str) -> bool:
        return project in self._doc["projects"]

    def project_meta(self, project: str) -> Mapping[str, Any] | None:
        """`created_timestamp`, `last_updated_timestamp` and `infra` of a project, or None."""
        body = self._doc["projects"].get(project)
        if body is None:
            return None
        return MappingProxyType({k: v for k, v in body.items() if k not in document.KINDS})

    def records(self, project: str, kind: document.Kind) -> Mapping[str, Record]:
        """Records of one kind by name; empty when the project does not exist."""
        if kind not in document.KINDS:
            raise ValueError(f"unknown registry kind '{kind}'")
        return self._records.get((project, kind), _EMPTY)

    def record(self, project: str, kind: document.Kind, name: str) -> Record | None:
        return self.records(project, kind).get(name)

    def to_document(self) -> dict[str, Any]:
        """A private deep copy of the whole document (e.g. for `registry-dump`)."""
        return copy.deepcopy(self._doc)


class Registry:
    """A registry in a `RegistryStore`, with a snapshot cache.

    `snapshot()` reuses the cached snapshot until `cache_ttl_seconds` pass (0: forever).
    When it is stale, `cache_mode="sync"` reads the store before returning, while
    `cache_mode="thread"` returns the stale snapshot at once and refreshes in a background
    thread, so readers never wait on the store after the first read.
    """

    def __init__(
        self,
        store: RegistryStore,
        cache_ttl_seconds: int = 600,
        *,
        cache_mode: Literal["sync", "thread"] = "sync",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_ttl_seconds < 0:
            raise ValueError("cache_ttl_seconds must be >= 0 (0 means never expire)")
        self.store = store
        self.cache_ttl_seconds = cache_ttl_seconds
        self.cache_mode = cache_mode
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: RegistrySnapshot | None = None
        self._cached_seq = -1
        self._seq = 0
        self._background: threading.Thread | None = None
        self.last_refresh_error: Exception | None = None
        """The error of the last failed background refresh (None once one succeeds)."""

    def __repr__(self) -> str:
        return f"Registry({self.store!r}, cache_ttl_seconds={self.cache_ttl_seconds})"

    def describe(self) -> str:
        return self.store.describe()

    # -- reading -------------------------------------------------------------------------------

    def snapshot(self, allow_cache: bool = True) -> RegistrySnapshot:
        """The registry's content; from the cache unless it is stale or `allow_cache` is False."""
        cached = self._cached
        if allow_cache and cached is not None:
            if not self._is_stale(cached):
                return cached
            if self.cache_mode == "thread":
                self._refresh_in_background()
                return cached
        return self.refresh()

    def refresh(self) -> RegistrySnapshot:
        """Read the store now and replace the cached snapshot."""
        seq = self._next_seq()
        stored = self.store.read()
        cached = self._cached
        if stored is not None and cached is not None and stored[1] == cached.token:
            snap = cached._reloaded_at(self._clock())
        else:
            snap = self._snapshot_of(stored)
        return self._install(snap, seq)

    def _is_stale(self, snap: RegistrySnapshot) -> bool:
        ttl = self.cache_ttl_seconds
        return ttl > 0 and self._clock() - snap.loaded_at >= ttl

    def _snapshot_of(self, stored: tuple[bytes, str] | None) -> RegistrySnapshot:
        location = self.store.describe()
        if stored is None:
            return RegistrySnapshot(
                document.new_document(), token=None, location=location, loaded_at=self._clock()
            )
        data, token = stored
        doc = document.loads(data, location)
        for body in doc["projects"].values():
            for kind in document.KINDS:
                body.setdefault(kind, {})
        return RegistrySnapshot(doc, token=token, location=location, loaded_at=self._clock())

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def _install(self, snap: RegistrySnapshot, seq: int) -> RegistrySnapshot:
        # A slow read that started before a newer read or commit must not replace its result.
        with self._lock:
            if seq > self._cached_seq:
                self._cached, self._cached_seq = snap, seq
        return snap

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(
                target=self._background_refresh, name="repast-registry-refresh", daemon=True
            )
            self._background.start()

    def _background_refresh(self) -> None:
        try:
            self.refresh()
        except Exception as exc:
            self.last_refresh_error = exc
            logger.warning("registry refresh failed, serving the cached snapshot: %s", exc)
        else:
            self.last_refresh_error = None

    # -- writing -------------------------------------------------------------------------------

    def commit(
        self, mutate: Callable[[dict[str, Any]], object], *, retries: int = 5
    ) -> RegistrySnapshot:
        """Apply `mutate` to the freshest document and store it with compare-and-swap.

        `mutate` edits the document dict in place (see `repast.registry.document` helpers);
        raising aborts the commit and nothing is written. When another writer commits first,
        the document is read again and `mutate` runs again, up to `retries` more times. A
        `mutate` that changes nothing writes nothing. Returns the snapshot now stored.
        """
        location = self.store.describe()
        attempts = 0
        while True:
            seq = self._next_seq()
            stored = self.store.read()
            if stored is None:
                doc, token = document.new_document(), None
            else:
                doc, token = document.loads(stored[0], location), stored[1]
            before = document.dumps(doc)
            mutate(doc)
            if document.dumps(doc) == before:
                return self._install(self._snapshot_of(stored), seq)
            document.stamp(doc)
            document.validate(doc, location)
            data = document.dumps(doc)
            try:
                new_token = self.store.write(data, token)
            except RegistryConflictError as exc:
                attempts += 1
                if attempts > retries:
                    raise RegistryConflictError(
                        f"could not commit to registry {location}: another writer committed "
                        f"first on each of {attempts} attempts ({exc}); nothing was written "
                        "by this commit, run it again"
                    ) from None
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempts)))
                continue
            return self._install(self._snapshot_of((data, new_token)), seq)

    def delete_project(self, project: str) -> RegistrySnapshot:
        """Remove a project and all its records (nothing is written when it does not exist)."""
        return self.commit(lambda doc: document.delete_project(doc, project))

    def delete(self) -> None:
        """Delete the whole stored registry (every project) and forget the cache."""
        self.store.delete()
        with self._lock:
            self._cached, self._cached_seq = None, self._seq

    def close(self) -> None:
        """Release the store's connections (S3); the registry stays usable."""
        close = getattr(self.store, "close", None)
        if callable(close):
            close()


class RegistryRefresher:
    """Refresh a registry every `interval_seconds` from an asyncio task, reading the store in a
    worker thread so the event loop never waits on it. Failures are logged and kept in
    `last_error`; readers keep the last good snapshot.

        async with RegistryRefresher(registry, 5):
            ...  # handlers call registry.snapshot(), which is served from the cache
    """

    def __init__(self, registry: Registry, interval_seconds: float) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be > 0")
        self.registry = registry
        self.interval_seconds = interval_seconds
        self.last_error: Exception | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RegistryRefresher:
        self._task = asyncio.create_task(self._run(), name="repast-registry-refresher")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def refresh_once(self) -> RegistrySnapshot | None:
        try:
            snap = await asyncio.to_thread(self.registry.refresh)
        except Exception as exc:
            self.last_error = exc
            logger.warning("registry refresh failed, serving the cached snapshot: %s", exc)
            return None
        self.last_error = None
        return snap

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.refresh_once()


def registry_from_config(config: RepoConfig) -> Registry:
    """The Registry `feature_store.yaml` describes: a local file or an `s3://` object."""
    settings = config.registry
    location = config.registry_path
    store: RegistryStore
    if location.startswith("s3://"):
        from repast.registry.s3_store import S3RegistryStore

        store = S3RegistryStore(
            location,
            endpoint_url=settings.s3_endpoint_override,
            put_kwargs=settings.s3_additional_kwargs,
        )
    else:
        store = FileRegistryStore(location)
    return Registry(store, settings.cache_ttl_seconds, cache_mode=settings.cache_mode)
