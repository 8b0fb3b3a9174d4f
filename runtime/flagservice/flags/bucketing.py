"""Percentage rollouts: flagd's `fractional` (v2) bucketing with its implicit key (CONTRACT.md section 3).

A user lands in the same variant here as in flagd: the bucket is
``(murmur3_x86_32(flag_key + targeting_key, seed=0) * 100) >> 32``, and variants take consecutive
ranges of width `weight` in the order listed. docs/bucketing.md explains it and how the test vectors
were obtained.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import mmh3

from flagservice.flags.model import RolloutEntry

BUCKETS = 100
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8(text: str) -> bytes:
    # A JSON "\ud800" escape decodes to a lone surrogate, which UTF-8 cannot encode; Go's JSON decoder
    # (flagd) reads it as U+FFFD, so hash it as that instead of failing.
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


def bucket(flag_key: str, targeting_key: str) -> int:
    """The bucket, 0 to 99, of one user for one flag.

    Parameters
    ----------
    flag_key : str
        The flag's key.
    targeting_key : str
        The user's `targetingKey`.

    Returns
    -------
    int
        ``(h * 100) >> 32`` where ``h`` is MurmurHash3 x86 32-bit, seed 0, of the UTF-8 bytes of
        `flag_key` followed by `targeting_key`, read as an unsigned integer.
    """
    h = mmh3.hash(_utf8(flag_key + targeting_key), 0, signed=False)
    return (h * BUCKETS) >> 32


def pick_variant(rollout: Sequence[RolloutEntry], bucket: int) -> str:
    """The variant whose range holds `bucket`.

    Variants take consecutive ranges of width `weight` in the order listed; the first whose
    cumulative weight exceeds `bucket` wins, so a variant of weight 0 never does.

    Parameters
    ----------
    rollout : Sequence[RolloutEntry]
        Weights summing to 100, as the flag model guarantees.
    bucket : int
        A bucket from :func:`bucket`, 0 to 99.

    Returns
    -------
    str
        The chosen variant's name.

    Raises
    ------
    ValueError
        If `bucket` is negative or lies beyond the sum of the weights (an invalid rollout).
    """
    if bucket < 0:
        raise ValueError(f"bucket {bucket} is negative")
    cumulative = 0
    for entry in rollout:
        cumulative += entry.weight
        if cumulative > bucket:
            return entry.variant
    raise ValueError(f"bucket {bucket} is beyond the rollout's total weight {cumulative}")
