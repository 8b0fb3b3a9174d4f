"""The cache value encoding: `<version>|<soft expiry ms>|<json of the stored flag, or null>`."""

from __future__ import annotations

import json
from datetime import datetime

from flagservice.flags.model import FlagDefinition, StoredFlag
from flagservice.ports import CacheEntry


def encode(flag: StoredFlag | None, *, version: int, soft_expiry_ms: int) -> str:
    if flag is None:
        body = "null"
    else:
        data = {"d": flag.definition.to_dict(), "u": flag.updated_at.isoformat()}
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"{version}|{soft_expiry_ms}|{body}"


def decode(value: bytes | str) -> CacheEntry | None:
    """The entry, or None for a value this code cannot read (treated as a miss and overwritten)."""
    text = value.decode("utf-8") if isinstance(value, bytes) else value
    try:
        version, soft, body = text.split("|", 2)
        data = json.loads(body)
        flag = None
        if data is not None:
            definition = FlagDefinition.model_validate(data["d"])
            flag = StoredFlag(definition=definition, version=int(version), updated_at=datetime.fromisoformat(data["u"]))
        return CacheEntry(version=int(version), flag=flag, soft_expiry_ms=int(soft))
    except (ValueError, KeyError, TypeError):
        return None
