"""The registry as one local file, written with compare-and-swap.

Writers serialize on an OS lock (`flock` on the sibling `<name>.lock` file), compare the
content hash of what is stored with the version they read, then write a temporary file in the
same directory, fsync it, `os.replace` it over the registry and fsync the directory. Readers
take no lock: `os.replace` is atomic, so they see the old document or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from repast.errors import RegistryConflictError, RegistryError

__all__ = ["FileRegistryStore"]


def _token(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileRegistryStore:
    """`RegistryStore` for a local path; parent directories are created on the first write."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"FileRegistryStore({str(self.path)!r})"

    def describe(self) -> str:
        return str(self.path)

    def read(self) -> tuple[bytes, str] | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RegistryError(f"cannot read registry {self.path}: {exc.strerror}") from None
        return data, _token(data)

    def write(self, data: bytes, expected: str | None) -> str:
        with self._locked():
            current = self.read()
            current_token = current[1] if current is not None else None
            if current_token != expected:
                state = "exists already" if expected is None else "changed since it was read"
                raise RegistryConflictError(f"registry {self.path} {state}")
            self._replace(data)
        return _token(data)

    def delete(self) -> None:
        if not self.path.parent.exists():
            return
        with self._locked():
            try:
                self.path.unlink()
            except FileNotFoundError:
                return
            except OSError as exc:
                raise RegistryError(f"cannot delete registry {self.path}: {exc.strerror}") from None
            self._fsync_dir()
        # The lock file stays: removing it while another process waits on it would let a third
        # process lock a new file and run concurrently with the waiter.

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise RegistryError(
                f"cannot lock registry {self.path} ({exc.filename}): {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _replace(self, data: bytes) -> None:
        try:
            mode = self.path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        tmp_path: str | None = None
        try:
            fd, tmp_path = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fchmod(tmp.fileno(), mode)
                os.fsync(tmp.fileno())
            os.replace(tmp_path, self.path)
            tmp_path = None
            self._fsync_dir()
        except OSError as exc:
            raise RegistryError(f"cannot write registry {self.path}: {exc.strerror}") from None
        finally:
            if tmp_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_path)

    def _fsync_dir(self) -> None:
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
