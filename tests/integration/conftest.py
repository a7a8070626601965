"""Integration fixtures: a local HTTP replay server for the live sources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.replay_server import ReplayServer

HTTP_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "http"


@pytest.fixture
def replay_server() -> Iterator[ReplayServer]:
    """A replay server on 127.0.0.1 (random port) serving ``tests/fixtures/http``."""
    with ReplayServer(HTTP_FIXTURES) as server:
        yield server
