"""The cache value encoding: `<version>|<soft expiry ms>|<json of the stored flag, or null>`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flagservice.flags.model import FlagDefinition, StoredFlag
from flagservice.ports import CacheEntry, CacheSnapshot


def _flag_data(flag: StoredFlag) -> dict[str, Any]:
    return {"d": flag.definition.to_dict(), "u": flag.updated_at.isoformat(), "v": flag.version}


def _flag(data: dict[str, Any]) -> StoredFlag:
    definition = FlagDefinition.model_validate(data["d"])
    return StoredFlag(definition=definition, version=int(data["v"]), updated_at=datetime.fromisoformat(data["u"]))


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def encode(flag: StoredFlag | None, *, version: int, soft_expiry_ms: int) -> str:
    body = "null" if flag is None else _dumps(_flag_data(flag))
    return f"{version}|{soft_expiry_ms}|{body}"


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
        version, soft, body = text.split("|", 2)
        data = json.loads(body)
        flag = None if data is None else _flag(data)
        return CacheEntry(version=int(version), flag=flag, soft_expiry_ms=int(soft))
    except (ValueError, KeyError, TypeError):
        return None
