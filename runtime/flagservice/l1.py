"""The in-process (L1) cache: answers without a Redis round trip, never wrong for long.

Every entry belongs to the change signal it was loaded under. The whole cache is valid while that
signal is current: it is revalidated (one small Redis read, or for free with any other Redis read) at
most `revalidate_after` seconds after its last validation, and cleared when the signal moved. An entry
is never served older than `max_age` seconds, whatever the signal says. Ages are measured by the wall
clock: a frozen Lambda container's monotonic clock may stand still while it is frozen, so it could
thaw believing its copies young; by the wall clock its first request after a gap revalidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
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
    clock: Callable[[], float] = field(default=lambda: time.time())  # looked up per call: the wall clock
    max_entries: int = 10_000
    signal: Hashable | None = None
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

    def observe(self, signal: Hashable | None) -> None:
        """The signal Redis holds now (from any read): keep the entries if unchanged, else drop them."""
        if signal is None or signal != self.signal:
            self._slots.clear()
            self.signal = signal
        self._validated_at = self.clock()

    def put(self, key: str, value: V) -> None:
        if self.signal is None:
            return  # nothing to validate against: do not keep it
        if len(self._slots) >= self.max_entries:
            self._slots.clear()
        self._slots[key] = _Slot(value, self.clock())

    def clear(self) -> None:
        """Forget everything (Redis lost: nothing can be validated)."""
        self._slots.clear()
        self.signal = None
        self._validated_at = float("-inf")

    def __len__(self) -> int:
        return len(self._slots)
