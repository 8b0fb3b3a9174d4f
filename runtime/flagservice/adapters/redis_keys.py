"""Every Redis key the service uses, built in one place.

All keys of an environment share the hash tag `{<env>}` (`ff:{<env>}:...`), so every multi-key script
and pipeline stays within one hash slot and cluster mode needs no rewrite. One environment is one slot,
so one shard's primary serves all of its reads: fine for a flag set (small), and shards add capacity
across environments, not within one (docs/infrastructure.md, "Cluster mode").

Flag entries carry the schema version of their encoding, so two code versions live during a canary never
read each other's entries; the revision and the stats are shared by all schema versions.
"""

from __future__ import annotations

SCHEMA_VERSION = 2  # 2: the definition JSON stands alone in the entry


def _tag(env: str) -> str:
    return f"ff:{{{env}}}"


def flag_key(env: str, key: str, *, schema: int = SCHEMA_VERSION) -> str:
    return f"{_tag(env)}:s{schema}:flag:{key}"


def snapshot_key(env: str) -> str:
    """Every live flag at one revision, for bulk evaluation."""
    return f"{_tag(env)}:s{SCHEMA_VERSION}:snapshot"


def lease_key(env: str, key: str) -> str:
    return f"{_tag(env)}:s{SCHEMA_VERSION}:lease:{key}"


def revision_key(env: str) -> str:
    return f"{_tag(env)}:revision"


def changes_key(env: str) -> str:
    """Moved by every applied cache step (in any order): what in-process copies revalidate against."""
    return f"{_tag(env)}:changes"


def keyset_key(env: str) -> str:
    """A hash of every existing flag key (plus `#rev`, the revision it is current at): answers "no such
    flag" without a key per missing flag."""
    return f"{_tag(env)}:s{SCHEMA_VERSION}:keys"


def written_key(env: str) -> str:
    """The keys of the last 1,000 writes by revision (for laying them over an outdated snapshot)."""
    return f"{_tag(env)}:s{SCHEMA_VERSION}:written"


def namespace_pattern(env: str) -> str:
    """Every entry, snapshot, key set and lease of the environment, in every schema version."""
    return f"{_tag(env)}:s*"


def stats_key(env: str, kind: str) -> str:
    """`hits`, `misses` (hashes by flag key) or `since` (a timestamp)."""
    return f"{_tag(env)}:stats:{kind}"
