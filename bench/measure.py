"""How stale, how fast, how many: the numbers both harnesses report, defined once.

Propagation delay of one acknowledged write, for one reader:

    Let `ack` be the time the write's 2xx answer was fully received, and `v` the version it stored.
    Among this reader's reads of the flag that STARTED after `ack`, take those that still returned a
    version older than `v`; the delay is the END time of the last of them minus `ack` (0 when there
    is none). The reader must also have caught up: its last read after `ack` returned `v` or newer,
    else the delay is None (not converged within the observation).

A write's delay is the largest over all readers (None if any reader did not converge). Because a
read's end is used, the delay includes that read's own duration: it overstates, never understates.

A frozen reader (SIGSTOP, as Lambda freezes an idle container) cannot answer at all while frozen,
so for it: a write acknowledged while it was frozen is measured from the thaw, and a read that was
in flight across the freeze is ignored (it may have been answered before the freeze, and delivered
after it). Its reads after the thaw are measured like any other.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

from bench.load import Read, Write

Window = tuple[float, float]  # (frozen at, thawed at)
ReaderId = TypeVar("ReaderId", bound=Hashable)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: the value reported was observed)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, max, p99, median of `values` (seconds), rounded to the millisecond."""

    def ms(value: float) -> float | None:
        return None if math.isnan(value) else round(value, 4)

    return {
        "count": len(values),
        "max": ms(max(values, default=math.nan)),
        "p99": ms(percentile(values, 99)),
        "median": ms(percentile(values, 50)),
    }


def _reference(ack: float, windows: Iterable[Window]) -> float:
    for frozen, thawed in windows:
        if frozen <= ack < thawed:
            return thawed
    return ack


def _usable(read: Read, windows: Iterable[Window]) -> bool:
    return not any(read.start < thawed and read.end > frozen for frozen, thawed in windows)


def reader_delay(write: Write, reads: Sequence[Read], windows: Sequence[Window] = ()) -> float | None:
    """The module docstring's delay for one reader; `reads` are that reader's, in the order it made them."""
    assert write.version is not None
    ref = _reference(write.end, windows)
    after = [r for r in reads if r.key == write.key and r.start > ref and r.version is not None and _usable(r, windows)]
    if not after or after[-1].version < write.version:  # type: ignore[operator]
        return None
    stale = [r.end for r in after if r.version < write.version]  # type: ignore[operator]
    return max(stale, default=ref) - ref


def write_delay(
    write: Write, readers: Mapping[ReaderId, Sequence[Read]], windows: Mapping[ReaderId, Sequence[Window]]
) -> float | None:
    """The largest reader delay of one write; None if any reader never caught up (readers and windows share ids)."""
    delays = [reader_delay(write, reads, windows.get(index, ())) for index, reads in readers.items()]
    return None if any(d is None for d in delays) else max(d for d in delays if d is not None)


def stale_reads(write: Write, reads: Iterable[Read], *, grace: float) -> int:
    """Reads that started more than `grace` seconds after the ack and still returned an older version."""
    assert write.version is not None
    return sum(
        1 for r in reads
        if r.key == write.key and r.start > write.end + grace and r.version is not None and r.version < write.version
    )  # fmt: skip
