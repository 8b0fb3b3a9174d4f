"""The fault proxy's decisions (bench/common/faults.py), on a fake clock and with no sockets.

What each mode does to a chunk: when it leaves, whether it vanishes, whether the connection ends.
The proxy carrying these plans out over real sockets is tested in tests/integration/test_faultproxy.py.
"""

from __future__ import annotations

import pytest

from bench.common.faults import Direction, Fault, Mode, Pacer, Plan

NOW = 100.0


def plan(fault: Fault, size: int, *, direction: Direction = Direction.DOWN, pacer: Pacer | None = None) -> Plan:
    return (pacer or Pacer(direction)).plan(fault, 1, size, NOW)


def test_pass_forwards_a_chunk_at_once() -> None:
    assert plan(Fault(), 10) == Plan(slices=((NOW, 10),))


def test_delay_holds_each_chunk_for_the_delay() -> None:
    assert plan(Fault(Mode.DELAY, delay_ms=200), 10).slices == ((NOW + 0.2, 10),)


def test_a_delay_on_replies_leaves_commands_alone() -> None:
    fault = Fault(Mode.DELAY, delay_ms=200, direction=Direction.DOWN)

    assert plan(fault, 10, direction=Direction.UP).slices == ((NOW, 10),)
    assert plan(fault, 10, direction=Direction.DOWN).slices == ((NOW + 0.2, 10),)


def test_drop_discards_the_chunk_and_keeps_the_connection() -> None:
    dropped = plan(Fault(Mode.DROP), 10)

    assert dropped.dropped and not dropped.close and not dropped.reset


def test_reset_ends_the_connection_with_a_reset_in_both_directions() -> None:
    assert plan(Fault(Mode.RESET), 10, direction=Direction.UP).reset
    assert plan(Fault(Mode.RESET, direction=Direction.DOWN), 10, direction=Direction.UP).reset


def test_close_after_forwards_the_allowance_across_chunks_then_closes_mid_chunk() -> None:
    pacer, fault = Pacer(Direction.DOWN), Fault(Mode.CLOSE_AFTER, close_after_bytes=1000)

    first, second = pacer.plan(fault, 1, 600, NOW), pacer.plan(fault, 1, 600, NOW)

    assert (first.slices, first.close) == (((NOW, 600),), False)
    assert (second.slices, second.close) == (((NOW, 400),), True)


def test_a_new_mode_starts_its_byte_count_afresh() -> None:
    pacer, fault = Pacer(Direction.DOWN), Fault(Mode.CLOSE_AFTER, close_after_bytes=1000)
    pacer.plan(fault, 1, 900, NOW)

    assert pacer.plan(fault, 2, 900, NOW) == Plan(slices=((NOW, 900),))


def test_bandwidth_sends_small_slices_each_due_when_the_link_has_carried_it() -> None:
    slices = plan(Fault(Mode.BANDWIDTH, bytes_per_second=10_000), 2000).slices

    assert [count for _, count in slices] == [500] * 4
    assert [round(due - NOW, 3) for due, _ in slices] == [0.05, 0.1, 0.15, 0.2]


def test_bandwidth_queues_a_chunk_behind_the_previous_one() -> None:
    pacer, fault = Pacer(Direction.DOWN), Fault(Mode.BANDWIDTH, bytes_per_second=10_000)
    pacer.plan(fault, 1, 1000, NOW)

    ((due, count),) = pacer.plan(fault, 1, 500, NOW).slices

    assert (due, count) == (pytest.approx(NOW + 0.15), 500)


def test_lifting_the_limit_frees_the_link_at_once() -> None:
    pacer = Pacer(Direction.DOWN)
    pacer.plan(Fault(Mode.BANDWIDTH, bytes_per_second=10), 1, 1000, NOW)

    assert pacer.plan(Fault(), 2, 10, NOW).slices == ((NOW, 10),)


def test_faults_parse_from_the_control_channel() -> None:
    parsed = Fault.parse({"mode": "delay", "delay_ms": 200, "direction": "down"})

    assert parsed == Fault(Mode.DELAY, delay_ms=200, direction=Direction.DOWN)


@pytest.mark.parametrize(
    "spec",
    [{"mode": "slow"}, {"mode": "delay", "delay": 5}, {"mode": "delay", "delay_ms": -1}, {"mode": "bandwidth"}],
    ids=["unknown mode", "unknown field", "negative", "bandwidth without a rate"],
)
def test_a_malformed_fault_is_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Fault.parse(spec)
