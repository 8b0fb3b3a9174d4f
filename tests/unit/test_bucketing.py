"""Bucketing is flagd's fractional v2 (CONTRACT.md section 3), checked against data our code did not produce.

Three independent sources: flagd-testbed's vectors (tests/vectors/flagd_fractional_v2.json, committed
with their commit), a MurmurHash3 x86 32-bit written here from the algorithm (not calling mmh3) and
checked against published values, and properties of the split (range, totality, distribution, monotony).
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flagservice.flags.bucketing import bucket, pick_variant
from flagservice.flags.evaluation import SPLIT, evaluate_flag
from flagservice.flags.model import FlagDefinition, RolloutEntry

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "flagd_fractional_v2.json").read_text("utf-8"))

# ---------------------------------------------------------------------------------------------------------------
# An independent MurmurHash3 x86 32-bit (Austin Appleby's MurmurHash3_x86_32), written from the algorithm.
# ---------------------------------------------------------------------------------------------------------------

_MASK = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _scramble(k: int) -> int:
    return (_rotl((k * 0xCC9E2D51) & _MASK, 15) * 0x1B873593) & _MASK


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    h = seed & _MASK
    body = len(data) // 4 * 4
    for i in range(0, body, 4):
        h ^= _scramble(int.from_bytes(data[i : i + 4], "little"))
        h = (_rotl(h, 13) * 5 + 0xE6546B64) & _MASK
    if len(data) > body:
        h ^= _scramble(int.from_bytes(data[body:], "little"))
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def reference_bucket(flag_key: str, targeting_key: str) -> int:
    return (murmur3_x86_32((flag_key + targeting_key).encode("utf-8")) * 100) >> 32


# Published MurmurHash3_x86_32 values (SMHasher's verification inputs as commonly tabulated).
KNOWN_HASHES = [
    (b"", 0, 0),
    (b"", 1, 0x514E28B7),
    (b"", 0xFFFFFFFF, 0x81F16F39),
    (b"\x00", 0, 0x514E28B7),
    (b"\x00\x00", 0, 0x30F4C306),
    (b"\x00\x00\x00", 0, 0x85F0B427),
    (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
    (b"\xff\xff\xff\xff", 0, 0x76293B50),
    (b"\x21", 0, 0x72661CF4),
    (b"\x21\x43", 0, 0xA0F7B07A),
    (b"\x21\x43\x65", 0, 0x7E4A8634),
    (b"\x21\x43\x65\x87", 0, 0xF55B516B),
    (b"\x21\x43\x65\x87", 0x5082EDEE, 0x2362F9DE),
    (b"a", 0x9747B28C, 0x7FA09EA6),
    (b"ab", 0x9747B28C, 0x74875592),
    (b"abc", 0x9747B28C, 0xC84A62DD),
    (b"abcd", 0x9747B28C, 0xF0478627),
    (b"aaaa", 0x9747B28C, 0x5A97808A),
    (b"Hello, world!", 0x9747B28C, 0x24884CBA),
    ("ππππππππ".encode(), 0x9747B28C, 0xD58063C1),
    (b"a" * 256, 0x9747B28C, 0x37405BDC),
    (b"abc", 0, 0xB3DD93FA),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 0, 0xEE925B90),
    (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
]


@pytest.mark.parametrize(("data", "seed", "expected"), KNOWN_HASHES)
def test_reference_murmur3_matches_published_values(data: bytes, seed: int, expected: int) -> None:
    assert murmur3_x86_32(data, seed) == expected


@pytest.mark.parametrize("entry", VECTORS["hashes"]["values"], ids=lambda e: e["text"])
def test_reference_murmur3_matches_flagd_testbed_hashes(entry: dict[str, Any]) -> None:
    assert murmur3_x86_32(entry["text"].encode()) == entry["hash"]


def _fixed_keys(count: int, seed: int) -> list[str]:
    """Deterministic targeting keys of mixed shapes: ids, e-mails, UUIDs and non-ASCII text."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@éßüπ中文😀"
    shapes = [
        lambda: f"user-{rng.randrange(10**9)}",
        lambda: f"{rng.randrange(10**6)}@example.com",
        lambda: str(uuid.UUID(int=rng.getrandbits(128))),
        lambda: "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 24))),
    ]
    return [rng.choice(shapes)() for _ in range(count)]


