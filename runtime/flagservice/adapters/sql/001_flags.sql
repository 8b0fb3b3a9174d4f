-- Flags, their append-only audit, the cache outbox and the environment's revision.
-- Additive and idempotent: every statement may run again without harm.

CREATE TABLE IF NOT EXISTS flags (
    key         text PRIMARY KEY,
    -- Grows by one per write; the row outlives a delete (definition NULL) so a re-created
    -- flag continues the count and no version is ever reused for a key.
    version     bigint      NOT NULL,
    -- json, not jsonb: jsonb would turn 1.0 into 1 and a float flag into an integer one.
    definition  json,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS flag_audit (
    id      bigserial PRIMARY KEY,
    key     text        NOT NULL,
    version bigint      NOT NULL,
    action  text        NOT NULL CHECK (action IN ('create', 'replace', 'patch', 'delete', 'revert')),
    actor   text        NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    before  json,
    after   json,
    UNIQUE (key, version)
);

CREATE OR REPLACE FUNCTION flag_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'flag_audit is append-only';
END;
$$;

CREATE OR REPLACE TRIGGER flag_audit_append_only
    BEFORE UPDATE OR DELETE ON flag_audit
    FOR EACH ROW EXECUTE FUNCTION flag_audit_is_append_only();

-- A cache step owed for a committed write; deleted once Redis has taken it.
CREATE TABLE IF NOT EXISTS cache_outbox (
    id         bigserial PRIMARY KEY,
    key        text        NOT NULL,
    version    bigint      NOT NULL,
    revision   bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The environment's single change signal, bumped in every write's transaction.
CREATE SEQUENCE IF NOT EXISTS flag_revision;
