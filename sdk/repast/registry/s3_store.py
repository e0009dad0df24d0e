"""The registry as one S3 object (`s3://bucket/key`), written with conditional puts.

Create is `PutObject(IfNoneMatch="*")`, update is `PutObject(IfMatch=<etag read>)`; S3 answers
412 (or 409 for a racing conditional write) when another writer won, which becomes
`RegistryConflictError`. aiobotocore is imported lazily: it is the `repast[s3]` extra.

The SDK is synchronous and the server is asyncio, so every operation has an async form
(`aread`, `awrite`, `adelete`) and a sync one (`read`, `write`, `delete`). Both run the request
on one private event loop in a daemon thread that owns the aiobotocore client, so the sync form
works inside a running event loop too, and the client is never shared between loops.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import weakref
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from repast.errors import RegistryConflictError, RegistryError

__all__ = ["S3RegistryStore", "parse_s3_uri", "s3_endpoint_from_env"]

_T = TypeVar("_T")

_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> `("bucket", "some/key")`; ValueError for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 location: '{uri}' (expected s3://bucket/key)")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ValueError(f"S3 location '{uri}' needs a bucket and an object key: s3://bucket/key")
    return bucket, key


def s3_endpoint_from_env() -> str | None:
    """`FEAST_S3_ENDPOINT_URL`, else `AWS_ENDPOINT_URL`, else None (AWS itself)."""
    return os.environ.get("FEAST_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None


class _LoopThread:
    """One event loop in a daemon thread per process; closes registered clients at exit."""

    _instance: _LoopThread | None = None
    _guard = threading.Lock()

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="repast-s3-loop", daemon=True
        )
        self.thread.start()
        self.open_clients: set[_Client] = set()
        self._session: Any = None
        atexit.register(self._shutdown)

    def session(self) -> Any:
        """One aiobotocore session per process: it caches the parsed service models, which
        take about a second to load."""
        if self._session is None:
            from aiobotocore.session import get_session

            self._session = get_session()
        return self._session

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._guard:
            # After a fork the thread is gone; the child gets its own loop.
            if cls._instance is None or cls._instance.pid != os.getpid():
                cls._instance = _LoopThread()
            return cls._instance

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a sync S3 registry call was made on the S3 store's own loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def run_async(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def _shutdown(self) -> None:
        if self.pid != os.getpid() or not self.thread.is_alive():
            return
        for client in list(self.open_clients):
            try:
                asyncio.run_coroutine_threadsafe(client.aclose(), self.loop).result(timeout=5)
            except Exception:  # best effort at interpreter exit
                logging.getLogger("repast.registry").debug("closing an S3 client failed")
        self.loop.call_soon_threadsafe(self.loop.stop)
        # Closing the stopped loop releases its self-pipe sockets, which would otherwise be
        # reported as unclosed (ResourceWarning) when the interpreter exits.
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


class _Client:
    """A store's aiobotocore client, used only on the private loop. Kept apart from the store
    so that a store that is garbage-collected unclosed can still have its client closed."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cm: Any = None
        self.client: Any = None

    async def get(self, kwargs: dict[str, Any]) -> Any:
        if self.pid != os.getpid():  # inherited through fork: the parent's loop is gone
            self.pid, self.cm, self.client = os.getpid(), None, None
        if self.client is None:
            loop_thread = _LoopThread.get()
            self.cm = loop_thread.session().create_client("s3", **kwargs)
            self.client = await self.cm.__aenter__()
            loop_thread.open_clients.add(self)
        return self.client

    async def aclose(self) -> None:
        cm, self.cm, self.client = self.cm, None, None
        _LoopThread.get().open_clients.discard(self)
        if cm is not None:
            await cm.__aexit__(None, None, None)


def _close_unreferenced(client: _Client) -> None:
    loop_thread = _LoopThread._instance
    if (
        client.cm is not None
        and loop_thread is not None
        and loop_thread.pid == os.getpid()
        and loop_thread.thread.is_alive()
    ):
        asyncio.run_coroutine_threadsafe(client.aclose(), loop_thread.loop)


