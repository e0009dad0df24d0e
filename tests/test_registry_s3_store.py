from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiobotocore.config import AioConfig

from repast.config import RegistryConfig, RepoConfig
from repast.errors import RegistryConflictError, RegistryError
from repast.registry import (
    Registry,
    RegistryStore,
    S3RegistryStore,
    put_record,
    registry_from_config,
)
from repast.registry.s3_store import parse_s3_uri, s3_endpoint_from_env
from services import S3Server

pytestmark = pytest.mark.s3


@pytest.fixture
def store(s3_server: S3Server, s3_bucket: str) -> Iterator[S3RegistryStore]:
    kwargs = s3_server.client_kwargs()
    endpoint = kwargs.pop("endpoint_url")
    store = S3RegistryStore(
        f"s3://{s3_bucket}/repo/registry.json", endpoint_url=endpoint, client_kwargs=kwargs
    )
    yield store
    store.close()


def test_is_a_registry_store(store: S3RegistryStore, s3_bucket: str) -> None:
    assert isinstance(store, RegistryStore)
    assert store.describe() == f"s3://{s3_bucket}/repo/registry.json"
    assert (store.bucket, store.key) == (s3_bucket, "repo/registry.json")


def test_create_read_update_delete(store: S3RegistryStore, s3_server: S3Server) -> None:
    assert store.read() is None
    token = store.write(b'{"one": 1}', None)
    assert store.read() == (b'{"one": 1}', token)
    token2 = store.write(b'{"two": 2}', token)
    assert token2 != token
    assert store.read() == (b'{"two": 2}', token2)
    client = s3_server.client()
    try:
        head = client.head_object(Bucket=store.bucket, Key=store.key)
    finally:
        client.close()
    assert head["ContentType"] == "application/json"
    store.delete()
    assert store.read() is None
    store.delete()  # absent: no error


def test_create_when_it_exists_conflicts(store: S3RegistryStore) -> None:
    store.write(b"one", None)
    with pytest.raises(
        RegistryConflictError, match=r"registry s3://.*/registry.json exists already"
    ):
        store.write(b"two", None)
    assert store.read()[0] == b"one"  # type: ignore[index]


def test_stale_update_conflicts(store: S3RegistryStore) -> None:
    first = store.write(b"one", None)
    store.write(b"two", first)
    with pytest.raises(RegistryConflictError, match="changed since it was read"):
        store.write(b"three", first)
    assert store.read()[0] == b"two"  # type: ignore[index]


def test_update_of_deleted_object_conflicts(store: S3RegistryStore) -> None:
    token = store.write(b"one", None)
    store.delete()
    with pytest.raises(RegistryConflictError):
        store.write(b"two", token)


def test_async_api_and_sync_calls_inside_a_running_loop(store: S3RegistryStore) -> None:
    async def scenario() -> None:
        assert await store.aread() is None
        token = await store.awrite(b"a", None)
        # A sync call from a coroutine still works (it blocks this loop, not the store's).
        assert store.read() == (b"a", token)
        with pytest.raises(RegistryConflictError):
            await store.awrite(b"b", None)
        await store.adelete()
        assert await store.aread() is None
        results = await asyncio.gather(*(store.aread() for _ in range(5)))
        assert results == [None] * 5
        await store.aclose()

    asyncio.run(scenario())
    asyncio.run(scenario())  # a second event loop works as well
    assert store.read() is None


def test_put_kwargs_are_sent(s3_server: S3Server, s3_bucket: str) -> None:
    kwargs = s3_server.client_kwargs()
    endpoint = kwargs.pop("endpoint_url")
    store = S3RegistryStore(
        f"s3://{s3_bucket}/r.json",
        endpoint_url=endpoint,
        client_kwargs=kwargs,
        put_kwargs={"CacheControl": "no-cache", "ContentType": "application/x-repast"},
    )
    try:
        store.write(b"{}", None)
    finally:
        store.close()
    client = s3_server.client()
    try:
        head = client.head_object(Bucket=s3_bucket, Key="r.json")
    finally:
        client.close()
    assert head["CacheControl"] == "no-cache"
    assert head["ContentType"] == "application/x-repast"


def test_missing_bucket_is_a_clear_error(s3_server: S3Server) -> None:
    kwargs = s3_server.client_kwargs()
    endpoint = kwargs.pop("endpoint_url")
    store = S3RegistryStore(
        "s3://no-such-bucket-x/r.json", endpoint_url=endpoint, client_kwargs=kwargs
    )
    try:
        with pytest.raises(RegistryError) as info:
            store.write(b"{}", None)
        assert str(info.value) == (
            f"cannot write registry s3://no-such-bucket-x/r.json at {endpoint}: "
            "bucket 'no-such-bucket-x' does not exist"
        )
        with pytest.raises(RegistryError, match="cannot read registry .* does not exist"):
            store.read()
    finally:
        store.close()


