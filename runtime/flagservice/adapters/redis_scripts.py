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

# KEYS: flag, revision, changes, flag lease, key set, key set lease. ARGV: now ms, lease ms, flag key.
# One round trip for a missing or soft-expired entry: {value, revision, changes, state}. The first caller
# across all containers takes the refill lease (herd protection). A missing entry asks the key set first:
# current at this revision and without the key, the flag does not exist (state 2) and nothing is written
# for that key; no current key set: its rebuild lease (3) or someone else's rebuild (4).
# States: 0 nothing to do or no lease, 1 flag lease taken, 2 absent, 3 key set lease taken, 4 key set pending.
READ = """
local value = redis.call('GET', KEYS[1])
local revision = redis.call('GET', KEYS[2])
local state = 0
local lease = tonumber(ARGV[2])
if value then
  local soft = tonumber(string.match(value, '^%d+|(%d+)|'))
  if (not soft or soft <= tonumber(ARGV[1])) and lease > 0 then
    if redis.call('SET', KEYS[4], '1', 'NX', 'PX', lease) then state = 1 end
  end
elseif lease > 0 then
  local current = redis.call('HGET', KEYS[5], '#rev')
  if revision and current and tonumber(current) >= tonumber(revision) then
    if redis.call('HEXISTS', KEYS[5], ARGV[3]) == 0 then state = 2
    elseif redis.call('SET', KEYS[4], '1', 'NX', 'PX', lease) then state = 1 end
  elseif redis.call('SET', KEYS[6], '1', 'NX', 'PX', lease) then state = 3
  else state = 4 end
end
return {value, revision, redis.call('GET', KEYS[3]), state}
"""

# KEYS: snapshot, revision, changes, snapshot lease. ARGV: now ms, lease ms.
# The snapshot and the signal; the rebuild lease when the snapshot is missing, soft-expired or older
# than the revision (a write it does not contain was applied): {value, revision, changes, leased}.
READ_SNAPSHOT = """
local value = redis.call('GET', KEYS[1])
local revision = redis.call('GET', KEYS[2])
local leased = 0
local built, soft
if value then built, soft = string.match(value, '^(%d+)|(%d+)|') end
local current = built and revision and tonumber(built) >= tonumber(revision) and tonumber(soft) > tonumber(ARGV[1])
if not current and tonumber(ARGV[2]) > 0 then
  if redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[2]) then leased = 1 end
end
return {value, revision, redis.call('GET', KEYS[3]), leased}
"""

# KEYS: revision, then for each entry (a flag, or the snapshot) the entry and its refill lease. ARGV: observed
# revision, then for each entry its version, value and hard ttl ms. One answer per entry.
# A reader fills what it read from PostgreSQL only if no write was applied since it looked at the
# revision (before its database read) and the cache holds nothing newer; the refill leases go either way.
# Revisions follow commit order, so a reader that saw revision R and then read PostgreSQL saw every
# write up to R, whatever order their cache steps landed in. A page of flags is one call: the keys share
# the environment's hash tag (one slot in cluster mode).
FILL = (
    _CURRENT_VERSION
    + """
local count = (#KEYS - 1) / 2
local results = {}
for i = 1, count do redis.call('DEL', KEYS[2 * i + 1]) end
local revision = redis.call('GET', KEYS[1])
local refused = nil
if not revision then refused = -1 elseif tonumber(revision) > tonumber(ARGV[1]) then refused = 0 end
for i = 1, count do
  local version, value, ttl = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  local cached = cached_version(KEYS[2 * i])
  if refused then results[i] = refused
  elseif cached and cached > tonumber(version) then results[i] = 0
  else
    redis.call('SET', KEYS[2 * i], value, 'PX', ttl)
    results[i] = 1
  end
end
return results
"""
)

# KEYS: key set, revision, key set lease. ARGV: revision of the key set, ttl ms, keys...
# The set of existing keys as of a committed revision. No guard against writes applied meanwhile: a key
# set is only ever trusted while its revision is at least Redis's, so one that a write overtook is simply
# not current (and one read before a write committed never claims that write's revision). It never
# replaces a newer key set.
FILL_KEYS = """
redis.call('DEL', KEYS[3])
if not redis.call('GET', KEYS[2]) then return -1 end
local current = redis.call('HGET', KEYS[1], '#rev')
if current and tonumber(current) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '#rev', ARGV[1])
for i = 3, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], '1') end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: flag, revision, changes, key set, the flag in the previous and in the next schema namespace,
# the recently written keys (a sorted set by revision, the last 1,000 writes).
# ARGV: version, value, hard ttl ms, revision, flag key, 1 if the flag exists after the write.
# A writer's cache step: never replaces a newer version (two writers reordered), raises the revision
# (never lowers it), moves `changes` whatever the order, keeps a current key set current, and drops
# the other schema namespaces' copies (both sides of a canary must see the write).
APPLY = (
    _CURRENT_VERSION
    + """
local revision = redis.call('GET', KEYS[2])
if not revision then return -1 end
revision = tonumber(revision)
local written = tonumber(ARGV[4])
local cached = cached_version(KEYS[1])
local newest = not cached or cached < tonumber(ARGV[1])
if newest then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
local keys_rev = redis.call('HGET', KEYS[4], '#rev')
if keys_rev and tonumber(keys_rev) >= revision then
  if newest then
    if ARGV[6] == '1' then redis.call('HSET', KEYS[4], ARGV[5], '1') else redis.call('HDEL', KEYS[4], ARGV[5]) end
  end
  if written > tonumber(keys_rev) then redis.call('HSET', KEYS[4], '#rev', written) end
end
if written > revision then redis.call('SET', KEYS[2], written) end
redis.call('INCR', KEYS[3])
redis.call('DEL', KEYS[5], KEYS[6])
redis.call('ZADD', KEYS[7], written, ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -1001)
return 1
"""
)

# KEYS: revision, changes. ARGV: revision from PostgreSQL. The copy only ever grows, and never expires.
SEED = """
local revision = redis.call('GET', KEYS[1])
if not revision or tonumber(revision) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('INCR', KEYS[2])
end
return 1
"""