class S3RegistryStore:
    """`RegistryStore` for `s3://bucket/key` (any S3-compatible server via `endpoint_url`)."""

    def __init__(
        self,
        uri: str,
        *,
        endpoint_url: str | None = None,
        put_kwargs: Mapping[str, str] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.uri = uri
        self.bucket, self.key = parse_s3_uri(uri)
        self.endpoint_url = endpoint_url or s3_endpoint_from_env()
        self.put_kwargs = dict(put_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self._client = _Client()
        weakref.finalize(self, _close_unreferenced, self._client).atexit = False
        try:
            import aiobotocore  # noqa: F401
        except ImportError:
            raise RegistryError(
                f"the registry {uri} is on S3, which needs aiobotocore: "
                "install `repast[s3]` (pip install 'repast[s3]')"
            ) from None

    def __repr__(self) -> str:
        return f"S3RegistryStore({self.uri!r}, endpoint_url={self.endpoint_url!r})"

    def describe(self) -> str:
        return self.uri

    # -- sync API ------------------------------------------------------------------------------

    def read(self) -> tuple[bytes, str] | None:
        return _LoopThread.get().run(self._read())

    def write(self, data: bytes, expected: str | None) -> str:
        return _LoopThread.get().run(self._write(data, expected))

    def delete(self) -> None:
        _LoopThread.get().run(self._delete())

    def close(self) -> None:
        """Close the HTTP client (it is reopened on the next call)."""
        if self._client.cm is not None:
            _LoopThread.get().run(self._client.aclose())

    # -- async API (safe from any event loop) ---------------------------------------------------

    async def aread(self) -> tuple[bytes, str] | None:
        return await _LoopThread.get().run_async(self._read())

    async def awrite(self, data: bytes, expected: str | None) -> str:
        return await _LoopThread.get().run_async(self._write(data, expected))

    async def adelete(self) -> None:
        await _LoopThread.get().run_async(self._delete())

    async def aclose(self) -> None:
        if self._client.cm is not None:
            await _LoopThread.get().run_async(self._client.aclose())

    # -- on the private loop --------------------------------------------------------------------

    async def _client_for_loop(self) -> Any:
        from aiobotocore.config import AioConfig

        kwargs: dict[str, Any] = {
            "config": AioConfig(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
            **self.client_kwargs,
        }
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return await self._client.get(kwargs)

    async def _read(self) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        client = await self._client_for_loop()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=self.key)
            async with response["Body"] as body:
                data: bytes = await body.read()
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise self._error("read", exc) from None
        except Exception as exc:
            raise self._error("read", exc) from None
        return data, str(response["ETag"])

    async def _write(self, data: bytes, expected: str | None) -> str:
        from botocore.exceptions import ClientError

        client = await self._client_for_loop()
        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        try:
            response = await client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=data,
                **{"ContentType": "application/json", **self.put_kwargs},
                **condition,
            )
        except ClientError as exc:
            if _error_code(exc) in _CONFLICT_CODES:
                state = "exists already" if expected is None else "changed since it was read"
                raise RegistryConflictError(f"registry {self.uri} {state}") from None
            raise self._error("write", exc) from None
        except Exception as exc:
            raise self._error("write", exc) from None
        return str(response["ETag"])

    async def _delete(self) -> None:
        client = await self._client_for_loop()
        try:
            await client.delete_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            raise self._error("delete", exc) from None

    def _error(self, action: str, exc: Exception) -> RegistryError:
        from botocore.exceptions import ClientError, NoCredentialsError

        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            if code == "NoSuchBucket":
                reason = f"bucket '{self.bucket}' does not exist"
            else:
                message = exc.response.get("Error", {}).get("Message", "")
                reason = f"{code}: {message}" if message else code
        elif isinstance(exc, NoCredentialsError):
            reason = "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        else:
            reason = str(exc) or type(exc).__name__
        return RegistryError(f"cannot {action} registry {self.uri}{where}: {reason}")


def _error_code(exc: Any) -> str:
    error = exc.response.get("Error", {})
    code = error.get("Code")
    if code:
        return str(code)
    return str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
