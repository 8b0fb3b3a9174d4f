"""What the readers saw of each round's writes: per path, reads older than a write acknowledged > grace before."""

from __future__ import annotations

from typing import Any

from bench.common.load import Read, Write
from bench.common.measure import reader_delay, stale_reads
from bench.common.readers import PATHS, PathReader, reply_summary
from bench.consistency.ordering.races import Round


def _race_writes(rounds: list[Round]) -> list[tuple[Write, float]]:
    """Every acknowledged race write, with the start of the next round (its reads are judged until then)."""
    ends = [one.start for one in rounds[1:]] + [float("inf")]
    return [(write, end) for one, end in zip(rounds, ends, strict=True)
            for write in (one.race.first, one.race.second) if write.acked]  # fmt: skip


def _verdict(write: Write, reads: list[Read], grace: float) -> tuple[int, int, float | None]:
    """Of one reader's reads of the written flag: older ones started > grace after the 2xx, of them those
    showing it enabled, and the delay until this reader served the write (common/measure.py)."""
    assert write.version is not None
    late = [r for r in reads if r.start > write.end + grace and r.version is not None and r.version < write.version]
    return stale_reads(write, late, grace=grace), sum(1 for r in late if r.enabled), reader_delay(write, reads)


def path_rows(rounds: list[Round], readers: list[PathReader], grace: float) -> dict[str, dict[str, Any]]:
    """Per path: requests, failures, latency, reads > grace after a race write's 2xx that were older, worst delay."""
    rows = {}
    for path in PATHS:
        mine = [reader for reader in readers if reader.path == path]
        verdicts = [_verdict(write, [r for r in reader.reads if r.key == write.key and r.start < end], grace)
                    for write, end in _race_writes(rounds) for reader in mine]  # fmt: skip
        delays = [delay for _, _, delay in verdicts]
        worst = None if None in delays else max((d for d in delays if d is not None), default=None)
        rows[path] = {**reply_summary([reply for reader in mine for reply in reader.replies]),
                      "stale_after_grace": sum(v[0] for v in verdicts),
                      "shown_enabled_after_grace": sum(v[1] for v in verdicts),
                      "not_converged": delays.count(None), "worst_delay_s": worst}  # fmt: skip
    return rows


def race_summary(one: Round) -> dict[str, Any]:
    race = one.race
    return {
        "engaged": race.engaged is not None,
        "first": {"status": race.first.status, "version": race.first.version,
                  "answered_after_release_s": round(race.first.end - race.released, 4)},
        "second": {"status": race.second.status, "version": race.second.version,
                   "answered_in_s": round(race.second.end - race.second.start, 4)},
        "second_answered_while_first_held": race.second_answered_while_held,
        "held_s": None if race.engaged is None else round(race.released - race.engaged, 4),
    }  # fmt: skip
