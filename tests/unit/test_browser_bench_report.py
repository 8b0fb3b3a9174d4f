"""bench/browser_propagation.py's verdict and README text on made-up results (tests/browser runs the flow)."""

from __future__ import annotations

from typing import Any

from bench import browser_propagation as bench


def results(delays: list[float | None], catch_up: float | None = 0.2) -> dict[str, Any]:
    flips = [bench.Flip(True, 100.0, None if delay is None else 100.0 + delay) for delay in delays]
    recovery = {"acked": 1.0, "back": 3.0, "seen": None if catch_up is None else 3.0 + catch_up,
                "seen_before_back": False, "catch_up": catch_up}  # fmt: skip
    return {
        "generated_at": "2026-01-01T00:00:00Z", "form": "short", "target_seconds": 1.0, "bound_seconds": 5.0,
        "plan": {"down": 1.0}, "flips": bench.flip_summary(flips), "restart": recovery, "outage": dict(recovery),
        "machine": {"cpus": 2, "browser": "Chromium 1", "redis": "7", "postgres": "15"},
        "packages": {"@openfeature/web-sdk": "1.10.0", "@openfeature/ofrep-web-provider": "0.4.3"},
    }  # fmt: skip


def test_every_flip_shown_quickly_is_no_shortfall() -> None:
    assert bench.shortfalls(results([0.1] * 50)) == []


def test_a_flip_never_shown_a_slow_p99_and_a_late_recovery_are_shortfalls() -> None:
    missed = bench.shortfalls(results([0.1] * 98 + [None, 1.5], catch_up=None))

    assert any("never shown" in line for line in missed)
    assert any(line.startswith("p99") for line in missed)
    assert any(line.startswith("restart") for line in missed) and any(line.startswith("outage") for line in missed)


def test_the_readme_section_shows_p50_p99_and_max() -> None:
    text = bench.section(results([0.05, 0.1, 0.2]))

    assert "| 3 | 3 | 100 ms | 200 ms | 200 ms | yes | yes |" in text
    assert "`@openfeature/ofrep-web-provider` 0.4.3" in text
    assert bench.section(None).startswith("_No results yet")
