"""Repast's typed errors out of Spark's Python workers.

An exception raised in a Python worker (a bucket's kernel, say) reaches the driver as Spark's
`PythonException`, whose text ends with the worker's traceback. When its last exception is one
of `repast.errors`' (or the Rust core's `RepastError`), the driver raises that type again with
its message, so a caller catches `OfflineStoreError` from a Spark job as from the file store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from repast import errors
from repast.errors import RepastError

__all__ = ["first_line", "typed_worker_errors", "worker_error"]

T = TypeVar("T")

_RAISED = re.compile(r"^repast\.(?:errors|_core)\.(\w+): (.*)$", re.MULTILINE)


def worker_error(exc: BaseException) -> RepastError | None:
    """The Repast error a Python worker raised, from Spark's exception; None for others."""
    found = _RAISED.findall(str(exc))
    if not found:
        return None
    name, message = found[-1]
    kind = getattr(errors, name, None)
    if not isinstance(kind, type) or not issubclass(kind, RepastError):
        return None
    return kind(message)


def typed_worker_errors(run: Callable[[], T]) -> T:
    """`run()`, with a Repast error raised in a Python worker raised again as its own type."""
    try:
        return run()
    except RepastError:
        raise
    except Exception as exc:
        typed = worker_error(exc)
        if typed is None:
            raise
        raise typed from exc


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (Spark's run to pages), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
