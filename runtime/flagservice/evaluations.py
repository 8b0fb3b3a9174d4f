"""Evaluating flags for a context through the cache path: one flag, or every flag with an ETag."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flagservice.cache_aside import CacheAside
from flagservice.errors import TargetingKeyMissingError
from flagservice.flags import evaluation
from flagservice.flags.model import StoredFlag
from flagservice.ports import CacheOutcome


@dataclass(frozen=True)
class FlagAnswer:
    """One flag's answer for a context, or the reason it has none (`error_code`, `error_details`)."""

    key: str
    version: int
    result: evaluation.Evaluation | None = None
    error_code: str | None = None
    error_details: str | None = None

    def to_ofrep(self) -> dict[str, Any]:
        if self.result is None:
            return {"key": self.key, "errorCode": self.error_code, "errorDetails": self.error_details}
        return {
            "key": self.key,
            "value": self.result.value,
            "variant": self.result.variant,
            "reason": self.result.reason,
            "metadata": {"version": self.version},
        }


@dataclass(frozen=True)
class BulkAnswer:
    """Every flag's answer (None when the caller's ETag is current: 304) and the ETag of this answer."""

    answers: list[FlagAnswer] | None
    etag: str
    outcome: CacheOutcome
    revision: int


def answer(flag: StoredFlag, context: Mapping[str, Any]) -> FlagAnswer:
    """Evaluate one flag; a split without a targetingKey becomes an error answer, not an exception."""
    try:
        return FlagAnswer(flag.key, flag.version, evaluation.evaluate_flag(flag.definition, context))
    except TargetingKeyMissingError as exc:
        return FlagAnswer(flag.key, flag.version, error_code="TARGETING_KEY_MISSING", error_details=exc.detail)


def evaluate_one(reads: CacheAside, key: str, context: Mapping[str, Any]) -> tuple[FlagAnswer, CacheOutcome]:
    """One flag for one context; a split without a targetingKey raises (a 400 for single evaluation)."""
    lookup = reads.lookup(key)
    evaluated = evaluation.evaluate_flag(lookup.flag.definition, context)
    return FlagAnswer(lookup.flag.key, lookup.flag.version, evaluated), lookup.outcome


def bulk_etag(basis: str, context: Mapping[str, Any]) -> str:
    """A quoted hash of the flag set (its revision, or the versions it is made of) and the canonical context."""
    canonical = json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(f"{basis}\n{canonical}".encode()).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def evaluate_all(
    reads: CacheAside, context: Mapping[str, Any], if_none_match: str | None, at_least: int | None = None
) -> BulkAnswer:
    flag_set = reads.all_flags(at_least=at_least)
    etag = bulk_etag(flag_set.etag_basis, context)
    if etag_matches(if_none_match, etag):
        return BulkAnswer(None, etag, flag_set.outcome, flag_set.revision)
    answers = [answer(flag, context) for flag in flag_set.flags]
    return BulkAnswer(answers, etag, flag_set.outcome, flag_set.revision)