def test_bucket_agrees_with_the_reference_over_many_keys() -> None:
    keys = _fixed_keys(3000, seed=1)

    mismatches = [
        (flag_key, key)
        for flag_key in ("checkout-v2", "a", "x" * 128)
        for key in keys
        if bucket(flag_key, key) != reference_bucket(flag_key, key)
    ]

    assert mismatches == []


@given(st.text(max_size=40), st.text(max_size=40))
def test_bucket_agrees_with_the_reference_for_any_text(flag_key: str, targeting_key: str) -> None:
    assert bucket(flag_key, targeting_key) == reference_bucket(flag_key, targeting_key)


def test_a_lone_surrogate_is_hashed_as_the_replacement_character_not_an_error() -> None:
    assert bucket("flag", "a\ud800b") == reference_bucket("flag", "a\ufffdb")


# ---------------------------------------------------------------------------------------------------------------
# flagd-testbed vectors (tests/vectors/README.md says where they come from).
# ---------------------------------------------------------------------------------------------------------------


def test_vectors_name_their_source_commit() -> None:
    source = VECTORS["source"]

    assert source["repository"] == "open-feature/flagd-testbed"
    assert len(source["commit"]) == 40 and int(source["commit"], 16) >= 0
    assert len(VECTORS["cases"]) == 20


def _case_id(case: dict[str, Any]) -> str:
    return f"{case['testbedFlag']}:{case['flagKey']}+{case['targetingKey']}"


def _rollout(case: dict[str, Any]) -> list[RolloutEntry]:
    return [RolloutEntry(**entry) for entry in case["rollout"]]


@pytest.mark.parametrize("case", VECTORS["cases"], ids=_case_id)
def test_pick_variant_matches_flagd(case: dict[str, Any]) -> None:
    chosen = pick_variant(_rollout(case), bucket(case["flagKey"], case["targetingKey"]))

    assert chosen == case["expectedVariant"]


def _flag_from_case(case: dict[str, Any], *, in_rule: bool) -> FlagDefinition:
    split: dict[str, Any] = {"rules": [{"rollout": case["rollout"]}]} if in_rule else {"rollout": case["rollout"]}
    return FlagDefinition.model_validate(
        {
            "key": case["flagKey"],
            "enabled": True,
            "variants": case["variants"],
            "defaultVariant": case["defaultVariant"],
            "offVariant": case["defaultVariant"],
            **split,
        }
    )


@pytest.mark.parametrize("in_rule", [False, True], ids=["top-level", "rule"])
@pytest.mark.parametrize("case", VECTORS["cases"], ids=_case_id)
def test_evaluate_flag_splits_like_flagd(case: dict[str, Any], in_rule: bool) -> None:
    flag = _flag_from_case(case, in_rule=in_rule)

    result = evaluate_flag(flag, {"targetingKey": case["targetingKey"]})

    assert (result.value, result.variant, result.reason) == (case["expectedValue"], case["expectedVariant"], SPLIT)


@pytest.mark.parametrize("entry", VECTORS["hashes"]["values"] + VECTORS["buckets"]["values"], ids=lambda e: e["text"])
def test_bucket_matches_flagd_bucket_values(entry: dict[str, Any]) -> None:
    text = entry["text"]

    assert bucket(text[:1], text[1:]) == entry["bucket"]


@pytest.mark.parametrize("entry", VECTORS["hashes"]["values"], ids=lambda e: e["text"])
def test_runtime_mmh3_matches_flagd_testbed_hashes(entry: dict[str, Any]) -> None:
    import mmh3

    assert mmh3.hash(entry["text"], 0, signed=False) == entry["hash"]


# ---------------------------------------------------------------------------------------------------------------
# pick_variant: exact ranges.
# ---------------------------------------------------------------------------------------------------------------


def _entries(*weights: int) -> list[RolloutEntry]:
    return [RolloutEntry(variant=f"v{i}", weight=w) for i, w in enumerate(weights)]


@pytest.mark.parametrize(
    ("weights", "bucket_", "expected"),
    [
        ((30, 70), 0, "v0"),
        ((30, 70), 29, "v0"),
        ((30, 70), 30, "v1"),
        ((30, 70), 99, "v1"),
        ((0, 100), 0, "v1"),
        ((100, 0), 99, "v0"),
        ((50, 0, 50), 50, "v2"),
        ((25, 25, 25, 25), 75, "v3"),
        ((1, 98, 1), 99, "v2"),
    ],
)
def test_variants_take_consecutive_ranges_in_listed_order(
    weights: tuple[int, ...], bucket_: int, expected: str
) -> None:
    assert pick_variant(_entries(*weights), bucket_) == expected