def test_bad_credentials_are_a_registry_error(s3_server: S3Server, s3_bucket: str) -> None:
    kwargs = s3_server.client_kwargs()
    endpoint = kwargs.pop("endpoint_url")
    kwargs["aws_secret_access_key"] = "wrong"
    store = S3RegistryStore(f"s3://{s3_bucket}/r.json", endpoint_url=endpoint, client_kwargs=kwargs)
    try:
        with pytest.raises(RegistryError, match="cannot read registry .*SignatureDoesNotMatch"):
            store.read()
    finally:
        store.close()


def test_unreachable_endpoint_is_a_registry_error(s3_bucket: str) -> None:
    store = S3RegistryStore(
        f"s3://{s3_bucket}/r.json",
        endpoint_url="http://127.0.0.1:9",
        client_kwargs={
            "aws_access_key_id": "x",
            "aws_secret_access_key": "y",
            "region_name": "us-east-1",
            "config": AioConfig(connect_timeout=1, retries={"max_attempts": 1}),
        },
    )
    try:
        with pytest.raises(
            RegistryError, match=r"cannot read registry s3://.* at http://127.0.0.1:9"
        ):
            store.read()
    finally:
        store.close()


def test_registry_on_s3_from_config(s3_env: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    config = RepoConfig(
        project="p",
        registry=RegistryConfig(path=f"s3://{s3_bucket}/registry.json", cache_ttl_seconds=5),
        repo_path=tmp_path,
    )
    registry = registry_from_config(config)
    try:
        assert isinstance(registry.store, S3RegistryStore)
        assert registry.store.endpoint_url == s3_env.endpoint_url  # from FEAST_S3_ENDPOINT_URL
        snap = registry.commit(lambda doc: put_record(doc, "p", "entities", "e", {"name": "e"}))
        assert registry.snapshot() is snap
        other = Registry(registry.store)
        assert other.snapshot().record("p", "entities", "e") is not None
        assert other.snapshot().version_id == snap.version_id
    finally:
        registry.close()


def test_endpoint_override_beats_env(
    s3_env: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEAST_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    config = RepoConfig(
        project="p",
        registry=RegistryConfig(
            path=f"s3://{s3_bucket}/r.json", s3_endpoint_override=s3_env.endpoint_url
        ),
        repo_path=tmp_path,
    )
    registry = registry_from_config(config)
    try:
        assert registry.snapshot().exists is False
    finally:
        registry.close()


# -- no server needed --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://b/k", ("b", "k")), ("s3://bucket/a/b/registry.json", ("bucket", "a/b/registry.json"))],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/", "s3:///key", "gs://b/k", "b/k"])
def test_parse_s3_uri_rejects(uri: str) -> None:
    with pytest.raises(ValueError, match="s3://bucket/key"):
        parse_s3_uri(uri)


def test_endpoint_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEAST_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert s3_endpoint_from_env() is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://aws")
    assert s3_endpoint_from_env() == "http://aws"
    monkeypatch.setenv("FEAST_S3_ENDPOINT_URL", "http://feast")
    assert s3_endpoint_from_env() == "http://feast"
    assert S3RegistryStore("s3://b/k").endpoint_url == "http://feast"
    assert S3RegistryStore("s3://b/k", endpoint_url="http://x").endpoint_url == "http://x"


def test_missing_aiobotocore_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiobotocore", None)
    with pytest.raises(RegistryError, match=r"install `repast\[s3\]`"):
        S3RegistryStore("s3://b/k")


def test_unclosed_store_closes_its_client_when_collected(
    s3_server: S3Server, s3_bucket: str
) -> None:
    import gc
    import time

    from repast.registry.s3_store import _LoopThread

    kwargs = s3_server.client_kwargs()
    endpoint = kwargs.pop("endpoint_url")
    store = S3RegistryStore(f"s3://{s3_bucket}/r.json", endpoint_url=endpoint, client_kwargs=kwargs)
    assert store.read() is None
    open_clients = _LoopThread.get().open_clients
    client = store._client
    assert client in open_clients
    del store
    gc.collect()
    for _ in range(100):
        if client not in open_clients:
            break
        time.sleep(0.02)
    assert client not in open_clients  # closed on the loop: no "Unclosed client session"
    assert client.cm is None
