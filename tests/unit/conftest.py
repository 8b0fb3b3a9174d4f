"""Unit tier: no network at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytest_socket

from tests.fakes import InMemoryFlagCache, InMemoryFlagRepository


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    pytest_socket.disable_socket(allow_unix_socket=False)
    yield
    pytest_socket.enable_socket()


@pytest.fixture
def repo() -> InMemoryFlagRepository:
    return InMemoryFlagRepository()


@pytest.fixture
def cache() -> InMemoryFlagCache:
    return InMemoryFlagCache()