@pytest.mark.parametrize("bucket_", [-1, 100, 1000])
def test_a_bucket_outside_the_rollout_is_refused(bucket_: int) -> None:
    with pytest.raises(ValueError):
        pick_variant(_entries(40, 60), bucket_)


def _weights_from_cuts(cuts: list[int]) -> list[int]:
    edges = [0, *sorted(cuts), 100]
    return [high - low for low, high in zip(edges, edges[1:], strict=False)]


# Cut points in [0, 100] give weights from 0 that sum to 100, zeros included.
weights_summing_to_100 = st.lists(st.integers(min_value=0, max_value=100), max_size=8).map(_weights_from_cuts)


@given(weights_summing_to_100)
def test_pick_variant_is_total_and_gives_each_variant_exactly_its_weight_in_buckets(weights: list[int]) -> None:
    rollout = _entries(*weights)

    picks = [pick_variant(rollout, b) for b in range(100)]

    assert picks == [pick_variant(rollout, b) for b in range(100)]
    assert Counter(picks) == Counter({f"v{i}": w for i, w in enumerate(weights) if w})


@given(st.text(max_size=30), st.text(max_size=30))
def test_bucket_is_in_range_and_deterministic(flag_key: str, targeting_key: str) -> None:
    first = bucket(flag_key, targeting_key)

    assert 0 <= first < 100
    assert bucket(flag_key, targeting_key) == first


# ---------------------------------------------------------------------------------------------------------------
# Distribution and monotony over 10,000 fixed, seeded keys.
# ---------------------------------------------------------------------------------------------------------------

TEN_THOUSAND_KEYS = _fixed_keys(10_000, seed=20240601)


@pytest.mark.parametrize("flag_key", ["checkout-v2", "new-pricing"])
@pytest.mark.parametrize(
    "weights",
    [(50, 50), (10, 90), (1, 99), (25, 25, 25, 25), (33, 33, 34), (5, 15, 30, 50), (20, 0, 80), (70, 10, 10, 5, 5)],
)
def test_distribution_is_within_one_and_a_half_points_of_each_weight(flag_key: str, weights: tuple[int, ...]) -> None:
    rollout = _entries(*weights)

    counts = Counter(pick_variant(rollout, bucket(flag_key, key)) for key in TEN_THOUSAND_KEYS)

    shares = {f"v{i}": 100 * counts[f"v{i}"] / len(TEN_THOUSAND_KEYS) for i in range(len(weights))}
    assert all(abs(shares[f"v{i}"] - w) <= 1.5 for i, w in enumerate(weights)), shares


def _two_way(a_weight: int) -> list[RolloutEntry]:
    return [RolloutEntry(variant="a", weight=a_weight), RolloutEntry(variant="b", weight=100 - a_weight)]


@pytest.mark.parametrize("grower", ["a", "b"])
@pytest.mark.parametrize(("smaller", "larger"), [(0, 1), (10, 20), (49, 51), (50, 90), (99, 100), (0, 100)])
def test_growing_one_weight_only_moves_users_toward_it(grower: str, smaller: int, larger: int) -> None:
    other = "b" if grower == "a" else "a"
    before, after = (
        (_two_way(smaller), _two_way(larger)) if grower == "a" else (_two_way(100 - smaller), _two_way(100 - larger))
    )
    buckets = [bucket("checkout-v2", key) for key in TEN_THOUSAND_KEYS]

    moves = Counter((pick_variant(before, b), pick_variant(after, b)) for b in buckets)

    assert moves[(grower, other)] == 0
    assert moves[(other, grower)] > 0


@given(st.integers(0, 100), st.integers(0, 100), st.text(max_size=20))
def test_two_variant_split_is_monotonic_for_any_user_and_weights(w1: int, w2: int, targeting_key: str) -> None:
    low, high = sorted((w1, w2))
    b = bucket("flag", targeting_key)

    before, after = pick_variant(_two_way(low), b), pick_variant(_two_way(high), b)

    # a grows from low to high (b shrinks): nobody leaves a; read backwards, b grows and nobody leaves b.
    assert (before, after) != ("a", "b")
