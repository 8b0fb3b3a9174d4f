"""The cache value encodings.

A flag entry is `<version>|<soft expiry ms>|<updatedAt>|<definition JSON>` (the last two empty for "no
such flag"), so a hit hands the definition straight to pydantic's JSON parser. A snapshot is
`<revision>|<soft expiry ms>|<JSON list of flags>`. The Lua scripts read only the numeric prefix.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from flagservice.flags.model import TRUSTED, FlagDefinition, StoredFlag
from flagservice.ports import CacheEntry, CacheSnapshot


def _flag_data(flag: StoredFlag) -> dict[str, Any]:
    return {"d": flag.definition.to_dict(), "u": flag.updated_at.isoformat(), "v": flag.version}


def _flag(data: dict[str, Any]) -> StoredFlag:
    definition = FlagDefinition.model_validate(data["d"], context=TRUSTED)
    return StoredFlag(definition=definition, version=int(data["v"]), updated_at=datetime.fromisoformat(data["u"]))


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def encode(flag: StoredFlag | None, *, version: int, soft_expiry_ms: int) -> str:
    if flag is None:
        return f"{version}|{soft_expiry_ms}||"
    return f"{version}|{soft_expiry_ms}|{flag.updated_at.isoformat()}|{flag.definition.to_json()}"


def encode_snapshot(flags: list[StoredFlag], *, revision: int, soft_expiry_ms: int) -> str:
    return f"{revision}|{soft_expiry_ms}|{_dumps([_flag_data(flag) for flag in flags])}"


def decode_snapshot(value: bytes | str) -> CacheSnapshot | None:
    text = value.decode("utf-8") if isinstance(value, bytes) else value
    try:
        version, soft, body = text.split("|", 2)
        flags = [_flag(item) for item in json.loads(body)]
        return CacheSnapshot(version=int(version), flags=flags, soft_expiry_ms=int(soft))
    except (ValueError, KeyError, TypeError):
        return None


def decode(value: bytes | str) -> CacheEntry | None:
    """The entry, or None for a value this code cannot read (treated as a miss and overwritten)."""
    text = value.decode("utf-8") if isinstance(value, bytes) else value
    try:
        version, soft, updated, definition = text.split("|", 3)
        flag = _stored_flag(version, updated, definition) if definition else None
        return CacheEntry(version=int(version), flag=flag, soft_expiry_ms=int(soft))
    except (ValueError, KeyError, TypeError):
        return None


@functools.lru_cache(maxsize=1024)
def _stored_flag(version: str, updated: str, definition: str) -> StoredFlag:
    """Parse a flag once per version: a refill or an L1 miss reads the same bytes again and again.

    Stored flags are immutable, so sharing one object between reads is safe (and shares its cached JSON).
    """
    parsed = FlagDefinition.model_validate_json(definition, context=TRUSTED)
    return StoredFlag(definition=parsed, version=int(version), updated_at=datetime.fromisoformat(updated))
