"""The full listing of every flag that bulk reads need while Redis cannot answer, reused within a process.

While Redis is down or distrusted, every bulk evaluation (conditional or not) needs every flag from
PostgreSQL. This keeps the last listing (revision, flags) a process read and serves it again only after
PostgreSQL said its committed revision is still the same (one tiny statement, on the same connection and
under the same deadline as the listing it may replace): every write moves that revision at commit, so an
unchanged revision means the listing is exactly the committed state *now*, never older than any write.
A write in this process clears it (read-your-writes without asking). Memory: one listing per process,
of at most the flags one bulk answer holds.

Concurrent identical reads in one process (threads of an embedder) share one database call (single
flight). A read joins a call only if that call began at most JOIN_SECONDS before the read did, so its
answer reflects the database as of at most that long before the read: a write acknowledged by another
container 1 s before the read is in it. A joining read waits for the call at most FOLLOW_SECONDS, what it
would have waited for the process's one pooled connection anyway; the lock is never held across I/O.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from flagservice.errors import StoreUnavailableError
from flagservice.flags.model import StoredFlag

JOIN_SECONDS = 0.25  # as old as an L1 copy may be between revalidations (DESIGN.md, Propagation)
FOLLOW_SECONDS = 1.0  # the pool's wait for the process's one connection (postgres_repository.POOL_WAIT)
Listing = tuple[int, list[StoredFlag]]


class ListingSource(Protocol):
    """What the reuse needs of the FlagRepository."""

    def list_if_changed(self, since: int | None, *, limit: int) -> tuple[int, list[StoredFlag] | None]: ...


@dataclass
class _Flight:
    """One database call that concurrent reads share."""

    generation: int
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    listing: Listing | None = None
    error: BaseException | None = None


class ListingReuse:
    """The last listing of this process, served again while PostgreSQL's revision has not moved."""

    def __init__(self, *, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()  # guards the fields below; never held across a database call
        self._held: Listing | None = None
        self._flight: _Flight | None = None
        self._generation = 0  # moved by every local write: nothing read before it is kept or joined after it

    def clear(self) -> None:
        """A write committed in this process: later reads list again (they never join an earlier call)."""
        with self._lock:
            self._held, self._flight = None, None
            self._generation += 1

    def current(self, source: ListingSource, *, at_least: int | None = None) -> Listing:
        """Every live flag and their revision, as of this call or at most JOIN_SECONDS before it, and never
        older than `at_least` (an event's revision: its write committed before this read began, so a call
        begun since is new enough; one joined earlier may have read before that commit).
        Raises StoreUnavailableError when PostgreSQL cannot say (the caller's STALE fallback)."""
        began = time.monotonic()
        listing = self._shared(source, *self._join())
        if at_least is not None and listing[0] < at_least:
            listing = self._shared(source, *self._join(not_before=began))
        return listing

    def _shared(self, source: ListingSource, flight: _Flight, leads: bool) -> Listing:
        """The answer of `flight`, asking the database first if this read leads it."""
        if leads:
            self._lead(flight, source)
        elif not flight.done.wait(FOLLOW_SECONDS):
            raise StoreUnavailableError("the database did not answer a concurrent listing in time")
        if isinstance(flight.error, StoreUnavailableError):
            raise StoreUnavailableError("the database could not list the flags") from flight.error
        if flight.error is not None:  # a bug, not an outage: the leader raised it as it was (a 500)
            raise RuntimeError("a concurrent listing failed") from flight.error
        assert flight.listing is not None
        return flight.listing

    def _join(self, *, not_before: float = float("-inf")) -> tuple[_Flight, bool]:
        """The call in flight if it began recently enough (and not before `not_before`), else a new one that
        this read leads."""
        with self._lock:
            flight = self._flight
            if flight is not None and max(not_before, time.monotonic() - JOIN_SECONDS) <= flight.started:
                return flight, False
            self._flight = _Flight(self._generation)
            return self._flight, True

    def _lead(self, flight: _Flight, source: ListingSource) -> None:
        """Ask PostgreSQL (the listing again only if its revision moved), keep the answer unless a local write
        came in meanwhile, and hand it (or the error) to every read that joined."""
        with self._lock:
            held = self._held
        try:
            revision, flags = source.list_if_changed(held[0] if held is not None else None, limit=self._limit)
            flight.listing = held if flags is None and held is not None else (revision, flags or [])
            self._keep(flight)
        except BaseException as exc:
            flight.error = exc
            if not isinstance(exc, StoreUnavailableError):
                raise
        finally:
            with self._lock:
                if self._flight is flight:
                    self._flight = None
            flight.done.set()

    def _keep(self, flight: _Flight) -> None:
        with self._lock:
            if flight.generation == self._generation:
                self._held = flight.listing
