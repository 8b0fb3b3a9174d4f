-- A write's COMMIT is refused by the database itself once the write's deadline (set by its last
-- statement, by the database's clock) has passed: a COMMIT that travelled slowly never lands after the
-- service answered 503. A transaction that set no deadline (older code) is not checked.
-- Additive and idempotent.

CREATE OR REPLACE FUNCTION cache_outbox_commit_deadline() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deadline text := current_setting('flagservice.deadline', true);
BEGIN
    IF deadline IS NOT NULL AND deadline <> '' AND clock_timestamp() > deadline::timestamptz THEN
        RAISE EXCEPTION 'the write outlived its deadline' USING ERRCODE = '57014';
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS cache_outbox_commit_deadline ON cache_outbox;
CREATE CONSTRAINT TRIGGER cache_outbox_commit_deadline AFTER INSERT ON cache_outbox
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cache_outbox_commit_deadline();
