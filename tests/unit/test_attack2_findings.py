"""Hostile review of the blue/green move on the fakes: each test failed before its fix."""

from __future__ import annotations

from typing import Any

import pytest

from flagservice.cache_aside import CacheAside
from flagservice.cache_move import warm_cache
from flagservice.errors import CacheUnavailableError
from flagservice.flags.model import StoredFlag
from flagservice.ports import Guarded
from flagservice.service import FlagService
from tests.fakes import InMemoryFlagCache, InMemoryFlagRepository
from tests.unit.test_dual_cache import put

FLAGS = 120


class CutShortCache(InMemoryFlagCache):
    """A cache whose warm step is cut short after `fills` fills (the function's timeout, in the fake)."""

    def __init__(self, fills: int) -> None:
        super().__init__()
        self.fills_left: int | None = fills

    def fill(self, key: str, flag: StoredFlag | None, **guard: Any) -> Guarded:
        if self.fills_left is not None:
            if self.fills_left == 0:
                raise CacheUnavailableError("cut short")
            self.fills_left -= 1
        return super().fill(key, flag, **guard)


def test_a_warm_step_cut_short_is_continued_when_run_again_not_started_over() -> None:
    """The warm step of an environment too large for one call (the function's 10 s timeout) must converge
    over several calls; one that refills every flag from the first on each call never finishes."""
    # Given flags in PostgreSQL and a warm step of the new cache cut short halfway
    repo = InMemoryFlagRepository()
    old = FlagService(repo, reads=CacheAside(repo, InMemoryFlagCache()))
    for i in range(FLAGS):
        put(old, f"f{i:03d}")
    new = CutShortCache(fills=FLAGS // 2)
    with pytest.raises(CacheUnavailableError):
        warm_cache(repo, new)

    # When it is run again, with nothing in its way
    new.fills_left = None
    report = warm_cache(repo, new)

    # Then it fills only the half the first call did not, and nothing is behind
    assert (report.stored, report.behind) == (FLAGS - FLAGS // 2, [])
    assert report.present == FLAGS // 2
