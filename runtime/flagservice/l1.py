"""The in-process (L1) cache: answers without a Redis round trip, never wrong for long.

Every entry remembers the environment revision it was loaded under. The whole cache is valid while
that revision is current: it is revalidated (one small Redis read, or for free with any other Redis
read) at most `revalidate_after` seconds after its last validation, and cleared when the revision
moved. An entry is never served older than `max_age` seconds, whatever the revision says. A frozen
Lambda container thaws with an old validation time, so its first request revalidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

V = TypeVar("V")
REVALIDATE_AFTER = 0.25


@dataclass
class _Slot(Generic[V]):
    value: V
    loaded_at: float


@dataclass
class L1Cache(Generic[V]):
    max_age: float
    revalidate_after: float = REVALIDATE_AFTER
    clock: Callable[[], float] = time.monotonic
    max_entries: int = 10_000
    revision: int | None = None
    _validated_at: float = float("-inf")
    _slots: dict[str, _Slot[V]] = field(default_factory=dict)

    def get(self, key: str) -> tuple[bool, V | None]:
        """(found, value) for an entry young enough to serve; it may still need `validated()` first."""
        slot = self._slots.get(key)
        if slot is None or self.clock() - slot.loaded_at > self.max_age:
            return False, None
        return True, slot.value

    @property
    def needs_validation(self) -> bool:
        return self.clock() - self._validated_at > self.revalidate_after

    def observe(self, revision: int | None) -> None:
        """The revision Redis holds now (from any read): keep the entries if unchanged, else drop them."""
        if revision is None or revision != self.revision:
            self._slots.clear()
            self.revision = revision
        self._validated_at = self.clock()

    def put(self, key: str, value: V) -> None:
        if self.revision is None:
            return  # nothing to validate against: do not keep it
        if len(self._slots) >= self.max_entries:
            self._slots.clear()
        self._slots[key] = _Slot(value, self.clock())

    def clear(self) -> None:
        """Forget everything (Redis lost: nothing can be validated)."""
        self._slots.clear()
        self.revision = None
        self._validated_at = float("-inf")

    def __len__(self) -> int:
        return len(self._slots)
