"""The dead-letter topic: messages a consumer cannot store, kept with why.

Each rejected message is produced to `<topic>.dlq` (the template is configurable) with its
original key, value and headers, plus `repast.*` headers naming the error, the view and
where it came from. Sending waits for the broker's acknowledgement, so a consumer commits
past a bad message only once it sits in the dead-letter topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_TOPIC_TEMPLATE", "DeadLetterQueue", "Rejection"]

DEFAULT_TOPIC_TEMPLATE = "{topic}.dlq"
# Kafka's default max.request.size is 1 MiB; an error text is kept far below that.
_MAX_ERROR_BYTES = 4096


@dataclass(frozen=True)
class Rejection:
    """Why one message was not stored: a short `reason` (a metric label) and the detail."""

    reason: str
    """`not_json`, `missing_join_key`, `wrong_type`, `bad_timestamp` or `write_failed`."""
    error: str


class DeadLetterQueue:
    """Sends rejected records through an `AIOKafkaProducer` (started by the caller)."""

    def __init__(self, producer: Any, topic_template: str = DEFAULT_TOPIC_TEMPLATE) -> None:
        if "{topic}" not in topic_template:
            raise ValueError(
                f"dead-letter topic template {topic_template!r} must contain '{{topic}}'"
            )
        self.producer = producer
        self.topic_template = topic_template

    def topic_for(self, topic: str) -> str:
        return self.topic_template.format(topic=topic)

    @staticmethod
    def headers(record: Any, view: str, rejection: Rejection) -> list[tuple[str, bytes]]:
        """The record's own headers, then where it came from and why it was rejected."""
        return [
            *(record.headers or ()),
            ("repast.error", rejection.error.encode()[:_MAX_ERROR_BYTES]),
            ("repast.reason", rejection.reason.encode()),
            ("repast.view", view.encode()),
            ("repast.topic", record.topic.encode()),
            ("repast.partition", str(record.partition).encode()),
            ("repast.offset", str(record.offset).encode()),
            ("repast.timestamp", str(record.timestamp).encode()),
        ]

    async def send(
        self, view: str, records: Sequence[Any], rejections: Mapping[int, Rejection]
    ) -> int:
        """Produce `records[i]` for every `i` in `rejections`; returns when all are acknowledged."""
        if not rejections:
            return 0
        pending = []
        for i, rejection in sorted(rejections.items()):
            record = records[i]
            pending.append(
                await self.producer.send(
                    self.topic_for(record.topic),
                    value=record.value,
                    key=record.key,
                    headers=self.headers(record, view, rejection),
                )
            )
        await asyncio.gather(*pending)
        return len(pending)
