-- The change signal in commit order (DESIGN.md, Cache semantics).
-- A sequence's nextval inside a transaction is not commit order: a write that took 3 and committed after
-- one that took 4 was invisible to a reader that had already seen 4. Every write now takes its revision
-- as the last statement of its transaction, from the sequence, while holding this one row's lock until
-- it commits: revisions grow in the order writes become visible. `revision` is the committed revision.
-- Additive and idempotent: every statement may run again without harm.

CREATE TABLE IF NOT EXISTS flag_revision_counter (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    revision bigint  NOT NULL
);

INSERT INTO flag_revision_counter (id, revision)
SELECT true, CASE WHEN is_called THEN last_value ELSE 0 END FROM flag_revision
ON CONFLICT (id) DO NOTHING;

-- Outbox rows are kept after their cache step (applied_at set) so that a Redis that lost state (a
-- failover to a replica that missed writes, a restore from an old snapshot) can be repaired by replay.
ALTER TABLE cache_outbox ADD COLUMN IF NOT EXISTS applied_at timestamptz;
CREATE INDEX IF NOT EXISTS cache_outbox_pending ON cache_outbox (id) WHERE applied_at IS NULL;
CREATE INDEX IF NOT EXISTS cache_outbox_by_revision ON cache_outbox (revision);
