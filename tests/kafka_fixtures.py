"""Pytest fixtures for tests that need a real Kafka broker (see kafka_service.py).

tests/conftest.py re-exports `kafka_broker` so any test can ask for it by name; until then a test
module imports it directly (`from kafka_fixtures import kafka_broker`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kafka_service import running_kafka_broker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """Bootstrap address ("127.0.0.1:<port>") of one broker shared by the whole test session.

    Session-scoped because a start costs ~5 s; tests stay independent by using their own topic
    and group names. A test that must stop or restart Kafka starts its own broker with
    `kafka_service.running_kafka_broker()` instead. Start-up failure raises, never skips.
    """
    with running_kafka_broker() as broker:
        yield broker.bootstrap_servers
