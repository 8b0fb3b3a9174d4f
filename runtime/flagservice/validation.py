"""Turning untrusted input into domain objects, with the contract's error codes."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from flagservice.errors import InvalidFlagError, InvalidKeyError
from flagservice.flags.model import FlagDefinition, is_valid_key


def require_valid_key(key: object) -> str:
    """The key rule, checked before any cache or database call."""
    if not is_valid_key(key):
        raise InvalidKeyError("a key is 1 to 128 of A-Z a-z 0-9 . _ - starting with a letter or digit")
    assert isinstance(key, str)
    return key


def describe(exc: ValidationError) -> str:
    """The first few validation problems, one line, without echoing input values."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)


def parse_definition(data: dict[str, Any]) -> FlagDefinition:
    """A full definition from a JSON object; `version` and `updatedAt` are ignored."""
    if "key" in data:
        require_valid_key(data["key"])
    fields = {k: v for k, v in data.items() if k not in ("version", "updatedAt")}
    try:
        return FlagDefinition.model_validate(fields)
    except ValidationError as exc:
        raise InvalidFlagError(describe(exc), key=data.get("key") if is_valid_key(data.get("key")) else None) from None
