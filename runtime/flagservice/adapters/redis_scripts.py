"""The Lua scripts that make every cache write version-guarded (Redis 6.2 and ElastiCache accept EVALSHA).

A value is `<version>|<soft expiry ms>|<json>`; the scripts read only the version prefix.
Return codes: 1 stored, 0 refused, -1 the revision copy is missing (seed it, then retry).
"""

from __future__ import annotations

import functools
import hashlib


@functools.cache
def sha1(script: str) -> str:
    """The id Redis gives a script (EVALSHA)."""
    return hashlib.sha1(script.encode("utf-8"), usedforsecurity=False).hexdigest()


_CURRENT_VERSION = """
local function cached_version(key)
  local value = redis.call('GET', key)
  if not value then return nil end
  return tonumber(string.match(value, '^(%d+)|'))
end
"""

# KEYS: flag, revision, lease. ARGV: now ms, lease ms.
# The entry and the revision in one round trip; when the entry is missing or soft-expired, the first
# caller across all containers also takes the refill lease (herd protection): {value, revision, leased}.
READ = """
local value = redis.call('GET', KEYS[1])
local leased = 0
local soft = value and tonumber(string.match(value, '^%d+|(%d+)|'))
if (not soft or soft <= tonumber(ARGV[1])) and tonumber(ARGV[2]) > 0 then
  if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then leased = 1 end
end
return {value, redis.call('GET', KEYS[2]), leased}
"""

# KEYS: flag, revision, lease. ARGV: version, observed revision, value, hard ttl ms.
# A reader fills what it read from PostgreSQL only if no write was applied since it looked at the
# revision (before its database read) and the cache holds nothing newer; the refill lease goes either way.
FILL = (
    _CURRENT_VERSION
    + """
redis.call('DEL', KEYS[3])
local revision = redis.call('GET', KEYS[2])
if not revision then return -1 end
if tonumber(revision) > tonumber(ARGV[2]) then return 0 end
local cached = cached_version(KEYS[1])
if cached and cached > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
"""
)

# KEYS: flag, revision, the flag in the previous schema namespace. ARGV: version, value, hard ttl ms, revision.
# A writer's cache step: never replaces a newer version (two writers reordered), raises the revision
# (never lowers it) and drops the previous schema's copy, whose encoding this code does not write.
APPLY = (
    _CURRENT_VERSION
    + """
local revision = redis.call('GET', KEYS[2])
if not revision then return -1 end
local cached = cached_version(KEYS[1])
if not cached or cached < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
if tonumber(ARGV[4]) > tonumber(revision) then redis.call('SET', KEYS[2], ARGV[4]) end
redis.call('DEL', KEYS[3])
return 1
"""
)

# KEYS: revision. ARGV: revision from PostgreSQL. The copy only ever grows, and never expires.
SEED = """
local revision = redis.call('GET', KEYS[1])
if not revision or tonumber(revision) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""
